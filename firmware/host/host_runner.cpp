#include "host_runner.h"

#include <poll.h>

#include <chrono>
#include <iostream>
#include <random>
#include <thread>

#include "toycore/clock.h"
#include "toycore/pcm.h"

namespace toyhost {
namespace {
// The "microphone" delivers 20 ms blocks, like an I2S DMA buffer would;
// the core re-packs them into 1024-byte messages.
constexpr uint32_t kMicBlockMs = 20;
constexpr size_t kMicBlockBytes = toy::kMicRateHz / 1000 * kMicBlockMs * toy::kMicBytesPerSample;
// If the loop stalls, do not burst more than this much catch-up audio.
constexpr uint32_t kMicMaxCatchUpMs = 200;
constexpr int kLoopWaitMs = 5;  // interrupt timing resolution
constexpr int kCloseHandshakeMs = 1000;
constexpr int kMsPerSecond = 1000;

int64_t mono_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(steady_clock::now().time_since_epoch()).count();
}
}  // namespace

HostRunner::HostRunner(const Options& options)
    : options_(options),
      config_(make_config()),
      core_(config_, toy::BootInfo{false, options.seed != 0 ? options.seed : std::random_device{}()}, *this) {}

toy::CoreConfig HostRunner::make_config() const {
  toy::CoreConfig c;
  if (options_.silence_timeout_ms >= 0) {
    const auto t = static_cast<uint32_t>(options_.silence_timeout_ms);
    c.greeting_timeout_ms = t;
    c.processing_timeout_ms = t;
    c.speaking_silence_timeout_ms = t;
    if (c.auth_timeout_ms > t) c.auth_timeout_ms = t;
  }
  return c;
}

uint32_t HostRunner::now_ms() const { return static_cast<uint32_t>(mono_ms() - start_mono_ms_); }

void HostRunner::log(const std::string& line) const {
  if (options_.verbose) std::cerr << "[" << now_ms_ << " ms] " << line << "\n";
}

void HostRunner::finish(bool ok, const std::string& reason) {
  if (finished_) return;
  finished_ = true;
  result_.ok = ok;
  result_.reason = reason;
  log("finish: " + reason);
}

void HostRunner::on_action(const toy::Action& a) {
  using toy::ActionKind;
  switch (a.kind) {
    case ActionKind::kConnect:
      connect_requested_ = true;  // done after the core call returns (no re-entrancy)
      break;
    case ActionKind::kCloseSocket:
      close_requested_ = true;
      break;
    case ActionKind::kSendText:
      log("send text " + std::string(reinterpret_cast<const char*>(a.data), a.len));
      if (!ws_.send_text(a.data, a.len)) log("send text failed");
      break;
    case ActionKind::kSendBinary:
      if (!ws_.send_binary(a.data, a.len)) log("send binary failed");
      break;
    case ActionKind::kPlayOpus:
      play(a.data, a.len);
      break;
    case ActionKind::kSetVolume:
      log("volume " + std::to_string(a.value));
      break;
    case ActionKind::kSetPitch:
      pitch_.set_factor(a.factor);
      log("pitch " + std::to_string(a.factor));
      break;
    case ActionKind::kStateChanged: {
      const auto next = static_cast<toy::DeviceState>(a.value);
      log(std::string("state ") + toy::device_state_name(state_) + " -> " + toy::device_state_name(next));
      if (next == toy::DeviceState::kListening) {
        mic_.restart();  // "speak" the file again in every listening period
        mic_next_due_ms_ = now_ms_;
      }
      if (next == toy::DeviceState::kSpeaking && state_ != toy::DeviceState::kSpeaking) player_.reset();
      state_ = next;
      break;
    }
    case ActionKind::kSleep:
      if (goal_reached_ && options_.end_session) {
        const bool got_end = core_.stats().session_end_received;
        finish(got_end, got_end ? "session_end" : "no_session_end");
      } else {
        finish(false, core_.stats().session_end_received ? "session_end_early" : "sleep");
      }
      break;
    case ActionKind::kReboot:
      finish(false, "reboot_requested");
      break;
    case ActionKind::kNote:
      log(std::string("core: ") + a.note);
      break;
    case ActionKind::kFlushPlayback:
    case ActionKind::kSpeakerEnable:
    case ActionKind::kSetLed:
    case ActionKind::kPersistResetFlag:
      break;  // hardware-only
  }
}

