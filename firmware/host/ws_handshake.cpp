#include "ws_handshake.h"

#include <cctype>
#include <cstring>

#include "base64.h"
#include "sha1.h"

namespace toyhost {
namespace {
constexpr char kWebSocketGuid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
constexpr char kHeaderEnd[] = "\r\n\r\n";
constexpr char kCrlf[] = "\r\n";

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string trim(const std::string& s) {
  size_t b = 0;
  size_t e = s.size();
  while (b < e && (s[b] == ' ' || s[b] == '\t')) ++b;
  while (e > b && (s[e - 1] == ' ' || s[e - 1] == '\t')) --e;
  return s.substr(b, e - b);
}

// True if a comma-separated header value contains `token` (case-insensitive),
// e.g. "Connection: keep-alive, Upgrade".
bool has_token(const std::string& value, const std::string& token) {
  size_t pos = 0;
  const std::string v = lower(value);
  while (pos <= v.size()) {
    size_t comma = v.find(',', pos);
    if (comma == std::string::npos) comma = v.size();
    if (trim(v.substr(pos, comma - pos)) == token) return true;
    pos = comma + 1;
  }
  return false;
}
}  // namespace

std::string build_upgrade_request(const UpgradeRequest& req) {
  std::string r;
  r += "GET " + req.path + " HTTP/1.1\r\n";
  r += "Host: " + req.host + ":" + std::to_string(req.port) + kCrlf;
  r += "Connection: Upgrade\r\n";
  r += "Upgrade: websocket\r\n";
  r += "Sec-WebSocket-Version: 13\r\n";
  r += "Sec-WebSocket-Key: " + req.key_base64 + kCrlf;
  if (!req.subprotocol.empty()) r += "Sec-WebSocket-Protocol: " + req.subprotocol + kCrlf;
  // The same extra headers, in the same order, as the board build.
  r += "Origin: file://\r\n";
  if (!req.mac.empty()) r += "X-Device-Mac: " + req.mac + kCrlf;
  if (!req.rssi.empty()) r += "X-Wifi-Rssi: " + req.rssi + kCrlf;
  r += "User-Agent: arduino-WebSocket-Client\r\n";
  if (!req.token.empty()) r += "Authorization: Bearer " + req.token + kCrlf;
  r += kCrlf;
  return r;
}

std::string accept_key_for(const std::string& key_base64) {
  const std::string input = key_base64 + kWebSocketGuid;
  const auto digest = sha1(reinterpret_cast<const uint8_t*>(input.data()), input.size());
  return base64_encode(digest.data(), digest.size());
}

UpgradeResponse parse_upgrade_response(const char* data, size_t len, const std::string& key_base64) {
  UpgradeResponse out;
  const std::string text(data, len);
  const size_t end = text.find(kHeaderEnd);
  if (end == std::string::npos) return out;
  out.complete = true;
  out.header_bytes = end + std::strlen(kHeaderEnd);

  size_t line_start = 0;
  size_t line_end = text.find(kCrlf);
  const std::string status_line = text.substr(0, line_end);
  // "HTTP/1.1 101 Switching Protocols"
  if (status_line.compare(0, 5, "HTTP/") != 0 || status_line.size() < 12) {
    out.error = "malformed status line";
    return out;
  }
  const size_t sp = status_line.find(' ');
  if (sp == std::string::npos || sp + 4 > status_line.size()) {
    out.error = "malformed status line";
    return out;
  }
  for (size_t i = sp + 1; i < sp + 4; ++i) {
    if (!std::isdigit(static_cast<unsigned char>(status_line[i]))) {
      out.error = "malformed status code";
      return out;
    }
    out.status = out.status * 10 + (status_line[i] - '0');
  }

  bool upgrade_ok = false;
  bool connection_ok = false;
  std::string accept;
  std::string extensions;
  line_start = line_end + 2;
  while (line_start < end) {
    line_end = text.find(kCrlf, line_start);
    const std::string line = text.substr(line_start, line_end - line_start);
    line_start = line_end + 2;
    const size_t colon = line.find(':');
    if (colon == std::string::npos) continue;
    const std::string name = lower(trim(line.substr(0, colon)));
    const std::string value = trim(line.substr(colon + 1));
    if (name == "upgrade") upgrade_ok = lower(value) == "websocket";
    if (name == "connection") connection_ok = has_token(value, "upgrade");
    if (name == "sec-websocket-accept") accept = value;
    if (name == "sec-websocket-extensions") extensions = value;
    if (name == "sec-websocket-protocol") out.subprotocol = value;
  }
  if (out.status != kHttpSwitchingProtocols) {
    out.error = "HTTP " + std::to_string(out.status);
    return out;
  }
  if (!upgrade_ok || !connection_ok) {
    out.error = "missing Upgrade/Connection headers";
  } else if (accept != accept_key_for(key_base64)) {
    out.error = "wrong Sec-WebSocket-Accept";
  } else if (!extensions.empty()) {
    out.error = "server chose an extension we did not offer";  // spec C3
  } else if (!out.subprotocol.empty() && out.subprotocol != "arduino") {
    out.error = "server chose a subprotocol we did not offer";
  } else {
    out.ok = true;
  }
  return out;
}

}  // namespace toyhost
