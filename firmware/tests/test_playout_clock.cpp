// Played-time estimate: real-time drain, underruns, wrap of millis().
#include "harness.h"
#include "toycore/playout_clock.h"

constexpr uint32_t k120ms = 5760;

TEST(drains_at_real_time) {
  toy::PlayoutClock c;
  c.reset(1000);
  CHECK_EQ(c.played_ms(1500), 0u);  // nothing queued, nothing played
  for (int i = 0; i < 10; ++i) c.add_samples_48k(1500, k120ms);  // 1200 ms burst
  CHECK_EQ(c.played_ms(1500), 0u);
  CHECK_EQ(c.played_ms(1800), 300u);
  CHECK_EQ(c.queued_ms(1800), 900u);
  CHECK_EQ(c.played_ms(5000), 1200u);  // never more than was received
}

TEST(underrun_does_not_count) {
  toy::PlayoutClock c;
  c.reset(0);
  c.add_samples_48k(0, k120ms);
  CHECK_EQ(c.played_ms(500), 120u);     // 380 ms of silence after the packet
  c.add_samples_48k(500, k120ms);
  CHECK_EQ(c.played_ms(560), 180u);
}

TEST(reset_starts_a_new_response) {
  toy::PlayoutClock c;
  c.reset(0);
  c.add_samples_48k(0, k120ms);
  CHECK_EQ(c.played_ms(1000), 120u);
  c.reset(1000);
  CHECK_EQ(c.played_ms(2000), 0u);
}

TEST(survives_millis_wrap) {
  toy::PlayoutClock c;
  const uint32_t near_wrap = 0xFFFFFF00u;
  c.reset(near_wrap);
  c.add_samples_48k(near_wrap, k120ms * 2);
  CHECK_EQ(c.played_ms(near_wrap + 100), 100u);
  CHECK_EQ(c.played_ms(static_cast<uint32_t>(near_wrap + 200)), 200u);  // wrapped past 0
}

TEST_MAIN()
