#include "cli_options.h"

#include <cerrno>
#include <cstdlib>

namespace toyhost {
namespace {
constexpr uint32_t kMaxTurns = 1000;
constexpr uint32_t kMaxTimeoutS = 24 * 60 * 60;
constexpr uint32_t kMaxConnects = 1000;
constexpr int64_t kMaxDurationMs = 24LL * 60 * 60 * 1000;

bool parse_u64(const std::string& text, uint64_t max, uint64_t* out) {
  if (text.empty() || text[0] == '-' || text[0] == '+') return false;
  errno = 0;
  char* end = nullptr;
  const unsigned long long v = std::strtoull(text.c_str(), &end, 10);
  if (errno != 0 || end == nullptr || *end != '\0' || v > max) return false;
  *out = v;
  return true;
}
}  // namespace

std::string usage_text() {
  return
      "usage: toy-host --url ws://HOST:PORT/ws/esp32 --token TOKEN [options]\n"
      "  --mac MAC                X-Device-Mac header (e.g. 24:0A:C4:12:34:56)\n"
      "  --rssi DBM               X-Wifi-Rssi header (default -55; empty to omit)\n"
      "  --mic FILE               microphone input, raw 16 kHz s16le mono; replayed\n"
      "                           from its start in every LISTENING period, then silence\n"
      "  --out FILE               decoded playback, raw 48 kHz s16le mono\n"
      "  --turns N                user turns after the greeting (default 1); done after\n"
      "                           N+1 closed responses (the greeting is turn 0)\n"
      "  --timeout-s S            give up after S seconds (default 60)\n"
      "  --interrupt-after-ms M   tap (INTERRUPT) M ms into the first non-greeting response\n"
      "  --end-session            send END_SESSION after the last turn, expect SESSION.END\n"
      "  --max-connects K         connection attempts allowed, with backoff (default 1)\n"
      "  --silence-timeout-ms T   server-silence timeouts (greeting/processing/speaking)\n"
      "  --apply-effects          apply volume and pitch to --out like the speaker path\n"
      "  --seed N                 backoff jitter seed (default: random)\n"
      "  --verbose                log events to stderr\n"
      "Prints one JSON summary line on stdout. Exit 0 on success, 1 on failure, 2 on usage.\n";
}

bool parse_options(const std::vector<std::string>& args, Options* out, std::string* error) {
  Options o;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    auto value = [&](std::string* v) {
      if (i + 1 >= args.size()) {
        *error = a + " needs a value";
        return false;
      }
      *v = args[++i];
      return true;
    };
    auto number = [&](uint64_t max, uint64_t* v) {
      std::string text;
      if (!value(&text)) return false;
      if (!parse_u64(text, max, v)) {
        *error = a + ": expected a number in [0, " + std::to_string(max) + "], got '" + text + "'";
        return false;
      }
      return true;
    };
    uint64_t n = 0;
    if (a == "--help" || a == "-h") {
      o.help = true;
    } else if (a == "--url") {
      if (!value(&o.url)) return false;
    } else if (a == "--token") {
      if (!value(&o.token)) return false;
    } else if (a == "--mac") {
      if (!value(&o.mac)) return false;
    } else if (a == "--rssi") {
      if (!value(&o.rssi)) return false;
    } else if (a == "--mic") {
      if (!value(&o.mic_path)) return false;
    } else if (a == "--out") {
      if (!value(&o.out_path)) return false;
    } else if (a == "--turns") {
      if (!number(kMaxTurns, &n)) return false;
      o.turns = static_cast<uint32_t>(n);
    } else if (a == "--timeout-s") {
      if (!number(kMaxTimeoutS, &n)) return false;
      if (n == 0) {
        *error = "--timeout-s must be > 0";
        return false;
      }
      o.timeout_s = static_cast<uint32_t>(n);
    } else if (a == "--interrupt-after-ms") {
      if (!number(kMaxDurationMs, &n)) return false;
      o.interrupt_after_ms = static_cast<int64_t>(n);
    } else if (a == "--end-session") {
      o.end_session = true;
    } else if (a == "--max-connects") {
      if (!number(kMaxConnects, &n)) return false;
      if (n == 0) {
        *error = "--max-connects must be > 0";
        return false;
      }
      o.max_connects = static_cast<uint32_t>(n);
    } else if (a == "--silence-timeout-ms") {
      if (!number(kMaxDurationMs, &n)) return false;
      o.silence_timeout_ms = static_cast<int64_t>(n);
    } else if (a == "--apply-effects") {
      o.apply_effects = true;
    } else if (a == "--seed") {
      if (!number(UINT32_MAX, &n)) return false;
      o.seed = static_cast<uint32_t>(n);
    } else if (a == "--verbose" || a == "-v") {
      o.verbose = true;
    } else {
      *error = "unknown option " + a;
      return false;
    }
  }
  if (!o.help) {
    if (o.url.empty()) {
      *error = "--url is required";
      return false;
    }
    if (o.token.empty()) {
      *error = "--token is required";
      return false;
    }
  }
  *out = o;
  return true;
}

}  // namespace toyhost
