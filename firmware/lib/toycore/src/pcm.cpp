#include "toycore/pcm.h"

namespace toy {
namespace {
constexpr int32_t kS16Max = 32767;
constexpr int32_t kS16Min = -32768;
constexpr unsigned kMaxShift = 31;
constexpr int32_t kPercent = 100;

int16_t saturate(int64_t v) {
  if (v > kS16Max) return static_cast<int16_t>(kS16Max);
  if (v < kS16Min) return static_cast<int16_t>(kS16Min);
  return static_cast<int16_t>(v);
}
}  // namespace

int16_t i2s_slot_to_s16(int32_t slot, unsigned shift) {
  if (shift > kMaxShift) shift = kMaxShift;
  // Arithmetic shift of a negative value is implementation-defined before
  // C++20; dividing keeps the sign portable (rounds toward zero).
  const int64_t divisor = static_cast<int64_t>(1) << shift;
  return saturate(static_cast<int64_t>(slot) / divisor);
}

void i2s_slots_to_s16le(const int32_t* slots, size_t count, unsigned shift, uint8_t* out) {
  for (size_t i = 0; i < count; ++i) {
    const uint16_t s = static_cast<uint16_t>(i2s_slot_to_s16(slots[i], shift));
    out[2 * i] = static_cast<uint8_t>(s & 0xFF);
    out[2 * i + 1] = static_cast<uint8_t>(s >> 8);
  }
}

void apply_volume(int16_t* samples, size_t count, int volume_percent) {
  if (volume_percent == kPercent) return;
  if (volume_percent < 0) volume_percent = 0;
  for (size_t i = 0; i < count; ++i) {
    samples[i] = saturate(static_cast<int64_t>(samples[i]) * volume_percent / kPercent);
  }
}

}  // namespace toy