void HostRunner::play(const uint8_t* packet, size_t len) {
  std::vector<int16_t> pcm;
  const int n = player_.decode(packet, len, &pcm);
  if (n < 0) {
    ++result_.decode_errors;
    log("opus decode error");
    return;
  }
  result_.samples_decoded += static_cast<uint64_t>(n);
  if (!out_.is_open()) return;
  if (options_.apply_effects) {
    pitch_.process(pcm.data(), pcm.size());
    toy::apply_volume(pcm.data(), pcm.size(), core_.volume_percent());
  }
  for (const int16_t s : pcm) {
    const auto u = static_cast<uint16_t>(s);
    const char le[2] = {static_cast<char>(u & 0xFF), static_cast<char>(u >> 8)};
    out_.write(le, sizeof(le));
  }
}

void HostRunner::do_connect() {
  connect_requested_ = false;
  if (result_.connects >= options_.max_connects) {
    finish(false, core_.stats().sessions > 0 ? "disconnected" : "connect_failed");
    return;
  }
  ++result_.connects;
  DeviceHeaders headers{options_.token, options_.mac, options_.rssi};
  log("connecting to " + options_.url);
  const ConnectResult r = ws_.connect(url_, headers, static_cast<int>(config_.connect_timeout_ms));
  now_ms_ = now_ms();
  result_.http_status = r.http_status;
  if (r.ok) {
    log("connected");
    core_.on_connected(now_ms_);
    return;
  }
  result_.error = r.error;
  log("connect failed: " + r.error);
  core_.on_disconnected(now_ms_);
}

void HostRunner::do_close_handshake() {
  close_requested_ = false;
  if (!ws_.is_open()) return;
  ws_.send_close(kCloseNormal);
  // Wait for the server's close frame, which may already be buffered (it
  // often travels right behind SESSION.END), so look before polling.
  const int64_t deadline = mono_ms() + kCloseHandshakeMs;
  for (;;) {
    for (WsEvent ev = ws_.next_event(); ev.kind != WsEventKind::kNone; ev = ws_.next_event()) {
      if (ev.kind == WsEventKind::kClose) {
        result_.close_code_received = ev.close_code;
        ws_.close_socket();
        return;
      }
      if (ev.kind == WsEventKind::kError) break;
    }
    const int64_t left = deadline - mono_ms();
    if (left <= 0) break;
    pollfd pfd{ws_.fd(), POLLIN, 0};
    if (poll(&pfd, 1, static_cast<int>(left)) != 1) break;
    const ReadStatus st = ws_.read_available();
    if (st == ReadStatus::kClosed || st == ReadStatus::kError) break;
  }
  ws_.close_socket();
}

void HostRunner::pump_socket(int wait_ms) {
  // Frames may already be buffered (e.g. `auth` arriving in the same TCP
  // segment as the 101), so drain before waiting for more.
  drain_events();
  if (close_requested_ || finished_ || !ws_.is_open()) return;
  pollfd pfd{ws_.fd(), POLLIN, 0};
  if (poll(&pfd, 1, wait_ms) != 1) return;
  const ReadStatus st = ws_.read_available();
  now_ms_ = now_ms();
  if (st == ReadStatus::kClosed || st == ReadStatus::kError) {
    log("socket closed by peer");
    ws_.close_socket();
    core_.on_disconnected(now_ms_);
    return;
  }
  drain_events();
}

void HostRunner::drain_events() {
  while (!close_requested_ && !finished_ && ws_.is_open()) {
    WsEvent ev = ws_.next_event();
    switch (ev.kind) {
      case WsEventKind::kNone:
        return;
      case WsEventKind::kText:
        log("recv text " + std::string(ev.payload.begin(), ev.payload.end()));
        core_.on_text(now_ms_, reinterpret_cast<const char*>(ev.payload.data()), ev.payload.size());
        break;
      case WsEventKind::kBinary:
        core_.on_binary(now_ms_, ev.payload.data(), ev.payload.size());
        break;
      case WsEventKind::kPing:
        ++result_.pings_answered;
        ws_.send_pong(ev.payload);
        break;
      case WsEventKind::kPong:
        break;
      case WsEventKind::kClose:
        log("server closed with " + std::to_string(ev.close_code));
        result_.close_code_received = ev.close_code;
        ws_.send_close(ev.close_code == kCloseNoStatus ? kCloseNormal : ev.close_code);
        ws_.close_socket();
        core_.on_disconnected(now_ms_);
        return;
      case WsEventKind::kError:
        log("websocket protocol error: " + ev.error);
        ++result_.ws_errors;
        result_.error = ev.error;
        ws_.send_close(ev.close_code);
        ws_.close_socket();
        core_.on_disconnected(now_ms_);
        return;
    }
  }
}

