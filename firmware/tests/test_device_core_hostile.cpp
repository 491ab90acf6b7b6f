// DeviceCore under hostile input: garbage text, huge messages, unknown
// types, random binary and random event orders. The device must never
// crash, never play outside a bracket, never upload outside LISTENING, and
// keep working afterwards.
#include <string>
#include <vector>

#include "core_fixture.h"
#include "harness.h"
#include "toycore/rng.h"

using toy::ActionKind;
using toy::DeviceState;

namespace {
const std::vector<std::string> kGarbage = {
    "hello",
    "[]",
    "{}",
    "null",
    "{\"type\":\"foo\"}",
    "{\"type\":\"instruction\"}",
    "{\"type\":\"server\"}",
    "{\"type\":\"server\",\"msg\":\"BOGUS\"}",
    "{\"type\":\"server\",\"msg\":\"response.complete\"}",
    "{\"type\":\"server\",\"msg\":\"RESPONSE.COMPLETE\"",  // truncated
    "{\"type\":\"server\",\"msg\":\"RESPONSE.COMPLETE\",}",
    "{\"type\":\"server\",\"msg\":[\"RESPONSE.COMPLETE\"]}",
    "{\"type\":\"server\",\"msg\":\"SESSION.END\",\"msg\":\"X\"}",
    "{\"type\":\"auth\",\"is_reset\":\"true\"}",
    [] {  // an embedded NUL must not turn this into SESSION.END
      const char s[] = "{\"type\":\"server\",\"msg\":\"SESSION.END\0\"}";
      return std::string(s, sizeof(s) - 1);
    }(),
    std::string(5000, '{'),
    "{\"type\":\"" + std::string(100000, 'A') + "\"}",
    "{\"type\":\"server\",\"msg\":\"RESPONSE.COMPLETE" + std::string(500, ' ') + "\"}",
    "\xff\xfe\xfd",
};
}  // namespace

TEST(garbage_text_is_ignored_in_every_state) {
  Driver d;
  d.connect_and_auth();
  for (const auto& g : kGarbage) d.text(g);
  CHECK(d.state() == DeviceState::kProcessing);
  d.text(msg::kCreated);
  for (const auto& g : kGarbage) d.text(g);
  CHECK(d.state() == DeviceState::kSpeaking);
  d.bin(packet_120ms());
  CHECK_EQ(d.rec.count(ActionKind::kPlayOpus), 1u);
  d.text(msg::kComplete);
  d.advance(d.cfg.hold_ms);
  for (const auto& g : kGarbage) d.text(g);
  CHECK(d.state() == DeviceState::kListening);
  d.mic(toy::kMicChunkBytes);
  CHECK_EQ(d.rec.count(ActionKind::kSendBinary), 1u);
  const auto& s = d.core.stats();
  CHECK(s.messages_by_kind[static_cast<size_t>(toy::ServerMessageKind::kInvalid)] > 0);
  CHECK(s.messages_by_kind[static_cast<size_t>(toy::ServerMessageKind::kUnknown)] > 0);
  CHECK(!s.session_end_received);
  CHECK_EQ(s.resets_honoured, 0u);
}

TEST(garbage_before_auth_does_not_count_as_auth) {
  Driver d;
  d.core.start(d.t);
  d.core.on_connected(d.t);
  for (const auto& g : kGarbage) {
    // An ill-typed auth is still an auth (fields fall back to defaults).
    if (g.rfind("{\"type\":\"auth\"", 0) != 0) d.text(g);
  }
  CHECK(d.state() == DeviceState::kWaitingAuth);
  CHECK(!d.rec.has(ActionKind::kReboot));
}

TEST(null_and_empty_inputs) {
  Driver d;
  d.connect_and_auth();
  d.core.on_text(d.t, nullptr, 0);
  d.core.on_text(d.t, nullptr, 10);
  d.core.on_binary(d.t, nullptr, 0);
  d.core.on_binary(d.t, nullptr, 100);
  d.core.on_mic_pcm(d.t, nullptr, 100);
  CHECK(d.state() == DeviceState::kProcessing);
}

TEST(random_event_soup_keeps_invariants) {
  for (uint32_t seed = 1; seed <= 20; ++seed) {
    toy::Rng rng(seed);
    toy::CoreConfig cfg;
    cfg.listening_silence_timeout_ms = 60000;
    Driver d(cfg, toy::BootInfo{rng.up_to(1) == 1, seed});
    int violations = 0;
    d.rec.hook = [&](const toy::Action& a) {
      // Checked at the moment the action is emitted.
      if (a.kind == ActionKind::kPlayOpus && d.core.state() != DeviceState::kSpeaking) ++violations;
      if (a.kind == ActionKind::kSendBinary &&
          (d.core.state() != DeviceState::kListening || a.len != toy::kMicChunkBytes))
        ++violations;
    };
    const std::vector<std::string> valid = {msg::kAuth,     msg::kCreated, msg::kCommitted, msg::kComplete,
                                            msg::kError,    msg::kCreated, msg::kComplete,  msg::kSessionEnd};
    d.core.start(d.t);
    for (int step = 0; step < 20000 && d.state() != DeviceState::kSleep && d.state() != DeviceState::kRebooting;
         ++step) {
      switch (rng.up_to(11)) {
        case 0: d.core.on_connected(d.t); break;
        case 1:
          if (rng.up_to(20) == 0) d.core.on_disconnected(d.t);
          break;
        case 2: {
          const std::string& m = valid[rng.up_to(static_cast<uint32_t>(valid.size() - 1))];
          if (m != msg::kSessionEnd || rng.up_to(50) == 0) d.text(m);
          break;
        }
        case 3: d.text(kGarbage[rng.up_to(static_cast<uint32_t>(kGarbage.size() - 1))]); break;
        case 4: {
          std::vector<uint8_t> p(rng.up_to(2000));
          for (auto& b : p) b = static_cast<uint8_t>(rng.next());
          d.bin(p);
          break;
        }
        case 5: d.bin(packet_120ms()); break;
        case 6: d.mic(rng.up_to(3000)); break;
        case 7: d.advance(rng.up_to(300)); break;
        case 8:
          if (rng.up_to(30) == 0) d.core.on_button(d.t, toy::ButtonEvent::kTap);
          break;
        case 9:
          if (rng.up_to(500) == 0) d.core.on_button(d.t, toy::ButtonEvent::kLongPress);
          break;
        default: d.advance(rng.up_to(5000)); break;
      }
    }
    CHECK_EQ(violations, 0);
    CHECK_EQ(d.core.stats().reentrant_calls, 0u);
    // is_reset never honoured when the boot flag was already set.
    CHECK(d.core.stats().resets_honoured <= 1u);
  }
}

TEST(reset_loop_is_impossible) {
  // Simulate reboots: each boot reads the flag the previous one persisted.
  const std::string reset = R"({"type":"auth","volume_control":70,"pitch_factor":1.0,"is_ota":false,"is_reset":true})";
  bool persisted = false;
  int reboots = 0;
  for (int boot = 0; boot < 10; ++boot) {
    Driver d(toy::CoreConfig(), toy::BootInfo{persisted, static_cast<uint32_t>(boot + 1)});
    d.core.start(d.t);
    d.core.on_connected(d.t);
    d.text(reset);
    if (const auto* p = d.rec.last(ActionKind::kPersistResetFlag)) persisted = p->value != 0;
    if (d.rec.has(ActionKind::kReboot)) ++reboots;
  }
  CHECK_EQ(reboots, 1);
}

TEST_MAIN()
