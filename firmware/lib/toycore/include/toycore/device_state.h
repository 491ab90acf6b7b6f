// Device states and the LED pattern shown in each.
#pragma once

#include <cstdint>

namespace toy {

enum class DeviceState : uint8_t {
  kIdle,          // no socket; waiting for the backoff deadline
  kConnecting,    // Connect emitted; waiting for the 101
  kWaitingAuth,   // socket open; the first message must be `auth`
  kProcessing,    // mic off; waiting for CREATED or COMPLETE/ERROR (greeting or reply)
  kSpeaking,      // inside RESPONSE.CREATED .. COMPLETE/ERROR: playing Opus
  kHold,          // 1000 ms after COMPLETE/ERROR: playback drains, binary dropped
  kListening,     // mic PCM streamed upstream
  kEnding,        // END_SESSION sent; waiting for SESSION.END (or a timeout)
  kSleep,         // terminal: deep sleep requested
  kRebooting,     // terminal: reboot requested by `is_reset`
};

const char* device_state_name(DeviceState state);

// Patterns, not colours: the board decides how each one looks.
enum class LedPattern : uint8_t {
  kOff,
  kConnecting,  // slow blue blink
  kThinking,    // amber pulse (waiting for the server)
  kSpeaking,    // steady green
  kListening,   // steady cyan
  kGoodbye,     // fast purple blink
};

LedPattern led_pattern_for(DeviceState state);

}  // namespace toy
