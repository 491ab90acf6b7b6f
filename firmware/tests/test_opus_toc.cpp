// Opus packet durations from the TOC byte (RFC 6716 §3.1).
#include "harness.h"
#include "toycore/opus_toc.h"

static uint8_t toc(uint8_t config, uint8_t code) { return static_cast<uint8_t>((config << 3) | code); }

TEST(single_frames) {
  const uint8_t silk20[] = {toc(1, 0), 0};
  CHECK_EQ(toy::opus_packet_samples_48k(silk20, 2), 960u);
  const uint8_t silk60[] = {toc(3, 0)};
  CHECK_EQ(toy::opus_packet_samples_48k(silk60, 1), 2880u);
  const uint8_t hybrid10[] = {toc(12, 0)};
  CHECK_EQ(toy::opus_packet_samples_48k(hybrid10, 1), 480u);
  const uint8_t celt2_5[] = {toc(16, 0)};
  CHECK_EQ(toy::opus_packet_samples_48k(celt2_5, 1), 120u);
  const uint8_t celt20[] = {toc(31, 0)};
  CHECK_EQ(toy::opus_packet_samples_48k(celt20, 1), 960u);
}

TEST(multi_frame_codes) {
  const uint8_t two_equal[] = {toc(1, 1)};
  CHECK_EQ(toy::opus_packet_samples_48k(two_equal, 1), 1920u);
  const uint8_t two_diff[] = {toc(1, 2), 10};
  CHECK_EQ(toy::opus_packet_samples_48k(two_diff, 2), 1920u);
  // The server's 120 ms packets: code 3 with 2 x 60 ms or 6 x 20 ms.
  const uint8_t cbr_2x60[] = {toc(3, 3), 2};
  CHECK_EQ(toy::opus_packet_samples_48k(cbr_2x60, 2), 5760u);
  const uint8_t vbr_6x20[] = {toc(1, 3), 0x80 | 6};
  CHECK_EQ(toy::opus_packet_samples_48k(vbr_6x20, 2), 5760u);
}

TEST(malformed) {
  CHECK_EQ(toy::opus_packet_samples_48k(nullptr, 0), 0u);
  const uint8_t x[] = {toc(1, 2)};
  CHECK_EQ(toy::opus_packet_samples_48k(x, 0), 0u);
  CHECK_EQ(toy::opus_packet_samples_48k(x, 1), 0u);          // code 2 needs a length byte
  const uint8_t code3_no_count[] = {toc(1, 3)};
  CHECK_EQ(toy::opus_packet_samples_48k(code3_no_count, 1), 0u);
  const uint8_t zero_frames[] = {toc(1, 3), 0};
  CHECK_EQ(toy::opus_packet_samples_48k(zero_frames, 2), 0u);
  const uint8_t too_long[] = {toc(3, 3), 3};                 // 180 ms > 120 ms
  CHECK_EQ(toy::opus_packet_samples_48k(too_long, 2), 0u);
  const uint8_t max_count[] = {toc(16, 3), 63};              // 63 x 2.5 ms = 157.5 ms
  CHECK_EQ(toy::opus_packet_samples_48k(max_count, 2), 0u);
}

TEST(every_byte_value_is_safe) {
  for (int b0 = 0; b0 < 256; ++b0) {
    for (int b1 = 0; b1 < 256; b1 += 17) {
      const uint8_t p[] = {static_cast<uint8_t>(b0), static_cast<uint8_t>(b1)};
      CHECK(toy::opus_packet_samples_48k(p, 2) <= toy::kOpusMaxPacketSamples48k);
      CHECK(toy::opus_packet_samples_48k(p, 1) <= toy::kOpusMaxPacketSamples48k);
    }
  }
}

TEST_MAIN()
