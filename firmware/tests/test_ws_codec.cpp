// RFC 6455 framing: SHA-1/base64 vectors, client frame encoding, server
// frame decoding (fragments, control frames, every protocol violation).
#include <string>
#include <vector>

#include "base64.h"
#include "harness.h"
#include "sha1.h"
#include "toycore/rng.h"
#include "ws_frame.h"

using toyhost::WsEventKind;
using toyhost::WsFrameDecoder;

static std::string hex(const uint8_t* p, size_t n) {
  static const char* digits = "0123456789abcdef";
  std::string s;
  for (size_t i = 0; i < n; ++i) {
    s += digits[p[i] >> 4];
    s += digits[p[i] & 15];
  }
  return s;
}

static std::vector<uint8_t> bytes(const std::string& s) { return std::vector<uint8_t>(s.begin(), s.end()); }

// An unmasked server frame.
static std::vector<uint8_t> server_frame(uint8_t first_byte, const std::vector<uint8_t>& payload) {
  std::vector<uint8_t> f{first_byte};
  if (payload.size() < 126) {
    f.push_back(static_cast<uint8_t>(payload.size()));
  } else if (payload.size() <= 0xFFFF) {
    f.push_back(126);
    f.push_back(static_cast<uint8_t>(payload.size() >> 8));
    f.push_back(static_cast<uint8_t>(payload.size()));
  } else {
    f.push_back(127);
    for (int s = 56; s >= 0; s -= 8) f.push_back(static_cast<uint8_t>(static_cast<uint64_t>(payload.size()) >> s));
  }
  f.insert(f.end(), payload.begin(), payload.end());
  return f;
}

TEST(sha1_vectors) {
  const std::string abc = "abc";
  auto d = toyhost::sha1(reinterpret_cast<const uint8_t*>(abc.data()), abc.size());
  CHECK_STR_EQ(hex(d.data(), d.size()), "a9993e364706816aba3e25717850c26c9cd0d89d");
  d = toyhost::sha1(nullptr, 0);
  CHECK_STR_EQ(hex(d.data(), d.size()), "da39a3ee5e6b4b0d3255bfef95601890afd80709");
  const std::string two_blocks = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
  d = toyhost::sha1(reinterpret_cast<const uint8_t*>(two_blocks.data()), two_blocks.size());
  CHECK_STR_EQ(hex(d.data(), d.size()), "84983e441c3bd26ebaae4aa1f95129e5e54670f1");
  const std::string million(1000000, 'a');
  d = toyhost::sha1(reinterpret_cast<const uint8_t*>(million.data()), million.size());
  CHECK_STR_EQ(hex(d.data(), d.size()), "34aa973cd4c4daa4f61eeb2bdbad27316534016f");
}

