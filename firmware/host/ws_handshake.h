// The HTTP/1.1 upgrade of RFC 6455 §4.1, with the device's headers
// (spec §2.2), sans-I/O: build the request text, validate the response text.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace toyhost {

constexpr size_t kMaxUpgradeResponseBytes = 8192;
constexpr int kHttpSwitchingProtocols = 101;

struct UpgradeRequest {
  std::string host;
  uint16_t port = 0;
  std::string path = "/";
  std::string token;        // sent as "Authorization: Bearer <token>"
  std::string mac;          // X-Device-Mac; omitted when empty
  std::string rssi;         // X-Wifi-Rssi; omitted when empty
  std::string key_base64;   // Sec-WebSocket-Key (16 random bytes, base64)
  std::string subprotocol = "arduino";
};

std::string build_upgrade_request(const UpgradeRequest& req);

// base64(SHA-1(key + RFC 6455 GUID)).
std::string accept_key_for(const std::string& key_base64);

struct UpgradeResponse {
  bool complete = false;   // the blank line ending the headers was found
  size_t header_bytes = 0; // bytes up to and including that blank line
  int status = 0;          // HTTP status code (0 if unparseable)
  bool ok = false;         // a valid 101 for our key
  std::string error;       // why not ok
  std::string subprotocol; // as echoed by the server (may be empty, spec C4)
};

// `data` holds what has been read so far; call again with more bytes while
// `complete` is false (and stop at kMaxUpgradeResponseBytes).
UpgradeResponse parse_upgrade_response(const char* data, size_t len, const std::string& key_base64);

}  // namespace toyhost
