// SHA-1 (FIPS 180-4). Used only for the WebSocket accept key, where
// RFC 6455 mandates it; it is not used for anything security-relevant.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

namespace toyhost {

constexpr size_t kSha1DigestBytes = 20;

std::array<uint8_t, kSha1DigestBytes> sha1(const uint8_t* data, size_t len);

}  // namespace toyhost
