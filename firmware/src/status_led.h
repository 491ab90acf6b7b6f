// The on-board RGB LED shows the core's LedPattern.
#pragma once

#include <cstdint>

#include "toycore/device_state.h"

namespace status_led {

void begin();
void set_pattern(toy::LedPattern pattern);
void update(uint32_t now_ms);  // call every loop: drives blinking

}  // namespace status_led
