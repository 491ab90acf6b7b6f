// Estimates how much of the current response the speaker has played.
//
// Models the speaker as a queue drained at real time: each packet adds its
// duration, wall time drains it, and an empty queue (underrun) does not
// count as playing. This is what `audio_end_ms` in INTERRUPT must report:
// audio actually heard, not audio received.
#pragma once

#include <cstdint>

namespace toy {

class PlayoutClock {
 public:
  void reset(uint32_t now_ms);
  void add_samples_48k(uint32_t now_ms, uint32_t samples);
  uint32_t played_ms(uint32_t now_ms);
  uint32_t queued_ms(uint32_t now_ms);

 private:
  void advance(uint32_t now_ms);

  uint64_t queued_samples_ = 0;
  uint64_t played_samples_ = 0;
  uint32_t last_ms_ = 0;
};

}  // namespace toy
