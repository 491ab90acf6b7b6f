#include "toycore/button.h"

#include "toycore/clock.h"

namespace toy {

ButtonEvent ButtonDecoder::update(uint32_t now_ms, bool pressed) {
  if (pressed != raw_pressed_) {
    raw_pressed_ = pressed;
    raw_since_ms_ = now_ms;
  }
  if (raw_pressed_ != stable_pressed_ && elapsed_ms(now_ms, raw_since_ms_) >= config_.debounce_ms) {
    stable_pressed_ = raw_pressed_;
    if (stable_pressed_) {
      press_start_ms_ = raw_since_ms_;
      long_fired_ = false;
    } else if (!long_fired_) {
      return ButtonEvent::kTap;
    }
  }
  if (stable_pressed_ && !long_fired_ &&
      elapsed_ms(now_ms, press_start_ms_) >= config_.long_press_ms) {
    long_fired_ = true;
    return ButtonEvent::kLongPress;
  }
  return ButtonEvent::kNone;
}

}  // namespace toy
