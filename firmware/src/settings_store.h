// Persistent settings in NVS (survive reboots and deep sleep).
#pragma once

#include <Arduino.h>

struct DeviceSettings {
  String server_url;  // wss://host/ws/esp32 (ws:// only for LAN development)
  String token;       // device JWT, sent as "Authorization: Bearer ..."
};

namespace settings {

DeviceSettings load();
void save(const DeviceSettings& s);
bool reset_flag();
void set_reset_flag(bool value);

}  // namespace settings
