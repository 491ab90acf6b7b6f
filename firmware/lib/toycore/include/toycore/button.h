// Turns raw button levels into tap / long-press gestures.
//
// A long press fires while the button is still held (the user gets the
// goodbye LED at once instead of guessing when to let go); a tap fires on
// release. Contact bounce shorter than `debounce_ms` is ignored.
#pragma once

#include <cstdint>

namespace toy {

enum class ButtonEvent : uint8_t { kNone, kTap, kLongPress };

struct ButtonConfig {
  uint32_t debounce_ms = 30;       // typical tactile switch bounce is < 10 ms
  uint32_t long_press_ms = 1500;   // long enough not to trigger on a firm tap
};

class ButtonDecoder {
 public:
  explicit ButtonDecoder(const ButtonConfig& config = ButtonConfig()) : config_(config) {}
  // Feed the current level as often as possible (every loop iteration).
  ButtonEvent update(uint32_t now_ms, bool pressed);

 private:
  ButtonConfig config_;
  bool raw_pressed_ = false;
  bool stable_pressed_ = false;
  bool long_fired_ = false;
  uint32_t raw_since_ms_ = 0;
  uint32_t press_start_ms_ = 0;
};

}  // namespace toy
