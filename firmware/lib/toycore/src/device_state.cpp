#include "toycore/device_state.h"

namespace toy {

const char* device_state_name(DeviceState state) {
  switch (state) {
    case DeviceState::kIdle: return "IDLE";
    case DeviceState::kConnecting: return "CONNECTING";
    case DeviceState::kWaitingAuth: return "WAITING_AUTH";
    case DeviceState::kProcessing: return "PROCESSING";
    case DeviceState::kSpeaking: return "SPEAKING";
    case DeviceState::kHold: return "HOLD";
    case DeviceState::kListening: return "LISTENING";
    case DeviceState::kEnding: return "ENDING";
    case DeviceState::kSleep: return "SLEEP";
    case DeviceState::kRebooting: return "REBOOTING";
  }
  return "?";
}

LedPattern led_pattern_for(DeviceState state) {
  switch (state) {
    case DeviceState::kIdle:
    case DeviceState::kConnecting:
    case DeviceState::kWaitingAuth: return LedPattern::kConnecting;
    case DeviceState::kProcessing: return LedPattern::kThinking;
    case DeviceState::kSpeaking:
    case DeviceState::kHold: return LedPattern::kSpeaking;  // the tail is still playing
    case DeviceState::kListening: return LedPattern::kListening;
    case DeviceState::kEnding: return LedPattern::kGoodbye;
    case DeviceState::kSleep:
    case DeviceState::kRebooting: return LedPattern::kOff;
  }
  return LedPattern::kOff;
}

}  // namespace toy
