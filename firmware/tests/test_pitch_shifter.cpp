// The pitch shifter moves the frequency and keeps the length.
#include <cmath>
#include <vector>

#include "harness.h"
#include "toycore/pitch_shifter.h"

constexpr double kRateHz = 48000.0;
constexpr double kPi = 3.14159265358979323846;

static std::vector<int16_t> tone(double hz, size_t n) {
  std::vector<int16_t> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<int16_t>(10000.0 * std::sin(2 * kPi * hz * i / kRateHz));
  return v;
}

// Dominant frequency by a brute-force DFT scan (robust to the crossfade
// ripple that confuses zero-crossing counts).
static double dominant_hz(const std::vector<int16_t>& v, size_t from, size_t n) {
  double best_hz = 0, best_power = -1;
  for (double hz = 100; hz <= 2000; hz += 5) {
    double re = 0, im = 0;
    for (size_t i = 0; i < n; ++i) {
      re += v[from + i] * std::cos(2 * kPi * hz * i / kRateHz);
      im += v[from + i] * std::sin(2 * kPi * hz * i / kRateHz);
    }
    const double p = re * re + im * im;
    if (p > best_power) {
      best_power = p;
      best_hz = hz;
    }
  }
  return best_hz;
}

TEST(unity_is_exact_bypass) {
  toy::PitchShifter p;
  p.set_factor(1.0f);
  CHECK(p.bypassed());
  auto v = tone(440, 4800);
  const auto orig = v;
  p.process(v.data(), v.size());
  CHECK(v == orig);
}

TEST(shifts_up_and_down) {
  const double in_hz = 400;
  const float factors[] = {1.5f, 0.75f, 2.0f, 0.5f};
  for (const float f : factors) {
    toy::PitchShifter p;
    p.set_factor(f);
    auto v = tone(in_hz, 48000);
    p.process(v.data(), v.size());
    const double out = dominant_hz(v, 24000, 9600);
    const double expected = in_hz * f;
    if (std::fabs(out - expected) > expected * 0.05) std::printf("    factor %.2f: %.0f Hz (want %.0f)\n", f, out, expected);
    CHECK(std::fabs(out - expected) <= expected * 0.05);
  }
}

TEST(length_and_range_preserved) {
  toy::PitchShifter p;
  p.set_factor(1.7f);
  std::vector<int16_t> v(1000, 32767);
  p.process(v.data(), v.size());
  CHECK_EQ(v.size(), 1000u);  // in place, same count
  std::vector<int16_t> w(1000, -32768);
  p.process(w.data(), w.size());  // no overflow on full-scale input
}

TEST(bad_factor_means_bypass) {
  toy::PitchShifter p;
  p.set_factor(0.0f);
  CHECK(p.bypassed());
  p.set_factor(-3.0f);
  CHECK(p.bypassed());
  p.set_factor(std::nanf(""));
  CHECK(p.bypassed());
}

TEST_MAIN()
