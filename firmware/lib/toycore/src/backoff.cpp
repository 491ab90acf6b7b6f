#include "toycore/backoff.h"

namespace toy {

Backoff::Backoff(const BackoffConfig& config, uint32_t seed) : config_(config), rng_(seed) {
  if (config_.base_delay_ms == 0) config_.base_delay_ms = 1;
  if (config_.max_delay_ms < config_.base_delay_ms) config_.max_delay_ms = config_.base_delay_ms;
}

uint32_t Backoff::current_ceiling_ms() const {
  // Double step by step so the shift can never overflow.
  uint32_t ceiling = config_.base_delay_ms;
  for (uint32_t i = 0; i < failures_ && ceiling < config_.max_delay_ms; ++i) {
    ceiling = (ceiling > config_.max_delay_ms / 2) ? config_.max_delay_ms : ceiling * 2;
  }
  return ceiling < config_.max_delay_ms ? ceiling : config_.max_delay_ms;
}

uint32_t Backoff::next_delay_ms() {
  const uint32_t ceiling = current_ceiling_ms();
  const uint32_t floor = ceiling / 2;
  const uint32_t delay = floor + rng_.up_to(ceiling - floor);
  if (failures_ < UINT32_MAX) ++failures_;
  return delay;
}

}  // namespace toy
