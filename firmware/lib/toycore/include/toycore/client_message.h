// Device -> server instructions (spec §3.3). Built into caller buffers.
#pragma once

#include <cstddef>
#include <cstdint>

namespace toy {

// Large enough for the longest message, INTERRUPT with a 10-digit number.
constexpr size_t kClientMessageMaxBytes = 96;

inline constexpr char kEndSessionMessage[] = "{\"type\":\"instruction\",\"msg\":\"END_SESSION\"}";
inline constexpr char kEndOfSpeechMessage[] = "{\"type\":\"instruction\",\"msg\":\"end_of_speech\"}";

// Writes {"type":"instruction","msg":"INTERRUPT","audio_end_ms":N}.
// Returns the length written (without NUL), or 0 if `capacity` is too small.
size_t format_interrupt_message(char* out, size_t capacity, uint32_t audio_end_ms);

}  // namespace toy
