// Command line of toy-host.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace toyhost {

struct Options {
  std::string url;             // --url ws://127.0.0.1:8080/ws/esp32 (required)
  std::string token;           // --token (required; sent as Bearer)
  std::string mac;             // --mac 24:0A:C4:12:34:56 (X-Device-Mac; omitted if empty)
  std::string rssi = "-55";    // --rssi (X-Wifi-Rssi; "" omits it)
  std::string mic_path;        // --mic input.raw (16 kHz s16le mono; default: silence)
  std::string out_path;        // --out heard.raw (48 kHz s16le mono)
  uint32_t turns = 1;          // --turns N: user turns after the greeting
  uint32_t timeout_s = 60;     // --timeout-s: whole run
  int64_t interrupt_after_ms = -1;  // --interrupt-after-ms M (-1 = never)
  bool end_session = false;    // --end-session
  uint32_t max_connects = 1;   // --max-connects K: connection attempts allowed
  int64_t silence_timeout_ms = -1;  // --silence-timeout-ms: shorter server-silence timeouts (tests)
  bool apply_effects = false;  // --apply-effects: volume + pitch on --out, like the speaker path
  uint32_t seed = 0;           // --seed: backoff jitter seed (0 = random)
  bool verbose = false;        // --verbose: log events to stderr
  bool help = false;
};

// Returns false with a message in `error` on bad usage.
bool parse_options(const std::vector<std::string>& args, Options* out, std::string* error);
std::string usage_text();

}  // namespace toyhost
