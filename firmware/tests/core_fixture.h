// Shared helpers for DeviceCore tests: a recording sink and a driver with
// a fake clock.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "toycore/device_core.h"

struct RecordedAction {
  toy::ActionKind kind;
  std::string data;
  int32_t value;
  float factor;
  std::string note;
};

class Recorder : public toy::ActionSink {
 public:
  void on_action(const toy::Action& a) override {
    RecordedAction r{a.kind, std::string(), a.value, a.factor, a.note ? a.note : ""};
    if (a.data != nullptr) r.data.assign(reinterpret_cast<const char*>(a.data), a.len);
    actions.push_back(r);
    if (hook) hook(a);
  }
  size_t count(toy::ActionKind k) const {
    size_t n = 0;
    for (const auto& a : actions) n += (a.kind == k);
    return n;
  }
  bool has(toy::ActionKind k) const { return count(k) > 0; }
  std::vector<std::string> texts() const {
    std::vector<std::string> out;
    for (const auto& a : actions)
      if (a.kind == toy::ActionKind::kSendText) out.push_back(a.data);
    return out;
  }
  const RecordedAction* last(toy::ActionKind k) const {
    for (auto it = actions.rbegin(); it != actions.rend(); ++it)
      if (it->kind == k) return &*it;
    return nullptr;
  }
  void clear() { actions.clear(); }

  std::vector<RecordedAction> actions;
  std::function<void(const toy::Action&)> hook;
};

namespace msg {
inline const std::string kAuth =
    R"({"type":"auth","volume_control":70,"pitch_factor":1.0,"is_ota":false,"is_reset":false})";
inline const std::string kCreated = R"({"type":"server","msg":"RESPONSE.CREATED"})";
inline const std::string kCommitted = R"({"type":"server","msg":"AUDIO.COMMITTED"})";
inline const std::string kComplete = R"({"type":"server","msg":"RESPONSE.COMPLETE"})";
inline const std::string kError = R"({"type":"server","msg":"RESPONSE.ERROR"})";
inline const std::string kSessionEnd = R"({"type":"server","msg":"SESSION.END"})";
}  // namespace msg

// A 120 ms Opus packet as far as the TOC is concerned (config 3 = SILK
// 60 ms, code 3, 2 frames); the core never decodes the payload.
inline std::vector<uint8_t> packet_120ms() { return {0x1B, 0x02, 0xAA, 0xBB, 0xCC}; }

struct Driver {
  explicit Driver(toy::CoreConfig c = toy::CoreConfig(), toy::BootInfo boot = toy::BootInfo{false, 1},
                  uint32_t start_ms = 1000)
      : cfg(c), core(cfg, boot, rec), t(start_ms) {}

  void text(const std::string& s) { core.on_text(t, s.data(), s.size()); }
  void bin(const std::vector<uint8_t>& p) { core.on_binary(t, p.data(), p.size()); }
  void mic(size_t n) {
    std::vector<uint8_t> pcm(n, 0x11);
    core.on_mic_pcm(t, pcm.data(), pcm.size());
  }
  // Moves time forward in 1 ms steps, ticking like a busy loop would.
  void advance(uint32_t ms) {
    for (uint32_t i = 0; i < ms; ++i) {
      ++t;
      core.tick(t);
    }
  }
  void connect_and_auth() {
    core.start(t);
    core.on_connected(t);
    text(msg::kAuth);
  }
  // Greeting (CREATED, 3 packets, COMPLETE) then the hold, ending in LISTENING.
  void greet() {
    text(msg::kCreated);
    for (int i = 0; i < 3; ++i) bin(packet_120ms());
    text(msg::kComplete);
    advance(cfg.hold_ms);
  }
  toy::DeviceState state() const { return core.state(); }

  toy::CoreConfig cfg;
  Recorder rec;
  toy::DeviceCore core;
  uint32_t t;
};
