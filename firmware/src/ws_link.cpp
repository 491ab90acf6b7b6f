#include "ws_link.h"

#include <WiFi.h>

#include "board_config.h"
#include "ca_cert.h"

bool WsLink::configure(const String& url, const String& token) {
  bearer_ = String("Bearer ") + token;
  return toy::parse_ws_url(url.c_str(), &url_);
}

void WsLink::open() {
  if (!handler_installed_) {
    client_.onEvent([this](WStype_t type, uint8_t* payload, size_t length) { on_event(type, payload, length); });
    handler_installed_ = true;
  }
  if (url_.secure) {
    client_.beginSslWithCA(url_.host, url_.port, url_.path, kRootCaPem, "arduino");
  } else {
    client_.begin(url_.host, url_.port, url_.path, "arduino");  // LAN development only (spec C2)
  }
  // begin*() clears the authorization, so set the headers after it.
  client_.setAuthorization(bearer_.c_str());  // sent verbatim: "Authorization: Bearer <token>"
  String extra = "Origin: file://\r\nX-Device-Mac: ";
  extra += WiFi.macAddress();  // upper-case hex with colons, as the spec shows
  extra += "\r\nX-Wifi-Rssi: ";
  extra += String(WiFi.RSSI());
  client_.setExtraHeaders(extra.c_str());
  client_.setReconnectInterval(board::kLibraryRetryMs);
  client_.disableHeartbeat();  // the device sends no pings (spec TE12); it answers the server's
  active_ = true;
}

void WsLink::close() {
  active_ = false;
  client_.disconnect();
}

void WsLink::loop() {
  if (active_) client_.loop();
}

bool WsLink::send_text(const uint8_t* data, size_t len) { return client_.sendTXT(data, len); }

bool WsLink::send_binary(const uint8_t* data, size_t len) { return client_.sendBIN(data, len); }

void WsLink::on_event(WStype_t type, uint8_t* payload, size_t length) {
  switch (type) {
    case WStype_CONNECTED:
      listener_.on_ws_connected();
      break;
    case WStype_DISCONNECTED:
      // Stop pumping the library, or it would reconnect on its own and
      // bypass the core's backoff. The core's next Connect calls open().
      active_ = false;
      listener_.on_ws_disconnected();
      break;
    case WStype_TEXT:
      listener_.on_ws_text(reinterpret_cast<const char*>(payload), length);
      break;
    case WStype_BIN:
      listener_.on_ws_binary(payload, length);
      break;
    default:
      break;  // fragments are ignored like in the Elato firmware (spec §3.2); pings are answered by the library
  }
}
