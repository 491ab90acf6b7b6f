// Server -> device control messages (spec §3.1), decoded from JSON text.
#pragma once

#include <cstddef>
#include <cstdint>

#include "toycore/json_reader.h"

namespace toy {

// Volume and pitch limits. The Elato firmware reads a missing field as 0
// (muted / broken audio); we keep the previous (default) value instead.
constexpr int kDefaultVolumePercent = 70;
constexpr int kMinVolumePercent = 0;
constexpr int kMaxVolumePercent = 100;  // no boost: protects small speakers and ears
constexpr float kDefaultPitchFactor = 1.0f;
constexpr float kMinPitchFactor = 0.5f;
constexpr float kMaxPitchFactor = 2.0f;

enum class ServerMessageKind : uint8_t {
  kInvalid,  // not a well-formed flat JSON object, or `type` missing / not a string
  kUnknown,  // well-formed, but an unknown `type` or `msg` (ignored by design)
  kAuth,
  kResponseCreated,
  kAudioCommitted,
  kResponseComplete,
  kResponseError,
  kSessionEnd,
};

const char* server_message_kind_name(ServerMessageKind kind);

struct AuthSettings {
  bool has_volume = false;
  int volume_percent = kDefaultVolumePercent;  // clamped to [kMin, kMax]
  bool has_pitch = false;
  float pitch_factor = kDefaultPitchFactor;  // clamped; <= 0 is treated as absent
  bool is_ota = false;    // only a JSON `true` counts
  bool is_reset = false;  // only a JSON `true` counts ("true" the string does not)
};

struct ServerMessage {
  ServerMessageKind kind = ServerMessageKind::kInvalid;
  JsonError json_error = JsonError::kNone;
  AuthSettings auth;              // valid for kAuth
  bool has_volume = false;        // COMPLETE / ERROR may carry volume_control
  int volume_percent = kDefaultVolumePercent;
};

// `scratch` is caller-owned parse storage (about 2 KB), kept out of the
// stack because the board's loop task stack is small.
ServerMessage parse_server_message(FlatJson& scratch, const char* text, size_t len);

}  // namespace toy
