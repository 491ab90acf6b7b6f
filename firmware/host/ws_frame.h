// RFC 6455 framing, sans-I/O: an encoder for (masked) client frames and an
// incremental decoder for server frames. The socket code lives elsewhere.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace toyhost {

enum class WsOpcode : uint8_t {
  kContinuation = 0x0,
  kText = 0x1,
  kBinary = 0x2,
  kClose = 0x8,
  kPing = 0x9,
  kPong = 0xA,
};

// Same cap as our server's inbound limit (spec ES6); the device itself only
// accepts < 15 KiB, which the core enforces separately.
constexpr size_t kWsMaxMessageBytes = 64 * 1024;
constexpr size_t kWsMaxControlPayload = 125;
constexpr size_t kWsMaskBytes = 4;

// Close codes (RFC 6455 §7.4.1).
constexpr uint16_t kCloseNormal = 1000;
constexpr uint16_t kCloseProtocolError = 1002;
constexpr uint16_t kCloseNoStatus = 1005;
constexpr uint16_t kCloseInvalidPayload = 1007;
constexpr uint16_t kCloseTooBig = 1009;

// One complete frame, FIN set, payload masked with `mask` (client frames
// must always be masked, §5.3).
std::vector<uint8_t> encode_client_frame(WsOpcode opcode, const uint8_t* payload, size_t len,
                                         const uint8_t mask[kWsMaskBytes]);

bool is_valid_utf8(const uint8_t* data, size_t len);

enum class WsEventKind : uint8_t { kNone, kText, kBinary, kPing, kPong, kClose, kError };

struct WsEvent {
  WsEventKind kind = WsEventKind::kNone;
  std::vector<uint8_t> payload;  // message / ping payload / close reason
  uint16_t close_code = 0;       // kClose: the peer's code; kError: the code to send
  std::string error;             // kError: what was wrong
};

class WsFrameDecoder {
 public:
  // Appends bytes read from the socket. Drain next() after each feed: the
  // buffered data is then bounded by one frame (<= kWsMaxMessageBytes + header).
  void feed(const uint8_t* data, size_t len);
  // The next complete event, or kind == kNone if more bytes are needed.
  // After a kError the decoder stays failed.
  WsEvent next();
  size_t buffered_bytes() const { return in_.size() - start_; }

 private:
  WsEvent fail(uint16_t code, const char* why);

  std::vector<uint8_t> in_;
  size_t start_ = 0;
  std::vector<uint8_t> message_;
  WsOpcode message_opcode_ = WsOpcode::kBinary;
  bool in_message_ = false;
  bool failed_ = false;
};

}  // namespace toyhost
