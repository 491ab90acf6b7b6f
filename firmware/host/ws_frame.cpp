#include "ws_frame.h"

namespace toyhost {
namespace {
constexpr uint8_t kFinBit = 0x80;
constexpr uint8_t kRsvBits = 0x70;
constexpr uint8_t kOpcodeMask = 0x0F;
constexpr uint8_t kMaskBit = 0x80;
constexpr uint8_t kLen7Mask = 0x7F;
constexpr uint8_t kLen16Marker = 126;
constexpr uint8_t kLen64Marker = 127;
constexpr size_t kLen16Bytes = 2;
constexpr size_t kLen64Bytes = 8;
constexpr size_t kMinHeaderBytes = 2;
constexpr uint8_t kControlBit = 0x08;
constexpr size_t kCloseCodeBytes = 2;
// Compact the input buffer once this much consumed data has piled up.
constexpr size_t kCompactThreshold = 64 * 1024;

bool known_opcode(uint8_t op) {
  return op == 0x0 || op == 0x1 || op == 0x2 || op == 0x8 || op == 0x9 || op == 0xA;
}

// Codes a peer may legitimately put in a close frame (RFC 6455 §7.4).
bool valid_close_code(uint16_t code) {
  constexpr uint16_t kFirstApplication = 3000;
  constexpr uint16_t kLastPrivate = 4999;
  if (code >= kFirstApplication && code <= kLastPrivate) return true;
  return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1011);
}
}  // namespace

std::vector<uint8_t> encode_client_frame(WsOpcode opcode, const uint8_t* payload, size_t len,
                                         const uint8_t mask[kWsMaskBytes]) {
  std::vector<uint8_t> out;
  out.reserve(len + kMinHeaderBytes + kLen64Bytes + kWsMaskBytes);
  out.push_back(static_cast<uint8_t>(kFinBit | static_cast<uint8_t>(opcode)));
  if (len < kLen16Marker) {
    out.push_back(static_cast<uint8_t>(kMaskBit | len));
  } else if (len <= 0xFFFF) {
    out.push_back(kMaskBit | kLen16Marker);
    out.push_back(static_cast<uint8_t>(len >> 8));
    out.push_back(static_cast<uint8_t>(len));
  } else {
    out.push_back(kMaskBit | kLen64Marker);
    const uint64_t n = len;
    for (int shift = 56; shift >= 0; shift -= 8) out.push_back(static_cast<uint8_t>(n >> shift));
  }
  out.insert(out.end(), mask, mask + kWsMaskBytes);
  for (size_t i = 0; i < len; ++i) out.push_back(static_cast<uint8_t>(payload[i] ^ mask[i % kWsMaskBytes]));
  return out;
}

bool is_valid_utf8(const uint8_t* s, size_t len) {
  size_t i = 0;
  while (i < len) {
    const uint8_t b = s[i];
    size_t extra = 0;
    uint8_t lo = 0x80;
    uint8_t hi = 0xBF;
    if (b < 0x80) {
      ++i;
      continue;
    } else if (b >= 0xC2 && b <= 0xDF) {
      extra = 1;
    } else if (b >= 0xE0 && b <= 0xEF) {
      extra = 2;
      if (b == 0xE0) lo = 0xA0;
      if (b == 0xED) hi = 0x9F;
    } else if (b >= 0xF0 && b <= 0xF4) {
      extra = 3;
      if (b == 0xF0) lo = 0x90;
      if (b == 0xF4) hi = 0x8F;
    } else {
      return false;
    }
    if (i + extra >= len) return false;  // truncated sequence
    for (size_t k = 1; k <= extra; ++k) {
      const uint8_t c = s[i + k];
      const uint8_t min = (k == 1) ? lo : 0x80;
      const uint8_t max = (k == 1) ? hi : 0xBF;
      if (c < min || c > max) return false;
    }
    i += extra + 1;
  }
  return true;
}

void WsFrameDecoder::feed(const uint8_t* data, size_t len) {
  if (failed_ || len == 0) return;
  if (start_ >= kCompactThreshold) {
    in_.erase(in_.begin(), in_.begin() + static_cast<std::ptrdiff_t>(start_));
    start_ = 0;
  }
  in_.insert(in_.end(), data, data + len);
}

