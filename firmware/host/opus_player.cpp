#include "opus_player.h"

#include <opus.h>

namespace toyhost {

OpusPlayer::OpusPlayer() {
  int err = OPUS_OK;
  decoder_ = opus_decoder_create(kPlaybackRateHz, kPlaybackChannels, &err);
  if (err != OPUS_OK) decoder_ = nullptr;
}

OpusPlayer::~OpusPlayer() {
  if (decoder_ != nullptr) opus_decoder_destroy(decoder_);
}

void OpusPlayer::reset() {
  if (decoder_ != nullptr) opus_decoder_ctl(decoder_, OPUS_RESET_STATE);
}

int OpusPlayer::decode(const uint8_t* packet, size_t len, std::vector<int16_t>* pcm) {
  if (decoder_ == nullptr || packet == nullptr || len == 0) return -1;
  int16_t buf[kMaxPacketSamples * kPlaybackChannels];
  const int n = opus_decode(decoder_, packet, static_cast<opus_int32>(len), buf, kMaxPacketSamples, 0);
  if (n < 0) return -1;
  pcm->insert(pcm->end(), buf, buf + n * kPlaybackChannels);
  return n;
}

}  // namespace toyhost
