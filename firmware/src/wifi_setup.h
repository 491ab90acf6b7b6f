// Wi-Fi with a captive set-up portal (WiFiManager): stored credentials are
// used when they work; otherwise, or when asked, the device opens the
// access point "VoiceToy-Setup" where the user picks a network and enters
// the server URL and the device token.
#pragma once

#include "settings_store.h"

namespace wifi_setup {

// Connects, opening the portal if needed (or if `force_portal`). Updates
// and saves `settings` from the portal fields. Returns false if the portal
// timed out without a working network.
bool connect(DeviceSettings& settings, bool force_portal);

}  // namespace wifi_setup
