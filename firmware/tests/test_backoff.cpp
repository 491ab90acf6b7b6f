// Backoff bounds: exponential ceiling, equal jitter, cap, reset.
#include "harness.h"
#include "toycore/backoff.h"

TEST(first_delays_follow_the_ceiling) {
  toy::Backoff b(toy::BackoffConfig{1000, 30000}, 42);
  const uint32_t ceilings[] = {1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000};
  for (uint32_t ceiling : ceilings) {
    CHECK_EQ(b.current_ceiling_ms(), ceiling);
    const uint32_t d = b.next_delay_ms();
    CHECK(d >= ceiling / 2);
    CHECK(d <= ceiling);
  }
}

TEST(bounds_hold_for_many_seeds_and_attempts) {
  for (uint32_t seed = 0; seed < 200; ++seed) {
    toy::Backoff b(toy::BackoffConfig{1000, 30000}, seed);
    for (int i = 0; i < 100; ++i) {  // far past the point where 2^n overflows
      const uint32_t d = b.next_delay_ms();
      CHECK(d >= 500);
      CHECK(d <= 30000);
    }
    CHECK_EQ(b.current_ceiling_ms(), 30000u);
  }
}

TEST(jitter_spreads_devices) {
  // Two devices that fail together must not retry together.
  int differing = 0;
  for (uint32_t seed = 1; seed < 50; ++seed) {
    toy::Backoff a(toy::BackoffConfig{}, seed);
    toy::Backoff b(toy::BackoffConfig{}, seed + 1000);
    if (a.next_delay_ms() != b.next_delay_ms()) ++differing;
  }
  CHECK(differing > 40);
  // And the jitter uses the whole range (not a constant).
  toy::Backoff c(toy::BackoffConfig{1000, 1000}, 7);
  uint32_t lo = 1000, hi = 0;
  for (int i = 0; i < 1000; ++i) {
    const uint32_t d = c.next_delay_ms();
    lo = d < lo ? d : lo;
    hi = d > hi ? d : hi;
  }
  CHECK(lo < 550);
  CHECK(hi > 950);
}

TEST(reset_returns_to_base) {
  toy::Backoff b(toy::BackoffConfig{1000, 30000}, 3);
  for (int i = 0; i < 10; ++i) b.next_delay_ms();
  CHECK_EQ(b.failures(), 10u);
  b.reset();
  CHECK_EQ(b.failures(), 0u);
  CHECK(b.next_delay_ms() <= 1000);
}

TEST(degenerate_configs) {
  toy::Backoff zero(toy::BackoffConfig{0, 0}, 1);
  CHECK(zero.next_delay_ms() <= 1);
  toy::Backoff inverted(toy::BackoffConfig{5000, 100}, 1);  // cap below base: cap wins upward
  const uint32_t d = inverted.next_delay_ms();
  CHECK(d >= 2500);
  CHECK(d <= 5000);
  toy::Backoff huge(toy::BackoffConfig{0x80000000u, 0xFFFFFFFFu}, 1);
  for (int i = 0; i < 5; ++i) CHECK(huge.next_delay_ms() >= 0x40000000u);
}

TEST(deterministic_for_a_seed) {
  toy::Backoff a(toy::BackoffConfig{}, 99);
  toy::Backoff b(toy::BackoffConfig{}, 99);
  for (int i = 0; i < 20; ++i) CHECK_EQ(a.next_delay_ms(), b.next_delay_ms());
}

TEST_MAIN()
