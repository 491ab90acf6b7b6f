#include "sha1.h"

namespace toyhost {
namespace {

constexpr size_t kBlockBytes = 64;
constexpr size_t kLengthBytes = 8;
constexpr size_t kScheduleWords = 80;
constexpr uint32_t kInit[5] = {0x67452301u, 0xEFCDAB89u, 0x98BADCFEu, 0x10325476u, 0xC3D2E1F0u};
constexpr uint32_t kRound[4] = {0x5A827999u, 0x6ED9EBA1u, 0x8F1BBCDCu, 0xCA62C1D6u};

uint32_t rotl(uint32_t x, unsigned n) { return (x << n) | (x >> (32 - n)); }

void compress(uint32_t h[5], const uint8_t* block) {
  uint32_t w[kScheduleWords];
  for (size_t i = 0; i < 16; ++i) {
    w[i] = (uint32_t{block[4 * i]} << 24) | (uint32_t{block[4 * i + 1]} << 16) |
           (uint32_t{block[4 * i + 2]} << 8) | uint32_t{block[4 * i + 3]};
  }
  for (size_t i = 16; i < kScheduleWords; ++i) w[i] = rotl(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
  uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4];
  for (size_t i = 0; i < kScheduleWords; ++i) {
    uint32_t f = 0;
    uint32_t k = 0;
    if (i < 20) {
      f = (b & c) | (~b & d);
      k = kRound[0];
    } else if (i < 40) {
      f = b ^ c ^ d;
      k = kRound[1];
    } else if (i < 60) {
      f = (b & c) | (b & d) | (c & d);
      k = kRound[2];
    } else {
      f = b ^ c ^ d;
      k = kRound[3];
    }
    const uint32_t t = rotl(a, 5) + f + e + k + w[i];
    e = d;
    d = c;
    c = rotl(b, 30);
    b = a;
    a = t;
  }
  h[0] += a;
  h[1] += b;
  h[2] += c;
  h[3] += d;
  h[4] += e;
}

}  // namespace

std::array<uint8_t, kSha1DigestBytes> sha1(const uint8_t* data, size_t len) {
  uint32_t h[5] = {kInit[0], kInit[1], kInit[2], kInit[3], kInit[4]};
  size_t i = 0;
  for (; i + kBlockBytes <= len; i += kBlockBytes) compress(h, data + i);

  // Padding: 0x80, zeros, then the bit length big-endian, over 1 or 2 blocks.
  uint8_t tail[2 * kBlockBytes] = {};
  const size_t rest = len - i;
  for (size_t j = 0; j < rest; ++j) tail[j] = data[i + j];
  tail[rest] = 0x80;
  const size_t tail_len = (rest + 1 + kLengthBytes <= kBlockBytes) ? kBlockBytes : 2 * kBlockBytes;
  const uint64_t bits = static_cast<uint64_t>(len) * 8;
  for (size_t j = 0; j < kLengthBytes; ++j) {
    tail[tail_len - 1 - j] = static_cast<uint8_t>(bits >> (8 * j));
  }
  for (size_t off = 0; off < tail_len; off += kBlockBytes) compress(h, tail + off);

  std::array<uint8_t, kSha1DigestBytes> out{};
  for (size_t j = 0; j < 5; ++j) {
    out[4 * j] = static_cast<uint8_t>(h[j] >> 24);
    out[4 * j + 1] = static_cast<uint8_t>(h[j] >> 16);
    out[4 * j + 2] = static_cast<uint8_t>(h[j] >> 8);
    out[4 * j + 3] = static_cast<uint8_t>(h[j]);
  }
  return out;
}

}  // namespace toyhost
