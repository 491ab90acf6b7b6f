#include "toycore/mic_chunker.h"

#include <cstring>

namespace toy {

size_t MicChunker::push(const uint8_t* data, size_t len) {
  if (data == nullptr) return 0;
  const size_t room = kMicChunkBytes - fill_;
  const size_t n = len < room ? len : room;
  std::memcpy(buffer_ + fill_, data, n);
  fill_ += n;
  return n;
}

}  // namespace toy
