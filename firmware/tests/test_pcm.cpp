// Mic slot conversion and volume scaling.
#include <cstdint>

#include "harness.h"
#include "toycore/pcm.h"

TEST(slot_conversion) {
  CHECK_EQ(toy::i2s_slot_to_s16(0x12340000, 16), 0x1234);
  CHECK_EQ(toy::i2s_slot_to_s16(-0x12340000, 16), -0x1234);
  CHECK_EQ(toy::i2s_slot_to_s16(0x00010000, 14), 4);           // +12 dB
  CHECK_EQ(toy::i2s_slot_to_s16(INT32_MAX, 14), 32767);        // saturates
  CHECK_EQ(toy::i2s_slot_to_s16(INT32_MIN, 14), -32768);
  CHECK_EQ(toy::i2s_slot_to_s16(INT32_MIN, 16), -32768);
  CHECK_EQ(toy::i2s_slot_to_s16(12345, 99), 0);                // absurd shift is clamped
}

TEST(little_endian_bytes) {
  const int32_t slots[] = {0x12340000, -0x00010000};
  uint8_t out[4];
  toy::i2s_slots_to_s16le(slots, 2, 16, out);
  CHECK_EQ(out[0], 0x34);
  CHECK_EQ(out[1], 0x12);
  CHECK_EQ(out[2], 0xFF);
  CHECK_EQ(out[3], 0xFF);
}

TEST(volume) {
  int16_t s[] = {1000, -1000, 32767, -32768};
  toy::apply_volume(s, 4, 50);
  CHECK_EQ(s[0], 500);
  CHECK_EQ(s[1], -500);
  CHECK_EQ(s[2], 16383);
  CHECK_EQ(s[3], -16384);
  int16_t t[] = {1000, 32767};
  toy::apply_volume(t, 2, 100);
  CHECK_EQ(t[0], 1000);
  toy::apply_volume(t, 2, 0);
  CHECK_EQ(t[0], 0);
  CHECK_EQ(t[1], 0);
  int16_t u[] = {30000, -30000};
  toy::apply_volume(u, 2, 200);  // boost saturates instead of wrapping
  CHECK_EQ(u[0], 32767);
  CHECK_EQ(u[1], -32768);
  int16_t v[] = {100};
  toy::apply_volume(v, 1, -20);
  CHECK_EQ(v[0], 0);
}

TEST_MAIN()
