// Wrap-safe millisecond arithmetic.
//
// The core never reads a clock: every entry point takes `now_ms` from the
// caller. On the board that is Arduino's millis(), a uint32_t that wraps
// after ~49.7 days, so all comparisons go through these helpers, which stay
// correct across the wrap as long as intervals are shorter than ~24.8 days.
#pragma once

#include <cstdint>

namespace toy {

inline uint32_t elapsed_ms(uint32_t now_ms, uint32_t since_ms) {
  return now_ms - since_ms;  // unsigned subtraction is the wrap-safe difference
}

inline bool deadline_reached(uint32_t now_ms, uint32_t deadline_ms) {
  return static_cast<int32_t>(now_ms - deadline_ms) >= 0;
}

}  // namespace toy
