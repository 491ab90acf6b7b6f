#include "toycore/pitch_shifter.h"

#include <cmath>

namespace toy {
namespace {
constexpr float kUnityTolerance = 1e-3f;
constexpr float kHalf = 0.5f;
constexpr float kS16Max = 32767.0f;
constexpr float kS16Min = -32768.0f;
constexpr size_t kWindowMask = PitchShifter::kWindowSamples - 1;
static_assert((PitchShifter::kWindowSamples & kWindowMask) == 0, "window must be a power of two");

// Triangular fade: 0 at both ends of the window, 1 in the middle. The two
// taps are half a window apart, so their gains always sum to 1.
float fade(float phase) { return 1.0f - std::fabs(2.0f * phase - 1.0f); }
}  // namespace

void PitchShifter::set_factor(float factor) {
  if (!(factor > 0.0f)) factor = 1.0f;
  factor_ = factor;
  const bool bypass = std::fabs(factor - 1.0f) < kUnityTolerance;
  if (bypass != bypass_) reset();  // do not replay stale history after a switch
  bypass_ = bypass;
}

void PitchShifter::reset() {
  for (float& s : history_) s = 0.0f;
  write_pos_ = 0;
  phase_ = 0.0f;
}

float PitchShifter::read_tap(float delay) const {
  // Linear interpolation between the two samples around `delay`.
  const float pos = static_cast<float>(write_pos_) - delay - 1.0f + static_cast<float>(kWindowSamples);
  const size_t i0 = static_cast<size_t>(pos) & kWindowMask;
  const float frac = pos - std::floor(pos);
  const size_t i1 = (i0 + 1) & kWindowMask;
  return history_[i0] + (history_[i1] - history_[i0]) * frac;
}

void PitchShifter::process(int16_t* samples, size_t count) {
  if (bypass_) return;
  const float window = static_cast<float>(kWindowSamples - 2);  // keep interpolation inside history
  // A head reading at `factor` x speed shrinks its delay by (factor - 1)
  // samples per sample; expressed as a fraction of the window:
  const float step = (factor_ - 1.0f) / window;
  for (size_t n = 0; n < count; ++n) {
    history_[write_pos_] = static_cast<float>(samples[n]);
    write_pos_ = (write_pos_ + 1) & kWindowMask;

    float phase_b = phase_ + kHalf;
    if (phase_b >= 1.0f) phase_b -= 1.0f;
    const float a = read_tap(phase_ * window) * fade(phase_);
    const float b = read_tap(phase_b * window) * fade(phase_b);
    float out = a + b;
    if (out > kS16Max) out = kS16Max;
    if (out < kS16Min) out = kS16Min;
    samples[n] = static_cast<int16_t>(std::lround(out));

    phase_ -= step;
    if (phase_ < 0.0f) phase_ += 1.0f;
    if (phase_ >= 1.0f) phase_ -= 1.0f;
  }
}

}  // namespace toy
