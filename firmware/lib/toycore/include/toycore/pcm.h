// Sample-format helpers shared by the board and the host.
#pragma once

#include <cstddef>
#include <cstdint>

namespace toy {

// INMP441-class microphones put a 24-bit sample left-justified in a 32-bit
// I2S slot. Shifting right by 16 gives plain 16-bit; a smaller shift adds
// gain (each bit less = +6 dB) because these mics are quiet at speaking
// distance. Saturates instead of wrapping.
constexpr unsigned kI2sSlotToS16Shift = 16;
constexpr unsigned kDefaultMicShift = 14;  // +12 dB, a common INMP441 setting

int16_t i2s_slot_to_s16(int32_t slot, unsigned shift);

// Converts `count` slots into little-endian s16 bytes (2 * count bytes),
// independent of the CPU's byte order.
void i2s_slots_to_s16le(const int32_t* slots, size_t count, unsigned shift, uint8_t* out);

// Scales samples by volume_percent / 100 with saturation.
void apply_volume(int16_t* samples, size_t count, int volume_percent);

}  // namespace toy
