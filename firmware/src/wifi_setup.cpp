#include "wifi_setup.h"

#include <WiFi.h>
#include <WiFiManager.h>

#include "board_config.h"

namespace wifi_setup {
namespace {
constexpr int kUrlFieldBytes = 256;
constexpr int kTokenFieldBytes = 1024;  // JWTs are a few hundred bytes
}  // namespace

bool connect(DeviceSettings& settings, bool force_portal) {
  WiFi.mode(WIFI_STA);
  WiFi.setAutoReconnect(true);  // the core reconnects the socket; the stack rejoins Wi-Fi

  WiFiManager wm;
  WiFiManagerParameter url_field("server_url", "Server URL (wss://host/ws/esp32)", settings.server_url.c_str(),
                                 kUrlFieldBytes);
  WiFiManagerParameter token_field("token", "Device token", settings.token.c_str(), kTokenFieldBytes);
  wm.addParameter(&url_field);
  wm.addParameter(&token_field);
  wm.setConfigPortalTimeout(board::kPortalTimeoutS);

  // Without a server or token there is nothing to connect to: ask for them.
  const bool missing = settings.server_url.length() == 0 || settings.token.length() == 0;
  const bool ok = (force_portal || missing) ? wm.startConfigPortal(board::kPortalSsid)
                                            : wm.autoConnect(board::kPortalSsid);
  // The fields hold the stored values unless the user edited them: compare
  // instead of relying on a save callback, whose timing varies by version.
  String url = url_field.getValue();
  String token = token_field.getValue();
  url.trim();
  token.trim();
  if (url != settings.server_url || token != settings.token) {
    settings.server_url = url;
    settings.token = token;
    settings::save(settings);
  }
  return ok && WiFi.status() == WL_CONNECTED;
}

}  // namespace wifi_setup