void HostRunner::feed_mic() {
  if (!core_.wants_mic()) return;
  if (toy::elapsed_ms(now_ms_, mic_next_due_ms_) > kMicMaxCatchUpMs &&
      toy::deadline_reached(now_ms_, mic_next_due_ms_)) {
    mic_next_due_ms_ = now_ms_ - kMicMaxCatchUpMs;
  }
  uint8_t block[kMicBlockBytes];
  while (core_.wants_mic() && toy::deadline_reached(now_ms_, mic_next_due_ms_)) {
    mic_.read(block, sizeof(block));
    core_.on_mic_pcm(now_ms_, block, sizeof(block));
    mic_next_due_ms_ += kMicBlockMs;
  }
}

void HostRunner::check_goals() {
  const toy::CoreStats& s = core_.stats();
  if (!goal_reached_ && s.turns_closed >= result_.turns_target) {
    goal_reached_ = true;
    if (options_.end_session) {
      log("goal reached: ending the session");
      core_.request_end_session(now_ms_);
    } else {
      close_requested_ = true;
      finish(true, "done");
    }
  }
  if (options_.interrupt_after_ms >= 0 && !interrupt_done_ && s.turns_closed >= 1 &&
      core_.state() == toy::DeviceState::kSpeaking &&
      core_.played_ms(now_ms_) >= static_cast<uint64_t>(options_.interrupt_after_ms)) {
    interrupt_done_ = true;
    log("tap: interrupt");
    core_.on_button(now_ms_, toy::ButtonEvent::kTap);
    result_.interrupt_sent = core_.stats().interrupts_sent > 0;
  }
}

int HostRunner::run(RunResult* result) {
  start_mono_ms_ = mono_ms();
  result_ = RunResult();
  result_.turns_target = options_.turns + 1;
  std::string error;
  bool setup_ok = toy::parse_ws_url(options_.url.c_str(), &url_);
  if (!setup_ok) error = "bad --url (expected ws://host[:port]/path)";
  if (setup_ok && url_.secure) {
    setup_ok = false;
    error = "toy-host speaks plain ws:// only";
  }
  if (setup_ok && !mic_.load(options_.mic_path, &error)) setup_ok = false;
  if (setup_ok && !player_.ok()) {
    setup_ok = false;
    error = "cannot create the Opus decoder";
  }
  if (setup_ok && !options_.out_path.empty()) {
    out_.open(options_.out_path, std::ios::binary | std::ios::trunc);
    if (!out_) {
      setup_ok = false;
      error = "cannot write " + options_.out_path;
    }
  }
  if (!setup_ok) {
    result_.error = error;
    finish(false, "setup_failed");
  }

  const int64_t run_deadline = start_mono_ms_ + static_cast<int64_t>(options_.timeout_s) * kMsPerSecond;
  if (!finished_) core_.start(now_ms_ = now_ms());
  while (!finished_) {
    now_ms_ = now_ms();
    if (close_requested_) do_close_handshake();
    if (connect_requested_) {
      do_connect();
      continue;
    }
    if (mono_ms() >= run_deadline) {
      finish(false, "timeout");
      break;
    }
    // With no reconnect left, a lost connection ends the run now rather
    // than after the backoff delay.
    if (core_.state() == toy::DeviceState::kIdle && result_.connects >= options_.max_connects) {
      finish(false, core_.stats().sessions > 0 ? "disconnected" : "connect_failed");
      break;
    }
    check_goals();
    feed_mic();
    if (ws_.is_open()) {
      pump_socket(kLoopWaitMs);
    } else {
      std::this_thread::sleep_for(std::chrono::milliseconds(kLoopWaitMs));
    }
    now_ms_ = now_ms();
    core_.tick(now_ms_);
  }
  if (close_requested_ || ws_.is_open()) do_close_handshake();

  result_.stats = core_.stats();
  result_.volume_percent = core_.volume_percent();
  result_.pitch_factor = core_.pitch_factor();
  result_.final_state = toy::device_state_name(core_.state());
  result_.elapsed_ms = mono_ms() - start_mono_ms_;
  *result = result_;
  if (result_.reason == "setup_failed") return 2;
  return (result_.ok && count_errors(result_) == 0) ? 0 : 1;
}

}  // namespace toyhost
