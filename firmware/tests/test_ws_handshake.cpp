// The upgrade request carries the device's headers; the response check
// enforces RFC 6455 §4.1 and spec C3/C4.
#include <string>

#include "harness.h"
#include "ws_handshake.h"

using toyhost::parse_upgrade_response;

TEST(accept_key_rfc_example) {
  // RFC 6455 §1.3.
  CHECK_STR_EQ(toyhost::accept_key_for("dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

TEST(request_has_device_headers) {
  toyhost::UpgradeRequest r;
  r.host = "127.0.0.1";
  r.port = 8080;
  r.path = "/ws/esp32";
  r.token = "T0K";
  r.mac = "24:0A:C4:12:34:56";
  r.rssi = "-55";
  r.key_base64 = "dGhlIHNhbXBsZSBub25jZQ==";
  const std::string req = toyhost::build_upgrade_request(r);
  CHECK(req.rfind("GET /ws/esp32 HTTP/1.1\r\n", 0) == 0);
  const char* must[] = {"Host: 127.0.0.1:8080\r\n", "Upgrade: websocket\r\n", "Connection: Upgrade\r\n",
                        "Sec-WebSocket-Version: 13\r\n", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n",
                        "Sec-WebSocket-Protocol: arduino\r\n", "Authorization: Bearer T0K\r\n",
                        "X-Device-Mac: 24:0A:C4:12:34:56\r\n", "X-Wifi-Rssi: -55\r\n", "Origin: file://\r\n",
                        "User-Agent: arduino-WebSocket-Client\r\n"};
  for (const char* h : must) {
    if (req.find(h) == std::string::npos) std::printf("    missing: %s", h);
    CHECK(req.find(h) != std::string::npos);
  }
  CHECK(req.find("Sec-WebSocket-Extensions") == std::string::npos);  // C3: no compression offered
  CHECK(req.size() >= 4 && req.compare(req.size() - 4, 4, "\r\n\r\n") == 0);
  r.mac.clear();
  r.rssi.clear();
  const std::string bare = toyhost::build_upgrade_request(r);
  CHECK(bare.find("X-Device-Mac") == std::string::npos);
  CHECK(bare.find("X-Wifi-Rssi") == std::string::npos);
}

static const std::string kKey = "dGhlIHNhbXBsZSBub25jZQ==";

TEST(accepts_valid_101) {
  const std::string resp =
      "HTTP/1.1 101 Switching Protocols\r\nUpgrade: WebSocket\r\nConnection: keep-alive, Upgrade\r\n"
      "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\nSec-WebSocket-Protocol: arduino\r\n\r\n" +
      std::string("\x81\x00", 2);
  const auto r = parse_upgrade_response(resp.data(), resp.size(), kKey);
  CHECK(r.complete);
  CHECK(r.ok);
  CHECK_EQ(r.status, 101);
  CHECK_EQ(r.header_bytes, resp.size() - 2);  // the frame bytes after it are not headers
  CHECK_STR_EQ(r.subprotocol, "arduino");
}

TEST(accepts_101_without_subprotocol) {
  const std::string resp =
      "HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: upgrade\r\n"
      "sec-websocket-accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";
  CHECK(parse_upgrade_response(resp.data(), resp.size(), kKey).ok);
}

TEST(incomplete_and_rejections) {
  const std::string partial = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n";
  CHECK(!parse_upgrade_response(partial.data(), partial.size(), kKey).complete);
  const std::string denied = "HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n";
  const auto r = parse_upgrade_response(denied.data(), denied.size(), kKey);
  CHECK(r.complete);
  CHECK(!r.ok);
  CHECK_EQ(r.status, 401);
  const std::string base =
      "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n";
  const std::string wrong_accept = base + "Sec-WebSocket-Accept: AAAA\r\n\r\n";
  CHECK(!parse_upgrade_response(wrong_accept.data(), wrong_accept.size(), kKey).ok);
  const std::string ext = base + "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
                                 "Sec-WebSocket-Extensions: permessage-deflate\r\n\r\n";
  CHECK(!parse_upgrade_response(ext.data(), ext.size(), kKey).ok);
  const std::string proto = base + "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
                                   "Sec-WebSocket-Protocol: chat\r\n\r\n";
  CHECK(!parse_upgrade_response(proto.data(), proto.size(), kKey).ok);
  const std::string no_upgrade = "HTTP/1.1 101 Switching Protocols\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";
  CHECK(!parse_upgrade_response(no_upgrade.data(), no_upgrade.size(), kKey).ok);
  const std::string junk = "garbage\r\n\r\n";
  CHECK(!parse_upgrade_response(junk.data(), junk.size(), kKey).ok);
  const std::string bad_code = "HTTP/1.1 1x1 Nope\r\n\r\n";
  CHECK(!parse_upgrade_response(bad_code.data(), bad_code.size(), kKey).ok);
}

TEST_MAIN()
