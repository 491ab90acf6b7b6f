#include "toycore/playout_clock.h"

#include "toycore/clock.h"
#include "toycore/opus_toc.h"

namespace toy {
namespace {
constexpr uint64_t kMsPerSecond = 1000;
constexpr uint64_t kSamplesPerMs = kOpusClockHz / kMsPerSecond;
}  // namespace

void PlayoutClock::reset(uint32_t now_ms) {
  queued_samples_ = 0;
  played_samples_ = 0;
  last_ms_ = now_ms;
}

void PlayoutClock::advance(uint32_t now_ms) {
  const uint64_t drained = static_cast<uint64_t>(elapsed_ms(now_ms, last_ms_)) * kSamplesPerMs;
  const uint64_t n = drained < queued_samples_ ? drained : queued_samples_;
  queued_samples_ -= n;
  played_samples_ += n;
  last_ms_ = now_ms;
}

void PlayoutClock::add_samples_48k(uint32_t now_ms, uint32_t samples) {
  advance(now_ms);
  queued_samples_ += samples;
}

uint32_t PlayoutClock::played_ms(uint32_t now_ms) {
  advance(now_ms);
  return static_cast<uint32_t>(played_samples_ / kSamplesPerMs);
}

uint32_t PlayoutClock::queued_ms(uint32_t now_ms) {
  advance(now_ms);
  return static_cast<uint32_t>(queued_samples_ / kSamplesPerMs);
}

}  // namespace toy
