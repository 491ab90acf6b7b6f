// Board glue: hardware and network events in, core actions out.
//
// Everything protocol-related (states, timeouts, gating, backoff, parsing)
// is in the portable core (lib/toycore) and unit-tested on the host; this
// file only moves bytes between it and the peripherals. It runs in the
// Arduino loop task; audio decoding runs in its own task (audio_out.cpp).
#include <Arduino.h>
#include <WiFi.h>
#if __has_include(<esp_random.h>)
#include <esp_random.h>
#else
#include <esp_system.h>
#endif

#include "audio_out.h"
#include "board_config.h"
#include "board_pins.h"
#include "mic_in.h"
#include "power.h"
#include "settings_store.h"
#include "status_led.h"
#include "toycore/button.h"
#include "toycore/device_core.h"
#include "wifi_setup.h"
#include "ws_link.h"

namespace {

// Bytes per loop iteration from the microphone (s16le).
constexpr size_t kMicChunkBytes = board::kMicReadSlots * toy::kMicBytesPerSample;

class Board : public toy::ActionSink, public WsListener {
 public:
  Board() : link_(*this) {}

  void setup();
  void loop();

  // Core -> hardware. Never calls back into the core (see actions.h).
  void on_action(const toy::Action& a) override;

  // Network -> core. A send inside on_action can make the library report a
  // disconnect synchronously; that one is deferred to the next loop.
  void on_ws_connected() override {
    if (!in_action_) core().on_connected(millis());
  }
  void on_ws_disconnected() override {
    if (in_action_) {
      disconnect_pending_ = true;
    } else {
      core().on_disconnected(millis());
    }
  }
  void on_ws_text(const char* text, size_t len) override { core().on_text(millis(), text, len); }
  void on_ws_binary(const uint8_t* data, size_t len) override { core().on_binary(millis(), data, len); }

 private:
  toy::DeviceCore& core() { return *core_; }

  WsLink link_;
  toy::CoreConfig config_;
  toy::DeviceCore* core_ = nullptr;
  toy::ButtonDecoder button_;
  bool in_action_ = false;
  bool connect_pending_ = false;
  bool close_pending_ = false;
  bool disconnect_pending_ = false;
  bool sleep_pending_ = false;
  bool reboot_pending_ = false;
  uint8_t mic_buf_[kMicChunkBytes];
};

Board g_board;

void Board::setup() {
  Serial.begin(board::kSerialBaud);
  pinMode(pins::kButton, INPUT_PULLUP);
  status_led::begin();
  status_led::set_pattern(toy::LedPattern::kConnecting);
  status_led::update(millis());

  // Holding the button at power-on reopens the Wi-Fi / server set-up portal.
  bool force_portal = false;
  if (digitalRead(pins::kButton) == LOW) {
    delay(board::kHoldAtBootForPortalMs);
    force_portal = digitalRead(pins::kButton) == LOW;
  }
  DeviceSettings settings = settings::load();
  if (!wifi_setup::connect(settings, force_portal)) {
    Serial.println("[setup] no Wi-Fi configured; sleeping");
    power::sleep_until_button();
  }
  if (!link_.configure(settings.server_url, settings.token)) {
    Serial.printf("[setup] bad server URL '%s'; reopen the portal (hold the button at power-on)\n",
                  settings.server_url.c_str());
    power::sleep_until_button();
  }
  if (!mic_in::begin() || !audio_out::begin()) {
    Serial.println("[setup] audio init failed; rebooting");
    power::reboot();
  }
  static toy::DeviceCore core(config_, toy::BootInfo{settings::reset_flag(), esp_random()}, *this);
  core_ = &core;
  core_->start(millis());
}

void Board::on_action(const toy::Action& a) {
  using toy::ActionKind;
  in_action_ = true;
  switch (a.kind) {
    case ActionKind::kConnect: connect_pending_ = true; break;
    case ActionKind::kCloseSocket: close_pending_ = true; break;
    case ActionKind::kSendText: link_.send_text(a.data, a.len); break;
    case ActionKind::kSendBinary: link_.send_binary(a.data, a.len); break;
    case ActionKind::kPlayOpus:
      if (!audio_out::enqueue(a.data, a.len)) Serial.println("[audio] packet dropped (ring full)");
      break;
    case ActionKind::kFlushPlayback: audio_out::flush(); break;
    case ActionKind::kSpeakerEnable: audio_out::set_amp(a.value != 0); break;
    case ActionKind::kSetLed: status_led::set_pattern(static_cast<toy::LedPattern>(a.value)); break;
    case ActionKind::kSetVolume: audio_out::set_volume(a.value); break;
    case ActionKind::kSetPitch: audio_out::set_pitch(a.factor); break;
    case ActionKind::kPersistResetFlag: settings::set_reset_flag(a.value != 0); break;
    case ActionKind::kReboot: reboot_pending_ = true; break;
    case ActionKind::kSleep: sleep_pending_ = true; break;
    case ActionKind::kStateChanged:
      Serial.printf("[core] state %s\n", toy::device_state_name(static_cast<toy::DeviceState>(a.value)));
      break;
    case ActionKind::kNote: Serial.printf("[core] %s\n", a.note); break;
  }
  in_action_ = false;
}

void Board::loop() {
  const uint32_t now = millis();
  if (disconnect_pending_) {
    disconnect_pending_ = false;
    core().on_disconnected(now);
  }
  if (close_pending_) {
    close_pending_ = false;
    link_.close();  // fires WStype_DISCONNECTED; the core has already moved on and ignores it
  }
  if (sleep_pending_) power::sleep_until_button();
  if (reboot_pending_) power::reboot();
  if (connect_pending_) {
    connect_pending_ = false;
    if (WiFi.status() == WL_CONNECTED) {
      link_.open();
    } else {
      core().on_disconnected(now);  // counts as a failed attempt: back off, Wi-Fi rejoins meanwhile
    }
  }
  link_.loop();

  const size_t n = mic_in::read(mic_buf_, sizeof(mic_buf_));
  if (n > 0) core().on_mic_pcm(millis(), mic_buf_, n);  // the core drops it unless LISTENING

  const toy::ButtonEvent ev = button_.update(millis(), digitalRead(pins::kButton) == LOW);
  if (ev != toy::ButtonEvent::kNone) core().on_button(millis(), ev);

  core().tick(millis());
  status_led::update(millis());
}

}  // namespace

void setup() { g_board.setup(); }

void loop() { g_board.loop(); }
