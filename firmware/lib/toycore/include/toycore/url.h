// Parses the server URL (ws://host[:port]/path or wss://...).
#pragma once

#include <cstddef>
#include <cstdint>

namespace toy {

constexpr size_t kUrlMaxHostBytes = 253;  // longest DNS name
constexpr size_t kUrlMaxPathBytes = 256;
constexpr uint16_t kDefaultWsPort = 80;
constexpr uint16_t kDefaultWssPort = 443;

struct WsUrl {
  bool secure = false;  // wss
  char host[kUrlMaxHostBytes + 1] = {};
  uint16_t port = 0;
  char path[kUrlMaxPathBytes + 1] = {};  // always starts with '/'
};

// Rejects: other schemes, empty or over-long host, user-info, IPv6
// literals, bad or zero port, spaces / control characters anywhere, and a
// fragment. Returns false and leaves `out` unspecified on failure.
bool parse_ws_url(const char* text, WsUrl* out);

}  // namespace toy
