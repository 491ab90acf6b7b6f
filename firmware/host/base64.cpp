#include "base64.h"

namespace toyhost {
namespace {
constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
constexpr size_t kInGroup = 3;
constexpr size_t kOutGroup = 4;
constexpr uint32_t kSixBits = 0x3F;
}  // namespace

std::string base64_encode(const uint8_t* data, size_t len) {
  std::string out;
  out.reserve((len + kInGroup - 1) / kInGroup * kOutGroup);
  size_t i = 0;
  for (; i + kInGroup <= len; i += kInGroup) {
    const uint32_t v = (uint32_t{data[i]} << 16) | (uint32_t{data[i + 1]} << 8) | data[i + 2];
    out += kAlphabet[(v >> 18) & kSixBits];
    out += kAlphabet[(v >> 12) & kSixBits];
    out += kAlphabet[(v >> 6) & kSixBits];
    out += kAlphabet[v & kSixBits];
  }
  const size_t rest = len - i;
  if (rest > 0) {
    uint32_t v = uint32_t{data[i]} << 16;
    if (rest == 2) v |= uint32_t{data[i + 1]} << 8;
    out += kAlphabet[(v >> 18) & kSixBits];
    out += kAlphabet[(v >> 12) & kSixBits];
    out += (rest == 2) ? kAlphabet[(v >> 6) & kSixBits] : '=';
    out += '=';
  }
  return out;
}

}  // namespace toyhost
