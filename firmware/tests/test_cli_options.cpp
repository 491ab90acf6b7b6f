// toy-host command line parsing.
#include <string>
#include <vector>

#include "cli_options.h"
#include "harness.h"

static bool parse(const std::vector<std::string>& args, toyhost::Options* o, std::string* err) {
  return toyhost::parse_options(args, o, err);
}

TEST(full_command_line) {
  toyhost::Options o;
  std::string err;
  CHECK(parse({"--url", "ws://127.0.0.1:8080/ws/esp32", "--token", "T", "--mac", "24:0A:C4:12:34:56", "--mic",
               "in.raw", "--out", "heard.raw", "--turns", "3", "--timeout-s", "90", "--interrupt-after-ms", "800",
               "--end-session", "--max-connects", "4", "--silence-timeout-ms", "1500", "--seed", "7", "--verbose"},
              &o, &err));
  CHECK_STR_EQ(o.url, "ws://127.0.0.1:8080/ws/esp32");
  CHECK_STR_EQ(o.token, "T");
  CHECK_STR_EQ(o.mac, "24:0A:C4:12:34:56");
  CHECK_EQ(o.turns, 3u);
  CHECK_EQ(o.timeout_s, 90u);
  CHECK_EQ(o.interrupt_after_ms, 800);
  CHECK(o.end_session);
  CHECK_EQ(o.max_connects, 4u);
  CHECK_EQ(o.silence_timeout_ms, 1500);
  CHECK_EQ(o.seed, 7u);
  CHECK(o.verbose);
}

TEST(defaults) {
  toyhost::Options o;
  std::string err;
  CHECK(parse({"--url", "ws://h/", "--token", "t"}, &o, &err));
  CHECK_EQ(o.turns, 1u);
  CHECK_EQ(o.timeout_s, 60u);
  CHECK_EQ(o.interrupt_after_ms, -1);
  CHECK(!o.end_session);
  CHECK_EQ(o.max_connects, 1u);
  CHECK_STR_EQ(o.rssi, "-55");
}

TEST(errors) {
  toyhost::Options o;
  std::string err;
  CHECK(!parse({"--token", "t"}, &o, &err));
  CHECK(!parse({"--url", "ws://h/"}, &o, &err));
  CHECK(!parse({"--url", "ws://h/", "--token", "t", "--turns"}, &o, &err));
  CHECK(!parse({"--url", "ws://h/", "--token", "t", "--turns", "-1"}, &o, &err));
  CHECK(!parse({"--url", "ws://h/", "--token", "t", "--turns", "3x"}, &o, &err));
  CHECK(!parse({"--url", "ws://h/", "--token", "t", "--turns", "99999999999999999999"}, &o, &err));
  CHECK(!parse({"--url", "ws://h/", "--token", "t", "--timeout-s", "0"}, &o, &err));
  CHECK(!parse({"--url", "ws://h/", "--token", "t", "--max-connects", "0"}, &o, &err));
  CHECK(!parse({"--url", "ws://h/", "--token", "t", "--bogus"}, &o, &err));
  CHECK(err.find("--bogus") != std::string::npos);
  CHECK(parse({"--help"}, &o, &err));
  CHECK(o.help);
}

TEST_MAIN()
