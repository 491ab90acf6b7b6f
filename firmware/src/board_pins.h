// Wiring on an ESP32-S3-DevKitC-1 (N8R8 / N16R8 / N8). See README "Wiring".
//
// Avoided on purpose: strapping pins (0, 3, 45, 46), USB D-/D+ (19, 20),
// flash/PSRAM pins (26-37 on octal-PSRAM modules), and the on-board RGB
// LED pin. The button must be an RTC GPIO (0-21) to wake from deep sleep.
#pragma once

#include <driver/gpio.h>

namespace pins {

// INMP441 microphone (I2S port 0, receive). Tie its L/R pin to GND (left slot).
constexpr int kMicBclk = 4;   // INMP441 SCK
constexpr int kMicWs = 5;     // INMP441 WS
constexpr int kMicData = 6;   // INMP441 SD

// MAX98357A amplifier (I2S port 1, transmit).
constexpr int kAmpBclk = 15;  // MAX98357A BCLK
constexpr int kAmpWs = 16;    // MAX98357A LRC
constexpr int kAmpData = 7;   // MAX98357A DIN
constexpr int kAmpEnable = 17;  // MAX98357A SD: high = on (left channel), low = shutdown

// Push button between this pin and GND (internal pull-up). RTC GPIO: wakes deep sleep.
constexpr gpio_num_t kButton = GPIO_NUM_2;

// On-board addressable RGB LED: GPIO 48 on DevKitC-1 v1.0, GPIO 38 on v1.1.
#ifndef TOY_RGB_LED_PIN
#define TOY_RGB_LED_PIN 48
#endif
constexpr int kRgbLed = TOY_RGB_LED_PIN;

}  // namespace pins
