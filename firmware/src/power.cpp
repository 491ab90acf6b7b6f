#include "power.h"

#include <Arduino.h>
#include <WiFi.h>
#include <driver/rtc_io.h>
#include <esp_sleep.h>

#include "board_pins.h"

namespace power {
namespace {
constexpr uint32_t kReleaseWaitMs = 5000;  // a held button would wake us at once
constexpr uint32_t kLogFlushMs = 50;
}  // namespace

void sleep_until_button() {
  Serial.println("[power] deep sleep; press the button to wake");
  const uint32_t start = millis();
  while (digitalRead(pins::kButton) == LOW && millis() - start < kReleaseWaitMs) delay(10);
  WiFi.disconnect(true);
  digitalWrite(pins::kAmpEnable, LOW);
  rtc_gpio_pullup_en(pins::kButton);
  rtc_gpio_pulldown_dis(pins::kButton);
  esp_sleep_enable_ext0_wakeup(pins::kButton, 0);  // wake on low = pressed
  delay(kLogFlushMs);
  esp_deep_sleep_start();
}

void reboot() {
  Serial.println("[power] reboot");
  delay(kLogFlushMs);
  ESP.restart();
  for (;;) {
  }
}

}  // namespace power
