// A minimal blocking-write / polled-read WebSocket client over plain TCP
// (ws:// only: the host wrapper talks to a local server; TLS is the
// board's job). Framing and handshake logic live in ws_frame / ws_handshake.
#pragma once

#include <cstddef>
#include <cstdint>
#include <random>
#include <string>

#include "toycore/url.h"
#include "ws_frame.h"
#include "ws_handshake.h"

namespace toyhost {

struct DeviceHeaders {
  std::string token;
  std::string mac;
  std::string rssi;
};

struct ConnectResult {
  bool ok = false;
  int http_status = 0;  // 101 on success; 401/429/503... when refused
  std::string error;
};

enum class ReadStatus : uint8_t { kOk, kWouldBlock, kClosed, kError };

class WsClient {
 public:
  WsClient();
  ~WsClient();
  WsClient(const WsClient&) = delete;
  WsClient& operator=(const WsClient&) = delete;

  ConnectResult connect(const toy::WsUrl& url, const DeviceHeaders& headers, int timeout_ms);
  bool is_open() const { return fd_ >= 0; }
  int fd() const { return fd_; }

  bool send_text(const uint8_t* data, size_t len) { return send_frame(WsOpcode::kText, data, len); }
  bool send_binary(const uint8_t* data, size_t len) { return send_frame(WsOpcode::kBinary, data, len); }
  bool send_pong(const std::vector<uint8_t>& payload);
  bool send_close(uint16_t code);
  bool close_sent() const { return close_sent_; }

  // Reads what the socket has (after poll() said readable) into the decoder.
  ReadStatus read_available();
  WsEvent next_event() { return decoder_.next(); }
  void close_socket();

 private:
  bool send_frame(WsOpcode opcode, const uint8_t* data, size_t len);
  bool write_all(const uint8_t* data, size_t len);

  int fd_ = -1;
  bool close_sent_ = false;
  WsFrameDecoder decoder_;
  std::mt19937 mask_rng_;
};

}  // namespace toyhost
