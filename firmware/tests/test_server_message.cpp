// Server message classification, field typing and clamping.
#include <string>

#include "harness.h"
#include "toycore/server_message.h"

using toy::ServerMessageKind;

static toy::ServerMessage parse(const std::string& s) {
  static toy::FlatJson scratch;
  return toy::parse_server_message(scratch, s.data(), s.size());
}

TEST(classifies_every_server_message) {
  CHECK_EQ(parse(R"({"type":"server","msg":"RESPONSE.CREATED"})").kind, ServerMessageKind::kResponseCreated);
  CHECK_EQ(parse(R"({"type":"server","msg":"AUDIO.COMMITTED"})").kind, ServerMessageKind::kAudioCommitted);
  CHECK_EQ(parse(R"({"type":"server","msg":"RESPONSE.COMPLETE"})").kind, ServerMessageKind::kResponseComplete);
  CHECK_EQ(parse(R"({"type":"server","msg":"RESPONSE.ERROR"})").kind, ServerMessageKind::kResponseError);
  CHECK_EQ(parse(R"({"type":"server","msg":"SESSION.END"})").kind, ServerMessageKind::kSessionEnd);
  CHECK_EQ(parse(R"({"msg":"SESSION.END","type":"server"})").kind, ServerMessageKind::kSessionEnd);
}

TEST(unknown_and_invalid) {
  CHECK_EQ(parse(R"({"type":"foo"})").kind, ServerMessageKind::kUnknown);
  CHECK_EQ(parse(R"({"type":"server"})").kind, ServerMessageKind::kUnknown);
  CHECK_EQ(parse(R"({"type":"server","msg":"response.created"})").kind, ServerMessageKind::kUnknown);
  CHECK_EQ(parse(R"({"type":"server","msg":"SESSION.CREATED"})").kind, ServerMessageKind::kUnknown);
  CHECK_EQ(parse(R"({"type":"server","msg":5})").kind, ServerMessageKind::kUnknown);
  CHECK_EQ(parse(R"({"type":"instruction"})").kind, ServerMessageKind::kUnknown);
  CHECK_EQ(parse(R"({"type":"AUTH"})").kind, ServerMessageKind::kUnknown);
  CHECK_EQ(parse(R"({"msg":"SESSION.END"})").kind, ServerMessageKind::kInvalid);
  CHECK_EQ(parse(R"({"type":1})").kind, ServerMessageKind::kInvalid);
  CHECK_EQ(parse("hello").kind, ServerMessageKind::kInvalid);
  CHECK_EQ(parse("[]").kind, ServerMessageKind::kInvalid);
  CHECK_EQ(parse("").kind, ServerMessageKind::kInvalid);
}

TEST(auth_fields) {
  const auto m = parse(R"({"type":"auth","volume_control":55,"pitch_factor":1.5,"is_ota":true,"is_reset":false})");
  CHECK_EQ(m.kind, ServerMessageKind::kAuth);
  CHECK(m.auth.has_volume);
  CHECK_EQ(m.auth.volume_percent, 55);
  CHECK(m.auth.has_pitch);
  CHECK_EQ(m.auth.pitch_factor, 1.5f);
  CHECK(m.auth.is_ota);
  CHECK(!m.auth.is_reset);
}

TEST(auth_missing_fields_keep_defaults) {
  // The Elato firmware reads a missing volume as 0 (muted) and a missing
  // pitch as 0.0 (broken audio). We keep the defaults.
  const auto m = parse(R"({"type":"auth"})");
  CHECK_EQ(m.kind, ServerMessageKind::kAuth);
  CHECK(!m.auth.has_volume);
  CHECK(!m.auth.has_pitch);
  CHECK_EQ(m.auth.volume_percent, toy::kDefaultVolumePercent);
  CHECK_EQ(m.auth.pitch_factor, toy::kDefaultPitchFactor);
}

TEST(auth_ill_typed_fields_are_absent) {
  const auto m = parse(R"({"type":"auth","volume_control":"90","pitch_factor":"2","is_ota":"true","is_reset":1})");
  CHECK(!m.auth.has_volume);
  CHECK(!m.auth.has_pitch);
  CHECK(!m.auth.is_ota);
  CHECK(!m.auth.is_reset);  // only JSON true triggers a reboot
}

TEST(auth_clamping) {
  CHECK_EQ(parse(R"({"type":"auth","volume_control":250})").auth.volume_percent, toy::kMaxVolumePercent);
  CHECK_EQ(parse(R"({"type":"auth","volume_control":-5})").auth.volume_percent, toy::kMinVolumePercent);
  CHECK_EQ(parse(R"({"type":"auth","volume_control":1e300})").auth.volume_percent, toy::kMaxVolumePercent);
  CHECK_EQ(parse(R"({"type":"auth","volume_control":70.9})").auth.volume_percent, 70);
  CHECK_EQ(parse(R"({"type":"auth","pitch_factor":9})").auth.pitch_factor, toy::kMaxPitchFactor);
  CHECK_EQ(parse(R"({"type":"auth","pitch_factor":0.1})").auth.pitch_factor, toy::kMinPitchFactor);
  const auto zero = parse(R"({"type":"auth","pitch_factor":0})");
  CHECK(!zero.auth.has_pitch);
  CHECK_EQ(zero.auth.pitch_factor, toy::kDefaultPitchFactor);
  CHECK(!parse(R"({"type":"auth","pitch_factor":-1})").auth.has_pitch);
}

TEST(complete_volume) {
  const auto m = parse(R"({"type":"server","msg":"RESPONSE.COMPLETE","volume_control":40})");
  CHECK(m.has_volume);
  CHECK_EQ(m.volume_percent, 40);
  CHECK(!parse(R"({"type":"server","msg":"RESPONSE.COMPLETE"})").has_volume);
  CHECK(parse(R"({"type":"server","msg":"RESPONSE.ERROR","volume_control":10})").has_volume);
  CHECK(!parse(R"({"type":"server","msg":"RESPONSE.CREATED","volume_control":10})").has_volume);
}

TEST(kind_names) {
  CHECK_STR_EQ(toy::server_message_kind_name(ServerMessageKind::kAuth), "auth");
  CHECK_STR_EQ(toy::server_message_kind_name(ServerMessageKind::kSessionEnd), "SESSION.END");
}

TEST_MAIN()
