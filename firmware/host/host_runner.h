// Runs the device core against a real server: the host-side equivalent of
// firmware/src/main.cpp, with a file for a microphone and libopus + a file
// for a speaker. Single-threaded: one poll() loop drives everything.
#pragma once

#include <cstdint>
#include <fstream>
#include <string>
#include <vector>

#include "cli_options.h"
#include "mic_source.h"
#include "opus_player.h"
#include "summary.h"
#include "toycore/device_core.h"
#include "toycore/pitch_shifter.h"
#include "toycore/url.h"
#include "ws_client.h"

namespace toyhost {

class HostRunner : public toy::ActionSink {
 public:
  explicit HostRunner(const Options& options);
  // Runs to completion; fills `result`. Returns the process exit status.
  int run(RunResult* result);

  void on_action(const toy::Action& action) override;

 private:
  toy::CoreConfig make_config() const;
  uint32_t now_ms() const;
  void log(const std::string& line) const;
  void finish(bool ok, const std::string& reason);
  void do_connect();
  void do_close_handshake();
  void pump_socket(int wait_ms);
  void drain_events();
  void feed_mic();
  void check_goals();
  void play(const uint8_t* packet, size_t len);

  Options options_;
  toy::WsUrl url_;
  toy::CoreConfig config_;
  toy::DeviceCore core_;
  WsClient ws_;
  OpusPlayer player_;
  MicSource mic_;
  toy::PitchShifter pitch_;
  std::ofstream out_;
  RunResult result_;

  int64_t start_mono_ms_ = 0;
  uint32_t now_ms_ = 0;
  uint32_t mic_next_due_ms_ = 0;
  bool connect_requested_ = false;
  bool close_requested_ = false;
  bool finished_ = false;
  bool goal_reached_ = false;
  bool interrupt_done_ = false;
  toy::DeviceState state_ = toy::DeviceState::kIdle;
};

}  // namespace toyhost
