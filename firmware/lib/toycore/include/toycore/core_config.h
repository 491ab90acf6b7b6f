// Timing and size parameters of the device core. Defaults follow the spec
// (docs: shared/spec/esp32-elato.md); the device-side timeouts are set a
// few seconds above the matching server watchdogs so that a healthy server
// always speaks first, and only a dead or half-open link trips them.
#pragma once

#include <cstddef>
#include <cstdint>

#include "toycore/backoff.h"

namespace toy {

struct CoreConfig {
  // TE3: the device resumes listening 1000 ms after COMPLETE/ERROR.
  uint32_t hold_ms = 1000;
  // TCP + TLS + HTTP upgrade on an ESP32 takes a few seconds on slow Wi-Fi.
  uint32_t connect_timeout_ms = 15000;
  // TE1: auth within 500 ms of accept; 10x margin for slow links.
  uint32_t auth_timeout_ms = 5000;
  // TE9: the server closes the greeting within 15 s.
  uint32_t greeting_timeout_ms = 20000;
  // TE7: the server answers a COMMITTED within 15 s.
  uint32_t processing_timeout_ms = 20000;
  // TE8: the server closes a response after 10 s without a packet.
  uint32_t speaking_silence_timeout_ms = 15000;
  // L4: the server says goodbye after 300 s of idle listening. If even that
  // does not come, the link is dead: sleep rather than stream forever.
  uint32_t listening_silence_timeout_ms = 360000;
  // §3.3: the server sends SESSION.END then closes within 3 s.
  uint32_t end_session_timeout_ms = 4000;
  BackoffConfig backoff;
  // §3.2: the device's WebSocket library rejects messages >= 15 * 1024.
  size_t max_binary_bytes = 15 * 1024 - 1;
  // A tap while listening tells the server "I'm done talking" (§3.3).
  bool tap_sends_end_of_speech = true;
};

// Facts from non-volatile memory, read by the board at boot.
struct BootInfo {
  bool reset_flag = false;  // the previous boot was an `is_reset` reboot
  uint32_t random_seed = 0;
};

}  // namespace toy
