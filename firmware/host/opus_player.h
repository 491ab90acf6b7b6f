// Decodes downstream Opus packets like the device does: one binary message
// = one raw Opus packet, decoded at 48 kHz mono (spec §4.1).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

struct OpusDecoder;

namespace toyhost {

constexpr int kPlaybackRateHz = 48000;
constexpr int kPlaybackChannels = 1;
// The longest Opus packet (120 ms) at 48 kHz.
constexpr int kMaxPacketSamples = 5760;

class OpusPlayer {
 public:
  OpusPlayer();
  ~OpusPlayer();
  OpusPlayer(const OpusPlayer&) = delete;
  OpusPlayer& operator=(const OpusPlayer&) = delete;

  bool ok() const { return decoder_ != nullptr; }
  // Appends the decoded samples to `pcm`; returns the sample count, or -1
  // when libopus rejects the packet.
  int decode(const uint8_t* packet, size_t len, std::vector<int16_t>* pcm);
  // Fresh decoder state (each response starts a fresh encoder on the server).
  void reset();

 private:
  OpusDecoder* decoder_ = nullptr;
};

}  // namespace toyhost
