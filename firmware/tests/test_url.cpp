// Server URL parsing.
#include <string>

#include "harness.h"
#include "toycore/url.h"

TEST(valid_urls) {
  toy::WsUrl u;
  CHECK(toy::parse_ws_url("ws://127.0.0.1:8080/ws/esp32", &u));
  CHECK(!u.secure);
  CHECK_STR_EQ(u.host, "127.0.0.1");
  CHECK_EQ(u.port, 8080);
  CHECK_STR_EQ(u.path, "/ws/esp32");
  CHECK(toy::parse_ws_url("wss://toys.example.com/ws/esp32", &u));
  CHECK(u.secure);
  CHECK_EQ(u.port, 443);
  CHECK(toy::parse_ws_url("ws://localhost", &u));
  CHECK_EQ(u.port, 80);
  CHECK_STR_EQ(u.path, "/");
  CHECK(toy::parse_ws_url("ws://h:65535/a?b=c", &u));
  CHECK_STR_EQ(u.path, "/a?b=c");
}

TEST(invalid_urls) {
  toy::WsUrl u;
  const char* bad[] = {"", "http://h/", "ws:/h", "ws://", "ws://:80/", "ws://h:0/", "ws://h:65536/",
                       "ws://h:123456/", "ws://h:/", "ws://h:8x/", "ws://user@h/", "ws://[::1]:80/",
                       "ws://h/a b", "ws://h/a#frag", "ws://h x/", "WS://h/", "ws://h\n/"};
  for (const char* s : bad) {
    if (toy::parse_ws_url(s, &u)) std::printf("    accepted: %s\n", s);
    CHECK(!toy::parse_ws_url(s, &u));
  }
  CHECK(!toy::parse_ws_url(nullptr, &u));
  const std::string long_host = "ws://" + std::string(300, 'a') + "/";
  CHECK(!toy::parse_ws_url(long_host.c_str(), &u));
  const std::string long_path = "ws://h/" + std::string(300, 'a');
  CHECK(!toy::parse_ws_url(long_path.c_str(), &u));
}

TEST_MAIN()
