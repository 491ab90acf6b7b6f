#include "toycore/url.h"

#include <cstring>

namespace toy {
namespace {
constexpr char kWsScheme[] = "ws://";
constexpr char kWssScheme[] = "wss://";
constexpr uint32_t kMaxPort = 65535;
constexpr size_t kMaxPortDigits = 5;

bool starts_with(const char* s, const char* prefix) {
  return std::strncmp(s, prefix, std::strlen(prefix)) == 0;
}

bool valid_host_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '.' || c == '_';
}
}  // namespace

bool parse_ws_url(const char* text, WsUrl* out) {
  if (text == nullptr || out == nullptr) return false;
  const char* p = text;
  if (starts_with(p, kWssScheme)) {
    out->secure = true;
    p += std::strlen(kWssScheme);
  } else if (starts_with(p, kWsScheme)) {
    out->secure = false;
    p += std::strlen(kWsScheme);
  } else {
    return false;
  }
  size_t host_len = 0;
  while (p[host_len] != '\0' && p[host_len] != ':' && p[host_len] != '/') {
    if (!valid_host_char(p[host_len])) return false;  // also rejects '@', '[', '?', spaces
    ++host_len;
  }
  if (host_len == 0 || host_len > kUrlMaxHostBytes) return false;
  std::memcpy(out->host, p, host_len);
  out->host[host_len] = '\0';
  p += host_len;

  out->port = out->secure ? kDefaultWssPort : kDefaultWsPort;
  if (*p == ':') {
    ++p;
    uint32_t port = 0;
    size_t digits = 0;
    while (*p >= '0' && *p <= '9') {
      if (++digits > kMaxPortDigits) return false;
      port = port * 10 + static_cast<uint32_t>(*p - '0');
      ++p;
    }
    if (digits == 0 || port == 0 || port > kMaxPort) return false;
    out->port = static_cast<uint16_t>(port);
  }
  if (*p == '\0') {
    std::strcpy(out->path, "/");
    return true;
  }
  if (*p != '/') return false;
  const size_t path_len = std::strlen(p);
  if (path_len > kUrlMaxPathBytes) return false;
  for (size_t i = 0; i < path_len; ++i) {
    const unsigned char c = static_cast<unsigned char>(p[i]);
    if (c <= ' ' || c >= 0x7F || c == '#') return false;
  }
  std::memcpy(out->path, p, path_len + 1);
  return true;
}

}  // namespace toy
