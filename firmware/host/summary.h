// The one-line JSON summary toy-host prints on stdout.
#pragma once

#include <cstdint>
#include <string>

#include "toycore/device_core.h"

namespace toyhost {

struct RunResult {
  bool ok = false;              // the goal was reached (turns, and SESSION.END if asked)
  std::string reason;           // done | session_end | timeout | connect_failed | disconnected | ...
  std::string error;            // last transport error text, if any
  uint32_t turns_target = 0;    // closed responses needed (greeting + --turns)
  int http_status = 0;          // status of the last upgrade attempt
  int close_code_received = 0;  // close code sent by the server, 0 if none
  uint32_t connects = 0;
  uint32_t decode_errors = 0;
  uint32_t ws_errors = 0;       // framing violations by the server
  uint32_t pings_answered = 0;
  uint64_t samples_decoded = 0;
  bool interrupt_sent = false;
  int64_t elapsed_ms = 0;
  toy::CoreStats stats;
  int volume_percent = 0;
  float pitch_factor = 1.0f;
  std::string final_state;
};

// Things a conforming server never causes; the exit status is 0 only when
// `ok` and this is 0.
uint32_t count_errors(const RunResult& r);

std::string summary_json(const RunResult& r);

}  // namespace toyhost
