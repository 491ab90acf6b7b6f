// Reconnect delay: exponential growth, "equal jitter", capped.
//
// The Elato firmware retries every 1000 ms forever (spec TE13), so a fleet
// of devices hammers a server that is down or rejecting them. Here attempt
// n waits a random delay in [ceiling/2, ceiling] with
// ceiling = min(max_delay_ms, base_delay_ms * 2^n): never less than half the
// ceiling (so retries really slow down) and randomised (so devices that lost
// the same server do not come back in lockstep). Reset after a session that
// worked.
#pragma once

#include <cstdint>

#include "toycore/rng.h"

namespace toy {

struct BackoffConfig {
  uint32_t base_delay_ms = 1000;  // the Elato reconnect interval
  uint32_t max_delay_ms = 30000;  // keeps a recovered server reachable within 30 s
};

class Backoff {
 public:
  Backoff(const BackoffConfig& config, uint32_t seed);

  // Delay before the next attempt; each call counts one more failure.
  uint32_t next_delay_ms();
  // Upper bound of the delay the next call can return.
  uint32_t current_ceiling_ms() const;
  void reset() { failures_ = 0; }
  uint32_t failures() const { return failures_; }

 private:
  BackoffConfig config_;
  Rng rng_;
  uint32_t failures_ = 0;
};

}  // namespace toy
