// INMP441 microphone on I2S port 0: 16 kHz, 32-bit slots -> s16le bytes.
#pragma once

#include <cstddef>
#include <cstdint>

namespace mic_in {

bool begin();
// Non-blocking: converts whatever the DMA has (up to `max_bytes` of s16le)
// and returns the byte count written to `out`.
size_t read(uint8_t* out, size_t max_bytes);

}  // namespace mic_in
