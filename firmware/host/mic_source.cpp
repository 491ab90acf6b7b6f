#include "mic_source.h"

#include <cstring>
#include <fstream>

namespace toyhost {

bool MicSource::load(const std::string& path, std::string* error) {
  data_.clear();
  position_ = 0;
  if (path.empty()) return true;
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) {
    *error = "cannot open mic file " + path;
    return false;
  }
  const std::streamoff size = in.tellg();
  if (size < 0 || static_cast<size_t>(size) > kMaxMicFileBytes) {
    *error = "mic file too large (max " + std::to_string(kMaxMicFileBytes) + " bytes)";
    return false;
  }
  data_.resize(static_cast<size_t>(size));
  in.seekg(0);
  if (size > 0 && !in.read(reinterpret_cast<char*>(data_.data()), size)) {
    *error = "cannot read mic file " + path;
    return false;
  }
  return true;
}

void MicSource::read(uint8_t* out, size_t len) {
  const size_t left = position_ < data_.size() ? data_.size() - position_ : 0;
  const size_t n = len < left ? len : left;
  if (n > 0) std::memcpy(out, data_.data() + position_, n);
  if (n < len) std::memset(out + n, 0, len - n);
  position_ += n;
}

}  // namespace toyhost
