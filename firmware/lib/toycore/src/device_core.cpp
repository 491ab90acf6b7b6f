#include "toycore/device_core.h"

#include "toycore/client_message.h"
#include "toycore/clock.h"
#include "toycore/opus_toc.h"

namespace toy {

// Rejects re-entrant calls: a sink that calls back into the core in the
// middle of a transition would observe (and corrupt) half-updated state.
class DeviceCore::CallGuard {
 public:
  explicit CallGuard(DeviceCore& core) : core_(core), entered_(!core.busy_) {
    if (entered_) {
      core_.busy_ = true;
    } else {
      ++core_.stats_.reentrant_calls;
    }
  }
  ~CallGuard() {
    if (entered_) core_.busy_ = false;
  }
  bool entered() const { return entered_; }

 private:
  DeviceCore& core_;
  bool entered_;
};

namespace {
bool is_session_state(DeviceState s) {
  return s == DeviceState::kWaitingAuth || s == DeviceState::kProcessing ||
         s == DeviceState::kSpeaking || s == DeviceState::kHold ||
         s == DeviceState::kListening || s == DeviceState::kEnding;
}
}  // namespace

DeviceCore::DeviceCore(const CoreConfig& config, const BootInfo& boot, ActionSink& sink)
    : config_(config), sink_(sink), backoff_(config.backoff, boot.random_seed),
      reset_flag_(boot.reset_flag) {}

// ---- action helpers ----------------------------------------------------

void DeviceCore::emit(ActionKind kind, int32_t value) {
  Action a;
  a.kind = kind;
  a.value = value;
  sink_.on_action(a);
}

void DeviceCore::emit_data(ActionKind kind, const void* data, size_t len) {
  Action a;
  a.kind = kind;
  a.data = static_cast<const uint8_t*>(data);
  a.len = len;
  sink_.on_action(a);
}

void DeviceCore::emit_note(const char* note) {
  Action a;
  a.kind = ActionKind::kNote;
  a.note = note;
  sink_.on_action(a);
}

// ---- state and deadlines -------------------------------------------------

void DeviceCore::arm(uint32_t now_ms, uint32_t delay_ms) {
  deadline_armed_ = true;
  deadline_ms_ = now_ms + delay_ms;
}

void DeviceCore::enter(DeviceState next, uint32_t now_ms) {
  const bool changed = next != state_;
  state_ = next;
  deadline_armed_ = false;
  switch (next) {
    case DeviceState::kConnecting: arm(now_ms, config_.connect_timeout_ms); break;
    case DeviceState::kWaitingAuth: arm(now_ms, config_.auth_timeout_ms); break;
    case DeviceState::kProcessing:
      arm(now_ms, greeted_ ? config_.processing_timeout_ms : config_.greeting_timeout_ms);
      break;
    case DeviceState::kSpeaking: arm(now_ms, config_.speaking_silence_timeout_ms); break;
    case DeviceState::kHold: arm(now_ms, config_.hold_ms); break;
    case DeviceState::kListening: arm(now_ms, config_.listening_silence_timeout_ms); break;
    case DeviceState::kEnding: arm(now_ms, config_.end_session_timeout_ms); break;
    case DeviceState::kIdle:  // armed by the caller with the backoff delay
    case DeviceState::kSleep:
    case DeviceState::kRebooting: break;
  }
  if (changed) emit(ActionKind::kStateChanged, static_cast<int32_t>(next));
  const LedPattern led = led_pattern_for(next);
  if (led != led_) {
    led_ = led;
    emit(ActionKind::kSetLed, static_cast<int32_t>(led));
  }
}

void DeviceCore::start(uint32_t now_ms) {
  CallGuard guard(*this);
  if (!guard.entered() || started_) return;
  started_ = true;
  emit(ActionKind::kSetLed, static_cast<int32_t>(led_pattern_for(DeviceState::kConnecting)));
  led_ = led_pattern_for(DeviceState::kConnecting);
  connect_now(now_ms);
}

void DeviceCore::tick(uint32_t now_ms) {
  CallGuard guard(*this);
  if (!guard.entered() || !started_) return;
  if (deadline_armed_ && deadline_reached(now_ms, deadline_ms_)) on_deadline(now_ms);
}

void DeviceCore::connect_now(uint32_t now_ms) {
  ++stats_.connect_attempts;
  socket_open_ = true;
  enter(DeviceState::kConnecting, now_ms);
  emit(ActionKind::kConnect);
}

void DeviceCore::on_deadline(uint32_t now_ms) {
  switch (state_) {
    case DeviceState::kIdle:
      connect_now(now_ms);
      break;
    case DeviceState::kConnecting:
      ++stats_.timeouts;
      lose_connection(now_ms, "connect timeout", true);
      break;
    case DeviceState::kWaitingAuth:
      ++stats_.timeouts;
      lose_connection(now_ms, "no auth from server", true);
      break;
    case DeviceState::kProcessing:
    case DeviceState::kSpeaking:
      // The server watchdogs (TE7-TE9) fire first; getting here means the
      // link is dead or half-open, and only a new connection fixes that.
      ++stats_.timeouts;
      lose_connection(now_ms, "server silent", true);
      break;
    case DeviceState::kHold:
      if (bracket_open_) {
        // CREATED arrived during the hold (the server broke TE4). The Elato
        // firmware would drop the whole response; we play the rest of it.
        emit(ActionKind::kSpeakerEnable, 1);
        enter(DeviceState::kSpeaking, now_ms);
      } else {
        emit(ActionKind::kFlushPlayback);
        emit(ActionKind::kSpeakerEnable, 0);
        mic_.clear();
        backoff_.reset();  // the session works: the next drop retries quickly
        enter(DeviceState::kListening, now_ms);
      }
      break;
    case DeviceState::kListening:
      ++stats_.timeouts;
      go_to_sleep(now_ms, "no server activity while listening");
      break;
    case DeviceState::kEnding:
      ++stats_.timeouts;
      go_to_sleep(now_ms, "no SESSION.END after END_SESSION");
      break;
    case DeviceState::kSleep:
    case DeviceState::kRebooting:
      break;
  }
}

void DeviceCore::lose_connection(uint32_t now_ms, const char* why, bool close_socket) {
  emit_note(why);
  if (state_ == DeviceState::kConnecting) {
    ++stats_.connect_failures;
  } else {
    ++stats_.connections_lost;
  }
  emit(ActionKind::kFlushPlayback);
  emit(ActionKind::kSpeakerEnable, 0);
  if (close_socket && socket_open_) emit(ActionKind::kCloseSocket);
  socket_open_ = false;
  mic_.clear();
  bracket_open_ = false;
  interrupted_ = false;
  const uint32_t delay = backoff_.next_delay_ms();
  enter(DeviceState::kIdle, now_ms);
  arm(now_ms, delay);
}

void DeviceCore::go_to_sleep(uint32_t now_ms, const char* why) {
  emit_note(why);
  emit(ActionKind::kFlushPlayback);
  emit(ActionKind::kSpeakerEnable, 0);
  if (socket_open_) emit(ActionKind::kCloseSocket);
  socket_open_ = false;
  mic_.clear();
  enter(DeviceState::kSleep, now_ms);
  emit(ActionKind::kSleep);
}

// ---- socket events -----------------------------------------------------------

void DeviceCore::on_connected(uint32_t now_ms) {
  CallGuard guard(*this);
  if (!guard.entered()) return;
  if (state_ != DeviceState::kConnecting) {
    ++stats_.stale_events;  // e.g. the 101 raced our connect timeout
    return;
  }
  greeted_ = false;
  bracket_open_ = false;
  interrupted_ = false;
  mic_.clear();
  enter(DeviceState::kWaitingAuth, now_ms);
}

void DeviceCore::on_disconnected(uint32_t now_ms) {
  CallGuard guard(*this);
  if (!guard.entered()) return;
  if (state_ == DeviceState::kEnding) {
    socket_open_ = false;
    go_to_sleep(now_ms, "server closed after END_SESSION");
    return;
  }
  if (state_ == DeviceState::kConnecting || is_session_state(state_)) {
    socket_open_ = false;
    lose_connection(now_ms, "socket closed", false);
    return;
  }
  ++stats_.stale_events;  // we had already closed it ourselves
}

void DeviceCore::on_text(uint32_t now_ms, const char* text, size_t len) {
  CallGuard guard(*this);
  if (!guard.entered()) return;
  if (!is_session_state(state_)) {
    ++stats_.stale_events;
    return;
  }
  ++stats_.texts_received;
  const ServerMessage msg = parse_server_message(json_, text, len);
  ++stats_.messages_by_kind[static_cast<size_t>(msg.kind)];
  if (state_ == DeviceState::kSpeaking) arm(now_ms, config_.speaking_silence_timeout_ms);
  handle_message(now_ms, msg);
}

void DeviceCore::handle_message(uint32_t now_ms, const ServerMessage& msg) {
  // Unlike the Elato firmware (which drops to IDLE on bad JSON and stops
  // both audio directions), anything we do not understand is ignored.
  if (msg.kind == ServerMessageKind::kInvalid || msg.kind == ServerMessageKind::kUnknown) return;

  if (msg.kind == ServerMessageKind::kSessionEnd) {
    stats_.session_end_received = true;
    go_to_sleep(now_ms, "SESSION.END");
    return;
  }
  if (state_ == DeviceState::kWaitingAuth) {
    if (msg.kind == ServerMessageKind::kAuth) {
      handle_auth(now_ms, msg.auth);
    } else {
      ++stats_.protocol_errors;  // I1: auth comes first
    }
    return;
  }
  if (state_ == DeviceState::kEnding) return;  // only SESSION.END matters now

  switch (msg.kind) {
    case ServerMessageKind::kAuth:
      ++stats_.protocol_errors;  // I1: exactly once
      break;
    case ServerMessageKind::kResponseCreated:
      if (state_ == DeviceState::kSpeaking) ++stats_.protocol_errors;  // I3: no nesting
      start_response(now_ms);
      break;
    case ServerMessageKind::kAudioCommitted:
      if (state_ == DeviceState::kListening) {
        mic_.clear();
        enter(DeviceState::kProcessing, now_ms);
      }
      break;
    case ServerMessageKind::kResponseComplete:
    case ServerMessageKind::kResponseError:
      close_turn(now_ms, msg);
      break;
    default:
      break;
  }
}

void DeviceCore::handle_auth(uint32_t now_ms, const AuthSettings& auth) {
  ++stats_.sessions;
  if (auth.is_reset) {
    if (!reset_flag_) {
      // Persist first: if the server says is_reset again after the reboot
      // we must know we already obeyed once (no reboot loop, spec §3.1).
      reset_flag_ = true;
      ++stats_.resets_honoured;
      emit_note("is_reset: rebooting once");
      emit(ActionKind::kPersistResetFlag, 1);
      emit(ActionKind::kFlushPlayback);
      emit(ActionKind::kSpeakerEnable, 0);
      emit(ActionKind::kCloseSocket);
      socket_open_ = false;
      enter(DeviceState::kRebooting, now_ms);
      emit(ActionKind::kReboot);
      return;
    }
    ++stats_.resets_refused;
    emit_note("is_reset refused: the previous boot already was a reset");
  } else if (reset_flag_) {
    reset_flag_ = false;
    emit(ActionKind::kPersistResetFlag, 0);
  }
  if (auth.is_ota) emit_note("is_ota ignored: this firmware updates over USB only");
  if (auth.has_volume) volume_percent_ = auth.volume_percent;
  if (auth.has_pitch) pitch_factor_ = auth.pitch_factor;
  emit(ActionKind::kSetVolume, volume_percent_);
  Action pitch;
  pitch.kind = ActionKind::kSetPitch;
  pitch.factor = pitch_factor_;
  sink_.on_action(pitch);
  enter(DeviceState::kProcessing, now_ms);
}

void DeviceCore::start_response(uint32_t now_ms) {
  ++stats_.responses_created;
  bracket_open_ = true;
  interrupted_ = false;
  playout_.reset(now_ms);
  if (state_ == DeviceState::kHold) return;  // binary stays gated until the hold ends
  mic_.clear();
  emit(ActionKind::kSpeakerEnable, 1);
  enter(DeviceState::kSpeaking, now_ms);
}

void DeviceCore::close_turn(uint32_t now_ms, const ServerMessage& msg) {
  if (msg.kind == ServerMessageKind::kResponseError) {
    ++stats_.response_errors;
  } else {
    ++stats_.responses_completed;
  }
  ++stats_.turns_closed;
  greeted_ = true;
  bracket_open_ = false;
  interrupted_ = false;
  if (msg.has_volume) {
    volume_percent_ = msg.volume_percent;
    emit(ActionKind::kSetVolume, volume_percent_);
  }
  mic_.clear();
  enter(DeviceState::kHold, now_ms);  // a COMPLETE during the hold restarts it
}

// ---- data ----------------------------------------------------------------------

void DeviceCore::on_binary(uint32_t now_ms, const uint8_t* data, size_t len) {
  CallGuard guard(*this);
  if (!guard.entered()) return;
  if (!is_session_state(state_)) {
    ++stats_.stale_events;
    return;
  }
  ++stats_.binary_received;
  if (state_ != DeviceState::kSpeaking) {
    ++stats_.packets_dropped;  // §3.2: binary only inside a bracket, never in the hold
    return;
  }
  arm(now_ms, config_.speaking_silence_timeout_ms);  // the server is alive
  if (interrupted_) {
    ++stats_.packets_dropped;
    ++stats_.packets_after_interrupt;
    return;
  }
  const uint32_t samples = (len <= config_.max_binary_bytes) ? opus_packet_samples_48k(data, len) : 0;
  if (samples == 0) {
    ++stats_.packets_rejected;
    return;
  }
  playout_.add_samples_48k(now_ms, samples);
  ++stats_.packets_played;
  emit_data(ActionKind::kPlayOpus, data, len);
}

void DeviceCore::on_mic_pcm(uint32_t now_ms, const uint8_t* data, size_t len) {
  (void)now_ms;  // gating depends on state only; kept for a uniform API
  CallGuard guard(*this);
  if (!guard.entered() || data == nullptr) return;
  if (state_ != DeviceState::kListening) {
    stats_.mic_bytes_discarded += static_cast<uint32_t>(len);
    return;
  }
  while (len > 0) {
    const size_t used = mic_.push(data, len);
    data += used;
    len -= used;
    if (mic_.full()) {
      emit_data(ActionKind::kSendBinary, mic_.chunk(), kMicChunkBytes);
      stats_.mic_bytes_sent += static_cast<uint32_t>(kMicChunkBytes);
      ++stats_.mic_chunks_sent;
      mic_.clear();
    }
  }
}

// ---- user input ----------------------------------------------------------------

void DeviceCore::send_interrupt(uint32_t now_ms) {
  const uint32_t played = playout_.played_ms(now_ms);
  char text[kClientMessageMaxBytes];
  const size_t n = format_interrupt_message(text, sizeof(text), played);
  if (n == 0) return;
  emit_data(ActionKind::kSendText, text, n);
  emit(ActionKind::kFlushPlayback);  // silence now; the server's COMPLETE follows
  interrupted_ = true;
  ++stats_.interrupts_sent;
  stats_.last_interrupt_audio_end_ms = played;
  arm(now_ms, config_.speaking_silence_timeout_ms);
}

void DeviceCore::on_button(uint32_t now_ms, ButtonEvent event) {
  if (event == ButtonEvent::kLongPress) {
    request_end_session(now_ms);
    return;
  }
  CallGuard guard(*this);
  if (!guard.entered() || event != ButtonEvent::kTap) return;
  if (state_ == DeviceState::kSpeaking && !interrupted_) {
    send_interrupt(now_ms);
  } else if (state_ == DeviceState::kListening && config_.tap_sends_end_of_speech) {
    emit_data(ActionKind::kSendText, kEndOfSpeechMessage, sizeof(kEndOfSpeechMessage) - 1);
    ++stats_.end_of_speech_sent;
  }
}

void DeviceCore::request_end_session(uint32_t now_ms) {
  CallGuard guard(*this);
  if (!guard.entered() || !started_) return;
  switch (state_) {
    case DeviceState::kWaitingAuth:
    case DeviceState::kProcessing:
    case DeviceState::kSpeaking:
    case DeviceState::kHold:
    case DeviceState::kListening:
      emit_data(ActionKind::kSendText, kEndSessionMessage, sizeof(kEndSessionMessage) - 1);
      ++stats_.end_session_sent;
      emit(ActionKind::kFlushPlayback);
      emit(ActionKind::kSpeakerEnable, 0);
      mic_.clear();
      bracket_open_ = false;
      enter(DeviceState::kEnding, now_ms);
      break;
    case DeviceState::kIdle:
    case DeviceState::kConnecting:
      go_to_sleep(now_ms, "sleep requested while offline");
      break;
    case DeviceState::kEnding:
      go_to_sleep(now_ms, "second long press: sleep now");
      break;
    case DeviceState::kSleep:
    case DeviceState::kRebooting:
      break;
  }
}

}  // namespace toy
