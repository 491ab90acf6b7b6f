#include "toycore/opus_toc.h"

namespace toy {
namespace {

// Frame sizes in 48 kHz samples: 2.5, 5, 10, 20, 40, 60 ms.
constexpr uint32_t kSamples2_5ms = 120;
constexpr uint32_t kSamples5ms = 240;
constexpr uint32_t kSamples10ms = 480;
constexpr uint32_t kSamples20ms = 960;
constexpr uint32_t kSamples40ms = 1920;
constexpr uint32_t kSamples60ms = 2880;

constexpr uint8_t kLastSilkConfig = 11;
constexpr uint8_t kLastHybridConfig = 15;
constexpr uint8_t kFrameCountMask = 0x3F;

uint32_t frame_samples(uint8_t config) {
  if (config <= kLastSilkConfig) {
    constexpr uint32_t kSilk[] = {kSamples10ms, kSamples20ms, kSamples40ms, kSamples60ms};
    return kSilk[config % 4];
  }
  if (config <= kLastHybridConfig) {
    constexpr uint32_t kHybrid[] = {kSamples10ms, kSamples20ms};
    return kHybrid[config % 2];
  }
  constexpr uint32_t kCelt[] = {kSamples2_5ms, kSamples5ms, kSamples10ms, kSamples20ms};
  return kCelt[config % 4];
}

}  // namespace

uint32_t opus_packet_samples_48k(const uint8_t* packet, size_t len) {
  if (packet == nullptr || len == 0) return 0;
  const uint8_t toc = packet[0];
  const uint32_t per_frame = frame_samples(static_cast<uint8_t>(toc >> 3));
  uint32_t frames = 0;
  switch (toc & 0x3) {
    case 0: frames = 1; break;
    case 1: frames = 2; break;   // two frames of equal size
    case 2:                      // two frames, first length coded in the next byte
      if (len < 2) return 0;
      frames = 2;
      break;
    default:                     // code 3: arbitrary number of frames
      if (len < 2) return 0;
      frames = packet[1] & kFrameCountMask;
      break;
  }
  if (frames == 0) return 0;
  const uint32_t total = frames * per_frame;
  return total <= kOpusMaxPacketSamples48k ? total : 0;
}

}  // namespace toy
