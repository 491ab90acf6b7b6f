#include "summary.h"

#include <cstdio>

#include "opus_player.h"
#include "toycore/server_message.h"

namespace toyhost {
namespace {

constexpr uint64_t kMsPerSecond = 1000;

std::string quoted(const std::string& s) {
  std::string out = "\"";
  for (const char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\u%04x", static_cast<unsigned>(static_cast<unsigned char>(c)));
      out += buf;
    } else {
      out += c;
    }
  }
  return out + "\"";
}

class JsonObject {
 public:
  JsonObject& num(const char* key, uint64_t v) { return raw(key, std::to_string(v)); }
  JsonObject& num(const char* key, int64_t v) { return raw(key, std::to_string(v)); }
  JsonObject& num(const char* key, int v) { return raw(key, std::to_string(v)); }
  JsonObject& num(const char* key, uint32_t v) { return raw(key, std::to_string(v)); }
  JsonObject& flag(const char* key, bool v) { return raw(key, v ? "true" : "false"); }
  JsonObject& str(const char* key, const std::string& v) { return raw(key, quoted(v)); }
  JsonObject& raw(const char* key, const std::string& json) {
    body_ += body_.empty() ? "" : ",";
    body_ += quoted(key) + ":" + json;
    return *this;
  }
  std::string text() const { return "{" + body_ + "}"; }

 private:
  std::string body_;
};

uint32_t kind_count(const toy::CoreStats& s, toy::ServerMessageKind k) {
  return s.messages_by_kind[static_cast<size_t>(k)];
}

}  // namespace

uint32_t count_errors(const RunResult& r) {
  const toy::CoreStats& s = r.stats;
  // Packets dropped right after an INTERRUPT are expected (in flight), the
  // others mean binary outside a bracket or in the hold (spec I5, TE4).
  const uint32_t misplaced_packets = s.packets_dropped - s.packets_after_interrupt;
  return s.response_errors + r.decode_errors + s.packets_rejected + misplaced_packets +
         s.protocol_errors + kind_count(s, toy::ServerMessageKind::kInvalid) +
         kind_count(s, toy::ServerMessageKind::kUnknown) + r.ws_errors + s.timeouts;
}

std::string summary_json(const RunResult& r) {
  using toy::ServerMessageKind;
  const toy::CoreStats& s = r.stats;
  JsonObject messages;
  const ServerMessageKind kinds[] = {ServerMessageKind::kAuth, ServerMessageKind::kResponseCreated,
                                     ServerMessageKind::kAudioCommitted, ServerMessageKind::kResponseComplete,
                                     ServerMessageKind::kResponseError, ServerMessageKind::kSessionEnd,
                                     ServerMessageKind::kUnknown, ServerMessageKind::kInvalid};
  for (const ServerMessageKind k : kinds) messages.num(toy::server_message_kind_name(k), kind_count(s, k));
  messages.num("binary", s.binary_received);

  char pitch[32];
  std::snprintf(pitch, sizeof(pitch), "%.3g", static_cast<double>(r.pitch_factor));
  const uint64_t decoded_ms = r.samples_decoded * kMsPerSecond / kPlaybackRateHz;

  JsonObject o;
  o.flag("ok", r.ok)
      .str("reason", r.reason)
      .num("turns_target", r.turns_target)
      .num("turns_closed", s.turns_closed)
      .num("responses_completed", s.responses_completed)
      .num("response_errors", s.response_errors)
      .num("errors", count_errors(r))
      .num("packets", s.binary_received)
      .num("packets_played", s.packets_played)
      .num("packets_dropped", s.packets_dropped)
      .num("packets_rejected", s.packets_rejected)
      .num("decode_errors", r.decode_errors)
      .num("samples_decoded", r.samples_decoded)
      .num("decoded_ms", decoded_ms)
      .raw("messages", messages.text())
      .num("mic_bytes_sent", s.mic_bytes_sent)
      .flag("interrupt_sent", r.interrupt_sent)
      .raw("interrupt_audio_end_ms", r.interrupt_sent ? std::to_string(s.last_interrupt_audio_end_ms) : "null")
      .num("packets_after_interrupt", s.packets_after_interrupt)
      .flag("end_session_sent", s.end_session_sent > 0)
      .flag("session_end", s.session_end_received)
      .raw("close_code", r.close_code_received != 0 ? std::to_string(r.close_code_received) : "null")
      .num("http_status", r.http_status)
      .num("connects", r.connects)
      .num("connect_failures", s.connect_failures)
      .num("connections_lost", s.connections_lost)
      .num("timeouts", s.timeouts)
      .num("protocol_errors", s.protocol_errors)
      .num("ws_errors", r.ws_errors)
      .num("pings_answered", r.pings_answered)
      .num("volume", r.volume_percent)
      .raw("pitch", pitch)
      .str("final_state", r.final_state)
      .num("elapsed_ms", r.elapsed_ms)
      .str("error", r.error);
  return o.text();
}

}  // namespace toyhost
