#include "toycore/server_message.h"

#include <cmath>

namespace toy {
namespace {

bool read_volume(const FlatJson& json, int* out) {
  double value = 0;
  if (!json.get_number("volume_control", &value)) return false;
  // Clamp before converting so an absurd value cannot overflow the cast.
  if (value < kMinVolumePercent) value = kMinVolumePercent;
  if (value > kMaxVolumePercent) value = kMaxVolumePercent;
  *out = static_cast<int>(std::trunc(value));
  return true;
}

bool read_pitch(const FlatJson& json, float* out) {
  double value = 0;
  if (!json.get_number("pitch_factor", &value)) return false;
  if (!(value > 0.0)) return false;  // 0 or negative would break the shifter
  if (value < kMinPitchFactor) value = kMinPitchFactor;
  if (value > kMaxPitchFactor) value = kMaxPitchFactor;
  *out = static_cast<float>(value);
  return true;
}

struct ServerMsgName {
  const char* msg;
  ServerMessageKind kind;
};

constexpr ServerMsgName kServerMsgs[] = {
    {"RESPONSE.CREATED", ServerMessageKind::kResponseCreated},
    {"AUDIO.COMMITTED", ServerMessageKind::kAudioCommitted},
    {"RESPONSE.COMPLETE", ServerMessageKind::kResponseComplete},
    {"RESPONSE.ERROR", ServerMessageKind::kResponseError},
    {"SESSION.END", ServerMessageKind::kSessionEnd},
};

}  // namespace

const char* server_message_kind_name(ServerMessageKind kind) {
  switch (kind) {
    case ServerMessageKind::kInvalid: return "invalid";
    case ServerMessageKind::kUnknown: return "unknown";
    case ServerMessageKind::kAuth: return "auth";
    case ServerMessageKind::kResponseCreated: return "RESPONSE.CREATED";
    case ServerMessageKind::kAudioCommitted: return "AUDIO.COMMITTED";
    case ServerMessageKind::kResponseComplete: return "RESPONSE.COMPLETE";
    case ServerMessageKind::kResponseError: return "RESPONSE.ERROR";
    case ServerMessageKind::kSessionEnd: return "SESSION.END";
  }
  return "invalid";
}

ServerMessage parse_server_message(FlatJson& json, const char* text, size_t len) {
  ServerMessage out;
  out.json_error = json.parse(text, len);
  if (out.json_error != JsonError::kNone) return out;  // kInvalid
  const JsonField* type = json.find("type");
  if (type == nullptr || type->type != JsonType::kString) return out;  // kInvalid

  if (json.string_equals("type", "auth")) {
    out.kind = ServerMessageKind::kAuth;
    out.auth.has_volume = read_volume(json, &out.auth.volume_percent);
    out.auth.has_pitch = read_pitch(json, &out.auth.pitch_factor);
    bool flag = false;
    out.auth.is_ota = json.get_bool("is_ota", &flag) && flag;
    flag = false;
    out.auth.is_reset = json.get_bool("is_reset", &flag) && flag;
    return out;
  }
  out.kind = ServerMessageKind::kUnknown;
  if (!json.string_equals("type", "server")) return out;
  for (const ServerMsgName& entry : kServerMsgs) {
    if (json.string_equals("msg", entry.msg)) {
      out.kind = entry.kind;
      break;
    }
  }
  if (out.kind == ServerMessageKind::kResponseComplete ||
      out.kind == ServerMessageKind::kResponseError) {
    out.has_volume = read_volume(json, &out.volume_percent);
  }
  return out;
}

}  // namespace toy