WsEvent WsFrameDecoder::fail(uint16_t code, const char* why) {
  failed_ = true;
  in_.clear();
  start_ = 0;
  message_.clear();
  WsEvent ev;
  ev.kind = WsEventKind::kError;
  ev.close_code = code;
  ev.error = why;
  return ev;
}

WsEvent WsFrameDecoder::next() {
  for (;;) {
    WsEvent none;
    if (failed_) return none;
    const size_t avail = in_.size() - start_;
    if (avail < kMinHeaderBytes) return none;
    const uint8_t* p = in_.data() + start_;
    const bool fin = (p[0] & kFinBit) != 0;
    const uint8_t op = p[0] & kOpcodeMask;
    if ((p[0] & kRsvBits) != 0) return fail(kCloseProtocolError, "reserved bits set (no extension negotiated)");
    if (!known_opcode(op)) return fail(kCloseProtocolError, "unknown opcode");
    if ((p[1] & kMaskBit) != 0) return fail(kCloseProtocolError, "masked frame from server");
    size_t header = kMinHeaderBytes;
    uint64_t payload_len = p[1] & kLen7Mask;
    if (payload_len == kLen16Marker) {
      if (avail < header + kLen16Bytes) return none;
      payload_len = (uint64_t{p[2]} << 8) | p[3];
      header += kLen16Bytes;
    } else if (payload_len == kLen64Marker) {
      if (avail < header + kLen64Bytes) return none;
      payload_len = 0;
      for (size_t i = 0; i < kLen64Bytes; ++i) payload_len = (payload_len << 8) | p[2 + i];
      header += kLen64Bytes;
    }
    const bool control = (op & kControlBit) != 0;
    if (control && (!fin || payload_len > kWsMaxControlPayload)) {
      return fail(kCloseProtocolError, "bad control frame");
    }
    // Refuse before buffering: the length field alone must not make us allocate.
    if (payload_len > kWsMaxMessageBytes || (!control && message_.size() + payload_len > kWsMaxMessageBytes)) {
      return fail(kCloseTooBig, "message too big");
    }
    if (avail < header + payload_len) return none;
    const uint8_t* payload = p + header;
    const size_t n = static_cast<size_t>(payload_len);
    start_ += header + n;
    if (start_ == in_.size()) {
      in_.clear();
      start_ = 0;
    }

    WsEvent ev;
    if (control) {
      ev.payload.assign(payload, payload + n);
      if (op == static_cast<uint8_t>(WsOpcode::kPing)) {
        ev.kind = WsEventKind::kPing;
      } else if (op == static_cast<uint8_t>(WsOpcode::kPong)) {
        ev.kind = WsEventKind::kPong;
      } else {
        ev.kind = WsEventKind::kClose;
        if (n == 0) {
          ev.close_code = kCloseNoStatus;
        } else if (n < kCloseCodeBytes) {
          return fail(kCloseProtocolError, "close frame with a 1-byte payload");
        } else {
          ev.close_code = static_cast<uint16_t>((uint16_t{ev.payload[0]} << 8) | ev.payload[1]);
          if (!valid_close_code(ev.close_code)) return fail(kCloseProtocolError, "invalid close code");
          ev.payload.erase(ev.payload.begin(), ev.payload.begin() + kCloseCodeBytes);
        }
      }
      return ev;
    }
    if (op == static_cast<uint8_t>(WsOpcode::kContinuation)) {
      if (!in_message_) return fail(kCloseProtocolError, "continuation without a message");
    } else {
      if (in_message_) return fail(kCloseProtocolError, "new message inside a fragmented one");
      in_message_ = true;
      message_opcode_ = static_cast<WsOpcode>(op);
      message_.clear();
    }
    message_.insert(message_.end(), payload, payload + n);
    if (!fin) continue;  // wait for the rest of the fragmented message
    in_message_ = false;
    if (message_opcode_ == WsOpcode::kText) {
      if (!is_valid_utf8(message_.data(), message_.size())) return fail(kCloseInvalidPayload, "text is not UTF-8");
      ev.kind = WsEventKind::kText;
    } else {
      ev.kind = WsEventKind::kBinary;
    }
    ev.payload.swap(message_);
    message_.clear();
    return ev;
  }
}

}  // namespace toyhost
