// The board's WebSocket: arduinoWebSockets (the library the Elato firmware
// uses, so the server sees the same handshake) driven by the core's
// Connect / CloseSocket actions instead of the library's own reconnect.
#pragma once

#include <Arduino.h>
#include <WebSocketsClient.h>

#include "toycore/url.h"

class WsListener {
 public:
  virtual void on_ws_connected() = 0;
  virtual void on_ws_disconnected() = 0;
  virtual void on_ws_text(const char* text, size_t len) = 0;
  virtual void on_ws_binary(const uint8_t* data, size_t len) = 0;

 protected:
  ~WsListener() = default;
};

class WsLink {
 public:
  explicit WsLink(WsListener& listener) : listener_(listener) {}
  // Parses the URL once; false if it is not ws:// or wss://.
  bool configure(const String& url, const String& token);
  void open();   // start connecting (TLS with the pinned roots for wss://)
  void close();  // close and stop all reconnect attempts until open()
  void loop();   // pump the library while a connection is wanted
  bool send_text(const uint8_t* data, size_t len);
  bool send_binary(const uint8_t* data, size_t len);

 private:
  void on_event(WStype_t type, uint8_t* payload, size_t length);

  WsListener& listener_;
  WebSocketsClient client_;
  toy::WsUrl url_;
  String bearer_;
  bool active_ = false;
  bool handler_installed_ = false;
};
