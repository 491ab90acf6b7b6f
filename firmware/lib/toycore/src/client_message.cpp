#include "toycore/client_message.h"

#include <cstdio>

namespace toy {

size_t format_interrupt_message(char* out, size_t capacity, uint32_t audio_end_ms) {
  if (out == nullptr || capacity == 0) return 0;
  const int n = std::snprintf(out, capacity,
                              "{\"type\":\"instruction\",\"msg\":\"INTERRUPT\",\"audio_end_ms\":%lu}",
                              static_cast<unsigned long>(audio_end_ms));
  if (n < 0 || static_cast<size_t>(n) >= capacity) {
    out[0] = '\0';
    return 0;
  }
  return static_cast<size_t>(n);
}

}  // namespace toy
