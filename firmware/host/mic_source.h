// Plays a raw 16 kHz s16le mono file as the "microphone": from the start of
// each LISTENING period, then silence (like a child speaking once per turn).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace toyhost {

// Bound on the input file: ~17 minutes of 16 kHz audio.
constexpr size_t kMaxMicFileBytes = 32 * 1024 * 1024;

class MicSource {
 public:
  // An empty path means "silence only". Returns false (with `error`) if the
  // file cannot be read or is too large.
  bool load(const std::string& path, std::string* error);
  void restart() { position_ = 0; }
  // Fills `out` with the next `len` bytes: file content, then zeros.
  void read(uint8_t* out, size_t len);
  size_t size_bytes() const { return data_.size(); }

 private:
  std::vector<uint8_t> data_;
  size_t position_ = 0;
};

}  // namespace toyhost
