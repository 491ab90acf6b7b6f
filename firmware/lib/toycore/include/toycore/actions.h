// What the core asks its caller to do. The core performs no I/O itself.
#pragma once

#include <cstddef>
#include <cstdint>

namespace toy {

enum class ActionKind : uint8_t {
  kConnect,           // open the WebSocket now; report on_connected / on_disconnected
  kCloseSocket,       // close it (normal closure); no on_disconnected needed
  kSendText,          // data/len: one JSON text frame
  kSendBinary,        // data/len: one binary frame of mic PCM (s16le 16 kHz)
  kPlayOpus,          // data/len: one Opus packet to decode (48 kHz mono) and play
  kFlushPlayback,     // drop everything queued for the speaker right now
  kSpeakerEnable,     // value: 1 = amplifier on, 0 = off (MAX98357A SD pin)
  kSetLed,            // value: LedPattern
  kSetVolume,         // value: percent 0..100
  kSetPitch,          // factor: pitch factor (1.0 = bypass)
  kPersistResetFlag,  // value: 1/0, store in non-volatile memory before kReboot
  kReboot,            // restart the device (after kPersistResetFlag)
  kSleep,             // deep sleep; wake = reboot = new session
  kStateChanged,      // value: DeviceState (for logs and for the host wrapper)
  kNote,              // note: static diagnostic text, for logs only
};

const char* action_kind_name(ActionKind kind);

struct Action {
  ActionKind kind = ActionKind::kNote;
  // Borrowed: valid only during ActionSink::on_action. Copy if needed later.
  const uint8_t* data = nullptr;
  size_t len = 0;
  int32_t value = 0;
  float factor = 1.0f;
  const char* note = nullptr;  // static storage
};

// Implemented by the caller. on_action must not call back into the core:
// anything that produces new events (connect, close) is done after the
// core call returns. The core ignores (and counts) re-entrant calls.
class ActionSink {
 public:
  virtual void on_action(const Action& action) = 0;

 protected:
  ~ActionSink() = default;
};

}  // namespace toy
