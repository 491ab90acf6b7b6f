// Tiny deterministic PRNG (xorshift32) for backoff jitter.
//
// The core has no entropy source of its own: the caller seeds it (the board
// from esp_random(), the host from the OS, tests from a constant) so runs
// are reproducible in tests and decorrelated across devices in the field.
#pragma once

#include <cstdint>

namespace toy {

class Rng {
 public:
  explicit Rng(uint32_t seed) : state_(seed != 0 ? seed : kFallbackSeed) {}

  uint32_t next() {
    state_ ^= state_ << 13;
    state_ ^= state_ >> 17;
    state_ ^= state_ << 5;
    return state_;
  }

  // Uniform-ish value in [0, bound]; the modulo bias is irrelevant for jitter.
  uint32_t up_to(uint32_t bound) {
    if (bound == UINT32_MAX) return next();
    return next() % (bound + 1);
  }

 private:
  static constexpr uint32_t kFallbackSeed = 0x9E3779B9u;  // xorshift must not start at 0
  uint32_t state_;
};

}  // namespace toy
