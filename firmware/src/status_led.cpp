#include "status_led.h"

#include <Arduino.h>

#include "board_pins.h"

namespace status_led {
namespace {

struct Look {
  uint8_t r, g, b;
  uint32_t period_ms;  // 0 = steady
};

// Dim on purpose: the LED sits next to a child's face.
constexpr uint8_t kLevel = 24;
constexpr Look kLooks[] = {
    {0, 0, 0, 0},                       // kOff
    {0, 0, kLevel, 1000},               // kConnecting: slow blue blink
    {kLevel, kLevel / 2, 0, 400},       // kThinking: amber blink
    {0, kLevel, 0, 0},                  // kSpeaking: green
    {0, kLevel, kLevel, 0},             // kListening: cyan
    {kLevel, 0, kLevel, 150},           // kGoodbye: fast purple blink
};

toy::LedPattern g_pattern = toy::LedPattern::kOff;
bool g_lit = false;
bool g_dirty = true;

void show(bool lit) {
  const Look& look = kLooks[static_cast<size_t>(g_pattern)];
  if (lit) {
    neopixelWrite(pins::kRgbLed, look.r, look.g, look.b);
  } else {
    neopixelWrite(pins::kRgbLed, 0, 0, 0);
  }
  g_lit = lit;
}

}  // namespace

void begin() { show(false); }

void set_pattern(toy::LedPattern pattern) {
  if (static_cast<size_t>(pattern) >= sizeof(kLooks) / sizeof(kLooks[0])) pattern = toy::LedPattern::kOff;
  g_pattern = pattern;
  g_dirty = true;
}

void update(uint32_t now_ms) {
  const Look& look = kLooks[static_cast<size_t>(g_pattern)];
  const bool lit = look.period_ms == 0 ? true : (now_ms % look.period_ms) < look.period_ms / 2;
  if (g_dirty || lit != g_lit) {
    g_dirty = false;
    show(lit);
  }
}

}  // namespace status_led
