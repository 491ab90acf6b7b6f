// Packs microphone PCM into fixed-size upstream messages.
//
// The I2S driver hands over whatever it has (any length, possibly odd);
// the server treats upstream as a byte stream but the reference devices
// send 1024-byte messages (512 samples = 32 ms at 16 kHz), and a fixed
// size keeps the WebSocket frame rate predictable.
#pragma once

#include <cstddef>
#include <cstdint>

namespace toy {

constexpr uint32_t kMicRateHz = 16000;
constexpr size_t kMicBytesPerSample = 2;  // s16le mono
constexpr size_t kMicChunkBytes = 1024;

class MicChunker {
 public:
  // Copies bytes until the chunk is full; returns how many were consumed.
  // Call again with the rest after taking the full chunk.
  size_t push(const uint8_t* data, size_t len);
  bool full() const { return fill_ == kMicChunkBytes; }
  const uint8_t* chunk() const { return buffer_; }
  size_t pending_bytes() const { return fill_; }
  void clear() { fill_ = 0; }

 private:
  uint8_t buffer_[kMicChunkBytes];
  size_t fill_ = 0;
};

}  // namespace toy
