// The device: a sans-I/O state machine for the /ws/esp32 protocol.
//
// Inputs are method calls carrying the caller's `now_ms`; outputs are
// Actions delivered to an ActionSink. Nothing here blocks, allocates,
// reads a clock or touches hardware, so the same object runs on the
// ESP32 (firmware/src) and on a PC (firmware/host, tests).
//
// States and transitions (see device_state.h):
//   IDLE --deadline--> CONNECTING --on_connected--> WAITING_AUTH --auth--> PROCESSING
//   PROCESSING/LISTENING --CREATED--> SPEAKING --COMPLETE/ERROR--> HOLD --1000 ms--> LISTENING
//   LISTENING --COMMITTED--> PROCESSING
//   any connected state --long press--> ENDING --SESSION.END / timeout--> SLEEP
//   any connected state --SESSION.END--> SLEEP
//   a silent server (timeouts) or a dropped socket --> IDLE with backoff
#pragma once

#include <cstddef>
#include <cstdint>

#include "toycore/actions.h"
#include "toycore/backoff.h"
#include "toycore/button.h"
#include "toycore/core_config.h"
#include "toycore/device_state.h"
#include "toycore/json_reader.h"
#include "toycore/mic_chunker.h"
#include "toycore/playout_clock.h"
#include "toycore/server_message.h"

namespace toy {

constexpr size_t kServerMessageKindCount = 8;

struct CoreStats {
  uint32_t connect_attempts = 0;
  uint32_t connect_failures = 0;  // never reached the 101 (refused, 401, timeout)
  uint32_t connections_lost = 0;  // dropped after the 101
  uint32_t sessions = 0;          // auth received
  uint32_t texts_received = 0;
  uint32_t messages_by_kind[kServerMessageKindCount] = {};  // index: ServerMessageKind
  uint32_t binary_received = 0;
  uint32_t packets_played = 0;
  uint32_t packets_dropped = 0;   // outside a bracket, during the hold, or after INTERRUPT
  uint32_t packets_rejected = 0;  // empty, oversize or malformed TOC
  uint32_t packets_after_interrupt = 0;
  uint32_t responses_created = 0;
  uint32_t responses_completed = 0;
  uint32_t response_errors = 0;
  uint32_t turns_closed = 0;  // COMPLETE + ERROR: the greeting (or its stand-in) is turn 0
  uint32_t mic_bytes_sent = 0;
  uint32_t mic_chunks_sent = 0;
  uint32_t mic_bytes_discarded = 0;
  uint32_t interrupts_sent = 0;
  uint32_t last_interrupt_audio_end_ms = 0;
  uint32_t end_of_speech_sent = 0;
  uint32_t end_session_sent = 0;
  bool session_end_received = false;
  uint32_t timeouts = 0;
  uint32_t protocol_errors = 0;  // a valid message in a state where it makes no sense
  uint32_t stale_events = 0;     // socket events after the core had closed the socket
  uint32_t reentrant_calls = 0;  // a sink called back into the core (a caller bug)
  uint32_t resets_honoured = 0;
  uint32_t resets_refused = 0;
};

class DeviceCore {
 public:
  DeviceCore(const CoreConfig& config, const BootInfo& boot, ActionSink& sink);

  // First connection attempt (immediately).
  void start(uint32_t now_ms);
  // Fires deadlines (reconnect, hold end, timeouts). Call every loop.
  void tick(uint32_t now_ms);

  void on_connected(uint32_t now_ms);
  void on_disconnected(uint32_t now_ms);
  void on_text(uint32_t now_ms, const char* text, size_t len);
  void on_binary(uint32_t now_ms, const uint8_t* data, size_t len);
  // Microphone PCM (s16le, 16 kHz, mono), any length. Dropped unless LISTENING.
  void on_mic_pcm(uint32_t now_ms, const uint8_t* data, size_t len);
  void on_button(uint32_t now_ms, ButtonEvent event);
  // Same as a long press: say goodbye, then sleep.
  void request_end_session(uint32_t now_ms);

  DeviceState state() const { return state_; }
  bool wants_mic() const { return state_ == DeviceState::kListening; }
  // Ms of the current response heard so far (the INTERRUPT `audio_end_ms`).
  uint32_t played_ms(uint32_t now_ms) { return playout_.played_ms(now_ms); }
  int volume_percent() const { return volume_percent_; }
  float pitch_factor() const { return pitch_factor_; }
  bool reset_flag() const { return reset_flag_; }
  const CoreStats& stats() const { return stats_; }

 private:
  class CallGuard;

  void enter(DeviceState next, uint32_t now_ms);
  void arm(uint32_t now_ms, uint32_t delay_ms);
  void on_deadline(uint32_t now_ms);
  void connect_now(uint32_t now_ms);
  void lose_connection(uint32_t now_ms, const char* why, bool close_socket);
  void go_to_sleep(uint32_t now_ms, const char* why);
  void handle_message(uint32_t now_ms, const ServerMessage& msg);
  void handle_auth(uint32_t now_ms, const AuthSettings& auth);
  void start_response(uint32_t now_ms);
  void close_turn(uint32_t now_ms, const ServerMessage& msg);
  void send_interrupt(uint32_t now_ms);

  void emit(ActionKind kind, int32_t value = 0);
  void emit_data(ActionKind kind, const void* data, size_t len);
  void emit_note(const char* note);

  CoreConfig config_;
  ActionSink& sink_;
  Backoff backoff_;
  FlatJson json_;
  MicChunker mic_;
  PlayoutClock playout_;
  CoreStats stats_;

  DeviceState state_ = DeviceState::kIdle;
  LedPattern led_ = LedPattern::kOff;
  bool started_ = false;
  bool busy_ = false;
  bool socket_open_ = false;     // between Connect and close/disconnect
  bool deadline_armed_ = false;
  uint32_t deadline_ms_ = 0;
  bool reset_flag_ = false;
  bool greeted_ = false;          // first COMPLETE/ERROR of the session seen
  bool bracket_open_ = false;     // CREATED seen, COMPLETE/ERROR not yet
  bool interrupted_ = false;      // INTERRUPT sent for the open bracket
  int volume_percent_ = kDefaultVolumePercent;
  float pitch_factor_ = kDefaultPitchFactor;
};

}  // namespace toy
