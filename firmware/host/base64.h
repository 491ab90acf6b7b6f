// Base64 (RFC 4648) encoding, for Sec-WebSocket-Key / -Accept.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace toyhost {

std::string base64_encode(const uint8_t* data, size_t len);

}  // namespace toyhost
