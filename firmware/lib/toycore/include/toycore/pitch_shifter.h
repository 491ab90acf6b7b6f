// Real-time pitch shifter for the `pitch_factor` persona setting.
//
// Classic two-tap delay-line shifter: two read heads sweep through a short
// history at `factor` times the write speed, half a window apart, each
// faded by a triangular window so that one head is silent exactly when it
// jumps. Length is preserved (output sample count = input count), latency
// is at most one window, and the cost is a few multiplies per sample, which
// suits an ESP32-S3 (single-precision FPU). Quality is "toy voice", which is
// the point.
#pragma once

#include <cstddef>
#include <cstdint>

namespace toy {

class PitchShifter {
 public:
  // ~43 ms at 48 kHz: long enough for low voices, short enough to avoid echo.
  static constexpr size_t kWindowSamples = 2048;

  void set_factor(float factor);
  float factor() const { return factor_; }
  bool bypassed() const { return bypass_; }
  void reset();
  // In place. A factor of 1.0 is an exact pass-through.
  void process(int16_t* samples, size_t count);

 private:
  float read_tap(float delay) const;

  float history_[kWindowSamples] = {};
  size_t write_pos_ = 0;
  float phase_ = 0.0f;  // position of tap A in the window, [0, 1)
  float factor_ = 1.0f;
  bool bypass_ = true;
};

}  // namespace toy