TEST(base64_vectors) {
  const char* in[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
  const char* out[] = {"", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
  for (int i = 0; i < 7; ++i) {
    const std::string s = in[i];
    CHECK_STR_EQ(toyhost::base64_encode(reinterpret_cast<const uint8_t*>(s.data()), s.size()), out[i]);
  }
}

TEST(client_frames_are_masked) {
  const uint8_t mask[4] = {0x37, 0xfa, 0x21, 0x3d};
  const std::string hello = "Hello";
  const auto f = toyhost::encode_client_frame(toyhost::WsOpcode::kText,
                                              reinterpret_cast<const uint8_t*>(hello.data()), hello.size(), mask);
  // RFC 6455 §5.7 example: a masked "Hello".
  const std::vector<uint8_t> expected = {0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58};
  CHECK(f == expected);
  const std::vector<uint8_t> medium(1024, 0);
  const auto m = toyhost::encode_client_frame(toyhost::WsOpcode::kBinary, medium.data(), medium.size(), mask);
  CHECK_EQ(m[0], 0x82);
  CHECK_EQ(m[1], 0x80 | 126);
  CHECK_EQ((m[2] << 8) | m[3], 1024);
  CHECK_EQ(m.size(), 4u + 4u + 1024u);
  const std::vector<uint8_t> big(70000, 0);
  const auto b = toyhost::encode_client_frame(toyhost::WsOpcode::kBinary, big.data(), big.size(), mask);
  CHECK_EQ(b[1], 0x80 | 127);
  CHECK_EQ(b.size(), 2u + 8u + 4u + 70000u);
}

TEST(decodes_text_binary_and_control) {
  WsFrameDecoder d;
  auto f = server_frame(0x81, bytes("{\"type\":\"auth\"}"));
  auto g = server_frame(0x82, std::vector<uint8_t>(300, 7));
  auto p = server_frame(0x89, bytes("pi"));
  auto c = server_frame(0x88, {0x03, 0xE8, 'b', 'y', 'e'});
  std::vector<uint8_t> all;
  for (auto* x : {&f, &g, &p, &c}) all.insert(all.end(), x->begin(), x->end());
  // Feed one byte at a time: every split point must work.
  std::vector<toyhost::WsEvent> events;
  for (uint8_t byte : all) {
    d.feed(&byte, 1);
    for (auto ev = d.next(); ev.kind != WsEventKind::kNone; ev = d.next()) events.push_back(ev);
  }
  CHECK_EQ(events.size(), 4u);
  CHECK(events[0].kind == WsEventKind::kText);
  CHECK(events[0].payload == bytes("{\"type\":\"auth\"}"));
  CHECK(events[1].kind == WsEventKind::kBinary);
  CHECK_EQ(events[1].payload.size(), 300u);
  CHECK(events[2].kind == WsEventKind::kPing);
  CHECK(events[2].payload == bytes("pi"));
  CHECK(events[3].kind == WsEventKind::kClose);
  CHECK_EQ(events[3].close_code, 1000);
  CHECK(events[3].payload == bytes("bye"));
  CHECK_EQ(d.buffered_bytes(), 0u);
}

TEST(reassembles_fragments_with_interleaved_ping) {
  WsFrameDecoder d;
  std::vector<uint8_t> all;
  for (const auto& fr : {server_frame(0x02, {1, 2}), server_frame(0x89, {}), server_frame(0x00, {3}),
                         server_frame(0x80, {4, 5})}) {
    all.insert(all.end(), fr.begin(), fr.end());
  }
  d.feed(all.data(), all.size());
  auto e1 = d.next();
  CHECK(e1.kind == WsEventKind::kPing);
  auto e2 = d.next();
  CHECK(e2.kind == WsEventKind::kBinary);
  CHECK(e2.payload == std::vector<uint8_t>({1, 2, 3, 4, 5}));
  CHECK(d.next().kind == WsEventKind::kNone);
}

TEST(close_variants) {
  WsFrameDecoder d;
  auto empty = server_frame(0x88, {});
  d.feed(empty.data(), empty.size());
  auto e = d.next();
  CHECK(e.kind == WsEventKind::kClose);
  CHECK_EQ(e.close_code, toyhost::kCloseNoStatus);
  WsFrameDecoder d2;
  auto custom = server_frame(0x88, {0x0F, 0xA0});  // 4000 "superseded" (spec C11)
  d2.feed(custom.data(), custom.size());
  CHECK_EQ(d2.next().close_code, 4000);
}

static uint16_t error_code_for(const std::vector<uint8_t>& input) {
  WsFrameDecoder d;
  d.feed(input.data(), input.size());
  for (int i = 0; i < 10; ++i) {
    auto e = d.next();
    if (e.kind == WsEventKind::kError) {
      CHECK(d.next().kind == WsEventKind::kNone);  // stays failed
      return e.close_code;
    }
    if (e.kind == WsEventKind::kNone) break;
  }
  return 0;
}

TEST(protocol_violations) {
  CHECK_EQ(error_code_for({0xC1, 0x00}), 1002);                          // RSV1 without extension
  CHECK_EQ(error_code_for({0x83, 0x00}), 1002);                          // reserved opcode
  CHECK_EQ(error_code_for({0x81, 0x81, 1, 2, 3, 4, 'x'}), 1002);         // masked server frame
  CHECK_EQ(error_code_for({0x09, 0x00}), 1002);                          // fragmented ping
  auto long_ping = server_frame(0x89, std::vector<uint8_t>(126, 0));
  CHECK_EQ(error_code_for(long_ping), 1002);                             // control payload > 125
  CHECK_EQ(error_code_for({0x80, 0x01, 'x'}), 1002);                     // continuation first
  auto twice = server_frame(0x01, bytes("a"));
  auto again = server_frame(0x81, bytes("b"));
  twice.insert(twice.end(), again.begin(), again.end());
  CHECK_EQ(error_code_for(twice), 1002);                                 // new message mid-fragment
  CHECK_EQ(error_code_for({0x88, 0x01, 0x03}), 1002);                    // 1-byte close
  CHECK_EQ(error_code_for({0x88, 0x02, 0x03, 0xED}), 1002);              // close code 1005 on the wire
  CHECK_EQ(error_code_for(server_frame(0x81, {0xC3, 0x28})), 1007);      // invalid UTF-8 text
  // Oversize: rejected from the length field alone, before buffering.
  CHECK_EQ(error_code_for({0x82, 127, 0, 0, 0, 0, 0, 1, 0, 1}), 1009);
  CHECK_EQ(error_code_for({0x82, 127, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF}), 1009);
  auto part1 = server_frame(0x02, std::vector<uint8_t>(40000, 0));
  auto part2 = server_frame(0x80, std::vector<uint8_t>(40000, 0));
  part1.insert(part1.end(), part2.begin(), part2.end());
  CHECK_EQ(error_code_for(part1), 1009);                                 // fragments add up
  // Exactly at the cap is fine.
  WsFrameDecoder ok;
  auto max = server_frame(0x82, std::vector<uint8_t>(toyhost::kWsMaxMessageBytes, 1));
  ok.feed(max.data(), max.size());
  CHECK(ok.next().kind == WsEventKind::kBinary);
}

TEST(utf8_validation) {
  CHECK(toyhost::is_valid_utf8(reinterpret_cast<const uint8_t*>("plain"), 5));
  const uint8_t good[] = {0xC3, 0xA9, 0xE2, 0x82, 0xAC, 0xF0, 0x9F, 0x98, 0x80};
  CHECK(toyhost::is_valid_utf8(good, sizeof(good)));
  const std::vector<std::vector<uint8_t>> bad = {{0x80}, {0xC0, 0xAF}, {0xE0, 0x80, 0x80}, {0xED, 0xA0, 0x80},
                                                 {0xF4, 0x90, 0x80, 0x80}, {0xF5}, {0xE2, 0x82}, {0xC3}};
  for (const auto& b : bad) CHECK(!toyhost::is_valid_utf8(b.data(), b.size()));
}

TEST(random_bytes_never_crash) {
  toy::Rng rng(77);
  for (int iter = 0; iter < 3000; ++iter) {
    WsFrameDecoder d;
    std::vector<uint8_t> junk(rng.up_to(200));
    for (auto& b : junk) b = static_cast<uint8_t>(rng.next());
    d.feed(junk.data(), junk.size());
    for (int i = 0; i < 50 && d.next().kind != WsEventKind::kNone; ++i) {
    }
    CHECK(d.buffered_bytes() <= junk.size());
  }
}

TEST_MAIN()
