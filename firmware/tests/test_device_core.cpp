// DeviceCore: the protocol state machine, its timing and its gating.
#include <string>

#include "core_fixture.h"
#include "harness.h"

using toy::ActionKind;
using toy::DeviceState;

TEST(start_connects_immediately) {
  Driver d;
  d.core.start(d.t);
  CHECK(d.state() == DeviceState::kConnecting);
  CHECK_EQ(d.rec.count(ActionKind::kConnect), 1u);
  CHECK(d.rec.has(ActionKind::kSetLed));
  d.core.start(d.t);  // idempotent
  CHECK_EQ(d.rec.count(ActionKind::kConnect), 1u);
}

TEST(happy_path_greeting_then_turn) {
  Driver d;
  d.core.start(d.t);
  d.core.on_connected(d.t);
  CHECK(d.state() == DeviceState::kWaitingAuth);
  d.text(msg::kAuth);
  CHECK(d.state() == DeviceState::kProcessing);
  CHECK_EQ(d.rec.last(ActionKind::kSetVolume)->value, 70);
  CHECK_EQ(d.rec.last(ActionKind::kSetPitch)->factor, 1.0f);

  d.text(msg::kCreated);
  CHECK(d.state() == DeviceState::kSpeaking);
  CHECK_EQ(d.rec.last(ActionKind::kSpeakerEnable)->value, 1);
  d.bin(packet_120ms());
  CHECK_EQ(d.rec.count(ActionKind::kPlayOpus), 1u);
  CHECK(d.rec.last(ActionKind::kPlayOpus)->data == std::string("\x1B\x02\xAA\xBB\xCC", 5));

  d.text(msg::kComplete);
  CHECK(d.state() == DeviceState::kHold);
  CHECK_EQ(d.core.stats().turns_closed, 1u);
  d.advance(d.cfg.hold_ms - 1);
  CHECK(d.state() == DeviceState::kHold);
  d.advance(1);
  CHECK(d.state() == DeviceState::kListening);
  CHECK_EQ(d.rec.last(ActionKind::kSpeakerEnable)->value, 0);

  d.mic(3000);
  CHECK_EQ(d.rec.count(ActionKind::kSendBinary), 2u);
  CHECK_EQ(d.rec.last(ActionKind::kSendBinary)->data.size(), toy::kMicChunkBytes);
  d.text(msg::kCommitted);
  CHECK(d.state() == DeviceState::kProcessing);
  d.text(msg::kCreated);
  d.bin(packet_120ms());
  d.text(msg::kComplete);
  CHECK_EQ(d.core.stats().responses_completed, 2u);
  CHECK_EQ(d.core.stats().packets_played, 2u);
  CHECK_EQ(d.core.stats().packets_dropped, 0u);
}

TEST(binary_dropped_outside_bracket) {
  Driver d;
  d.core.start(d.t);
  d.core.on_connected(d.t);
  d.bin(packet_120ms());  // before auth
  d.text(msg::kAuth);
  d.bin(packet_120ms());  // PROCESSING, no CREATED yet
  d.text(msg::kCreated);
  d.text(msg::kComplete);
  d.bin(packet_120ms());  // in the hold
  d.advance(500);
  d.bin(packet_120ms());  // still in the hold
  d.advance(500);
  CHECK(d.state() == DeviceState::kListening);
  d.bin(packet_120ms());  // listening
  CHECK_EQ(d.rec.count(ActionKind::kPlayOpus), 0u);
  CHECK_EQ(d.core.stats().packets_dropped, 5u);
}

TEST(mic_only_while_listening) {
  Driver d;
  d.core.start(d.t);
  d.mic(2048);
  d.core.on_connected(d.t);
  d.mic(2048);
  d.text(msg::kAuth);
  d.mic(2048);
  d.text(msg::kCreated);
  d.mic(2048);
  d.text(msg::kComplete);
  d.mic(2048);
  CHECK_EQ(d.rec.count(ActionKind::kSendBinary), 0u);
  d.advance(d.cfg.hold_ms);
  d.mic(2048);
  CHECK_EQ(d.rec.count(ActionKind::kSendBinary), 2u);
  CHECK_EQ(d.core.stats().mic_bytes_discarded, 5u * 2048u);
}

TEST(partial_chunk_discarded_when_listening_ends) {
  Driver d;
  d.connect_and_auth();
  d.greet();
  d.mic(1000);  // pending, not sent
  d.text(msg::kCommitted);
  d.text(msg::kError);
  d.advance(d.cfg.hold_ms);
  d.rec.clear();
  std::vector<uint8_t> fresh(toy::kMicChunkBytes, 0x22);
  d.core.on_mic_pcm(d.t, fresh.data(), fresh.size());
  CHECK_EQ(d.rec.count(ActionKind::kSendBinary), 1u);
  CHECK(d.rec.last(ActionKind::kSendBinary)->data == std::string(toy::kMicChunkBytes, '\x22'));
}

TEST(created_inside_hold_is_gated_then_played) {
  Driver d;
  d.connect_and_auth();
  d.text(msg::kCreated);
  d.text(msg::kComplete);
  d.advance(300);
  d.text(msg::kCreated);  // breaks TE4
  CHECK(d.state() == DeviceState::kHold);
  d.bin(packet_120ms());
  CHECK_EQ(d.rec.count(ActionKind::kPlayOpus), 0u);
  d.advance(700);
  CHECK(d.state() == DeviceState::kSpeaking);  // not LISTENING: the bracket is open
  d.bin(packet_120ms());
  CHECK_EQ(d.rec.count(ActionKind::kPlayOpus), 1u);
  d.text(msg::kComplete);
  CHECK(d.state() == DeviceState::kHold);
}

TEST(complete_in_hold_restarts_hold) {
  Driver d;
  d.connect_and_auth();
  d.text(msg::kComplete);
  d.advance(800);
  d.text(msg::kError);
  d.advance(800);
  CHECK(d.state() == DeviceState::kHold);
  d.advance(200);
  CHECK(d.state() == DeviceState::kListening);
}

TEST(greeting_disabled_complete_only) {
  Driver d;
  d.connect_and_auth();
  d.text(msg::kComplete);
  d.advance(d.cfg.hold_ms);
  CHECK(d.state() == DeviceState::kListening);
  CHECK_EQ(d.core.stats().turns_closed, 1u);
}

TEST(auth_timeout_reconnects) {
  Driver d;
  d.core.start(d.t);
  d.core.on_connected(d.t);
  d.advance(d.cfg.auth_timeout_ms - 1);
  CHECK(d.state() == DeviceState::kWaitingAuth);
  d.advance(1);
  CHECK(d.state() == DeviceState::kIdle);
  CHECK(d.rec.has(ActionKind::kCloseSocket));
  CHECK_EQ(d.core.stats().timeouts, 1u);
  d.advance(d.cfg.backoff.base_delay_ms);
  CHECK_EQ(d.rec.count(ActionKind::kConnect), 2u);
}

TEST(greeting_and_processing_timeouts) {
  Driver d;
  d.connect_and_auth();
  d.advance(d.cfg.greeting_timeout_ms - 1);
  CHECK(d.state() == DeviceState::kProcessing);
  d.advance(1);
  CHECK(d.state() == DeviceState::kIdle);

  Driver e;
  e.connect_and_auth();
  e.greet();
  e.text(msg::kCommitted);
  e.advance(e.cfg.processing_timeout_ms - 1);
  CHECK(e.state() == DeviceState::kProcessing);
  e.advance(1);
  CHECK(e.state() == DeviceState::kIdle);
  CHECK(e.rec.has(ActionKind::kCloseSocket));
  CHECK(e.rec.has(ActionKind::kFlushPlayback));
}

TEST(speaking_timeout_only_when_server_is_silent) {
  Driver d;
  d.connect_and_auth();
  d.text(msg::kCreated);
  for (int i = 0; i < 5; ++i) {  // a packet every 10 s keeps it alive
    d.advance(10000);
    d.bin(packet_120ms());
  }
  CHECK(d.state() == DeviceState::kSpeaking);
  d.advance(d.cfg.speaking_silence_timeout_ms - 1);
  CHECK(d.state() == DeviceState::kSpeaking);
  d.advance(1);
  CHECK(d.state() == DeviceState::kIdle);
  CHECK_EQ(d.core.stats().timeouts, 1u);
}

TEST(listening_timeout_sleeps) {
  Driver d;
  d.connect_and_auth();
  d.greet();
  d.advance(d.cfg.listening_silence_timeout_ms);
  CHECK(d.state() == DeviceState::kSleep);
  CHECK(d.rec.has(ActionKind::kSleep));
  CHECK(d.rec.has(ActionKind::kCloseSocket));
}

TEST(connect_timeout_and_backoff_growth) {
  toy::CoreConfig cfg;
  Driver d(cfg);
  d.core.start(d.t);
  uint32_t last_connect = d.t;
  uint32_t expected_ceiling = cfg.backoff.base_delay_ms;
  for (int attempt = 0; attempt < 8; ++attempt) {
    // Fail the attempt right away (e.g. HTTP 401).
    d.core.on_disconnected(d.t);
    CHECK(d.state() == DeviceState::kIdle);
    const size_t connects = d.rec.count(ActionKind::kConnect);
    const uint32_t failed_at = d.t;
    while (d.rec.count(ActionKind::kConnect) == connects) d.advance(1);
    const uint32_t gap = d.t - failed_at;
    CHECK(gap >= expected_ceiling / 2);
    CHECK(gap <= expected_ceiling);
    expected_ceiling = expected_ceiling * 2 > cfg.backoff.max_delay_ms ? cfg.backoff.max_delay_ms : expected_ceiling * 2;
    last_connect = d.t;
  }
  (void)last_connect;
  CHECK_EQ(d.core.stats().connect_failures, 8u);
  // A connect that never completes times out.
  d.advance(cfg.connect_timeout_ms);
  CHECK(d.state() == DeviceState::kIdle);
  CHECK(d.rec.has(ActionKind::kCloseSocket));
}

TEST(backoff_resets_after_a_working_session) {
  Driver d;
  d.core.start(d.t);
  for (int i = 0; i < 6; ++i) {  // ceiling grows to 30 s
    d.core.on_disconnected(d.t);
    const size_t n = d.rec.count(ActionKind::kConnect);
    while (d.rec.count(ActionKind::kConnect) == n) d.advance(1);
  }
  d.core.on_connected(d.t);
  d.text(msg::kAuth);
  d.greet();  // reached LISTENING: the session works
  d.core.on_disconnected(d.t);
  const uint32_t dropped_at = d.t;
  const size_t n = d.rec.count(ActionKind::kConnect);
  while (d.rec.count(ActionKind::kConnect) == n) d.advance(1);
  CHECK(d.t - dropped_at <= d.cfg.backoff.base_delay_ms);
}

TEST(interrupt_reports_played_ms) {
  Driver d;
  d.connect_and_auth();
  d.greet();
  d.text(msg::kCommitted);
  d.text(msg::kCreated);
  for (int i = 0; i < 10; ++i) d.bin(packet_120ms());  // 1200 ms queued at once
  d.advance(500);
  d.core.on_button(d.t, toy::ButtonEvent::kTap);
  const auto texts = d.rec.texts();
  CHECK_EQ(texts.size(), 1u);
  CHECK_STR_EQ(texts.back(), R"({"type":"instruction","msg":"INTERRUPT","audio_end_ms":500})");
  CHECK(d.rec.last(ActionKind::kFlushPlayback) != nullptr);
  const size_t played = d.rec.count(ActionKind::kPlayOpus);
  d.bin(packet_120ms());  // in flight: dropped, not played
  CHECK_EQ(d.rec.count(ActionKind::kPlayOpus), played);
  CHECK_EQ(d.core.stats().packets_after_interrupt, 1u);
  d.core.on_button(d.t, toy::ButtonEvent::kTap);  // no second INTERRUPT
  CHECK_EQ(d.core.stats().interrupts_sent, 1u);
  d.text(msg::kComplete);
  d.advance(d.cfg.hold_ms);
  CHECK(d.state() == DeviceState::kListening);
}

TEST(interrupt_counts_only_heard_audio) {
  Driver d;
  d.connect_and_auth();
  d.text(msg::kCreated);
  d.bin(packet_120ms());
  d.advance(1000);  // 120 ms played, then an underrun
  d.core.on_button(d.t, toy::ButtonEvent::kTap);
  CHECK_EQ(d.core.stats().last_interrupt_audio_end_ms, 120u);
}

TEST(tap_elsewhere) {
  Driver d;
  d.connect_and_auth();
  d.core.on_button(d.t, toy::ButtonEvent::kTap);  // PROCESSING: nothing
  CHECK(d.rec.texts().empty());
  d.greet();
  d.core.on_button(d.t, toy::ButtonEvent::kTap);  // LISTENING: end_of_speech
  CHECK_EQ(d.rec.texts().size(), 1u);
  CHECK_STR_EQ(d.rec.texts()[0], R"({"type":"instruction","msg":"end_of_speech"})");

  toy::CoreConfig cfg;
  cfg.tap_sends_end_of_speech = false;
  Driver e(cfg);
  e.connect_and_auth();
  e.greet();
  e.core.on_button(e.t, toy::ButtonEvent::kTap);
  CHECK(e.rec.texts().empty());
}

TEST(long_press_goodbye_then_session_end) {
  Driver d;
  d.connect_and_auth();
  d.greet();
  d.core.on_button(d.t, toy::ButtonEvent::kLongPress);
  CHECK(d.state() == DeviceState::kEnding);
  CHECK_STR_EQ(d.rec.texts().back(), R"({"type":"instruction","msg":"END_SESSION"})");
  d.mic(4096);
  CHECK_EQ(d.rec.count(ActionKind::kSendBinary), 0u);
  d.text(msg::kCreated);  // ignored while ending
  d.bin(packet_120ms());
  CHECK_EQ(d.rec.count(ActionKind::kPlayOpus), 3u);  // only the greeting's
  d.text(msg::kSessionEnd);
  CHECK(d.state() == DeviceState::kSleep);
  CHECK(d.rec.has(ActionKind::kCloseSocket));
  CHECK(d.rec.actions.back().kind == ActionKind::kSleep);
  CHECK(d.core.stats().session_end_received);
  // Terminal: nothing reconnects, later events are stale.
  d.core.on_disconnected(d.t);
  d.advance(60000);
  CHECK(d.state() == DeviceState::kSleep);
  CHECK_EQ(d.rec.count(ActionKind::kConnect), 1u);
}

TEST(long_press_goodbye_timeout_and_server_close) {
  Driver d;
  d.connect_and_auth();
  d.core.request_end_session(d.t);
  d.advance(d.cfg.end_session_timeout_ms);
  CHECK(d.state() == DeviceState::kSleep);
  CHECK(d.rec.has(ActionKind::kCloseSocket));

  Driver e;
  e.connect_and_auth();
  e.core.request_end_session(e.t);
  e.core.on_disconnected(e.t);  // the server closed first
  CHECK(e.state() == DeviceState::kSleep);
  CHECK(!e.rec.has(ActionKind::kCloseSocket));
}

TEST(long_press_offline_sleeps_at_once) {
  Driver d;
  d.core.start(d.t);
  d.core.request_end_session(d.t);
  CHECK(d.state() == DeviceState::kSleep);
  CHECK(d.rec.has(ActionKind::kCloseSocket));  // abandons the pending connect
  CHECK(d.rec.texts().empty());
}

TEST(session_end_any_time) {
  Driver d;
  d.connect_and_auth();
  d.text(msg::kCreated);
  d.bin(packet_120ms());
  d.text(msg::kSessionEnd);
  CHECK(d.state() == DeviceState::kSleep);
  CHECK(d.rec.has(ActionKind::kFlushPlayback));
}

TEST(is_reset_honoured_once) {
  const std::string reset = R"({"type":"auth","volume_control":70,"pitch_factor":1.0,"is_ota":false,"is_reset":true})";
  Driver d;
  d.core.start(d.t);
  d.core.on_connected(d.t);
  d.text(reset);
  CHECK(d.state() == DeviceState::kRebooting);
  CHECK_EQ(d.rec.last(ActionKind::kPersistResetFlag)->value, 1);
  CHECK(d.rec.actions.back().kind == ActionKind::kReboot);
  // Persist happens before reboot.
  size_t persist_at = 0, reboot_at = 0;
  for (size_t i = 0; i < d.rec.actions.size(); ++i) {
    if (d.rec.actions[i].kind == ActionKind::kPersistResetFlag) persist_at = i;
    if (d.rec.actions[i].kind == ActionKind::kReboot) reboot_at = i;
  }
  CHECK(persist_at < reboot_at);

  // After that reboot the flag is set: the same auth is refused.
  Driver again(toy::CoreConfig(), toy::BootInfo{true, 1});
  again.core.start(again.t);
  again.core.on_connected(again.t);
  again.text(reset);
  CHECK(again.state() == DeviceState::kProcessing);
  CHECK(!again.rec.has(ActionKind::kReboot));
  CHECK(!again.rec.has(ActionKind::kPersistResetFlag));  // flag stays set
  CHECK_EQ(again.core.stats().resets_refused, 1u);

  // A normal auth clears the flag.
  Driver cleared(toy::CoreConfig(), toy::BootInfo{true, 1});
  cleared.connect_and_auth();
  CHECK_EQ(cleared.rec.last(ActionKind::kPersistResetFlag)->value, 0);
  CHECK(!cleared.core.reset_flag());
}

TEST(volume_and_pitch) {
  Driver d;
  d.core.start(d.t);
  d.core.on_connected(d.t);
  d.text(R"({"type":"auth","volume_control":35,"pitch_factor":1.5,"is_ota":true,"is_reset":false})");
  CHECK_EQ(d.core.volume_percent(), 35);
  CHECK_EQ(d.core.pitch_factor(), 1.5f);
  d.text(R"({"type":"server","msg":"RESPONSE.COMPLETE","volume_control":80})");
  CHECK_EQ(d.rec.last(ActionKind::kSetVolume)->value, 80);
  CHECK_EQ(d.core.volume_percent(), 80);
  d.text(R"({"type":"server","msg":"RESPONSE.CREATED","volume_control":10})");  // ignored here (spec)
  CHECK_EQ(d.core.volume_percent(), 80);
}

TEST(connection_drop_mid_response) {
  Driver d;
  d.connect_and_auth();
  d.text(msg::kCreated);
  d.bin(packet_120ms());
  d.core.on_disconnected(d.t);
  CHECK(d.state() == DeviceState::kIdle);
  CHECK(d.rec.has(ActionKind::kFlushPlayback));
  CHECK(!d.rec.has(ActionKind::kCloseSocket));  // already closed
  d.bin(packet_120ms());                         // stale
  d.text(msg::kComplete);                         // stale
  CHECK_EQ(d.core.stats().stale_events, 2u);
  CHECK_EQ(d.core.stats().connections_lost, 1u);
  d.advance(d.cfg.backoff.base_delay_ms);
  CHECK(d.state() == DeviceState::kConnecting);
  d.core.on_connected(d.t);
  d.text(msg::kAuth);
  CHECK(d.state() == DeviceState::kProcessing);  // a fresh session
}

TEST(protocol_violations_are_ignored) {
  Driver d;
  d.core.start(d.t);
  d.core.on_connected(d.t);
  d.text(msg::kCreated);  // before auth
  CHECK(d.state() == DeviceState::kWaitingAuth);
  d.text(msg::kAuth);
  d.text(msg::kAuth);  // second auth
  d.text(msg::kCreated);
  d.text(msg::kCreated);  // nested
  CHECK(d.state() == DeviceState::kSpeaking);
  CHECK_EQ(d.core.stats().protocol_errors, 3u);
  d.text(msg::kCommitted);  // COMMITTED while speaking: ignored
  CHECK(d.state() == DeviceState::kSpeaking);
}

TEST(bad_packets_rejected) {
  Driver d;
  d.connect_and_auth();
  d.text(msg::kCreated);
  d.bin({});                                    // empty
  d.bin(std::vector<uint8_t>(15360, 0x1B));    // too big for the device library
  d.bin({0x1B});                                // code 3 without a count byte
  CHECK_EQ(d.core.stats().packets_rejected, 3u);
  CHECK_EQ(d.rec.count(ActionKind::kPlayOpus), 0u);
  std::vector<uint8_t> biggest(15359, 0x00);
  biggest[0] = 0xF8;  // CELT 20 ms, code 0
  d.bin(biggest);
  CHECK_EQ(d.rec.count(ActionKind::kPlayOpus), 1u);
}

TEST(reentrant_calls_are_refused) {
  Driver d;
  int reentered = 0;
  d.rec.hook = [&](const toy::Action&) {
    ++reentered;
    d.core.tick(d.t);                 // a buggy sink calling back
    d.core.on_connected(d.t);
  };
  d.core.start(d.t);
  CHECK(reentered > 0);
  CHECK(d.core.stats().reentrant_calls > 0);
  CHECK(d.state() == DeviceState::kConnecting);  // the nested on_connected had no effect
}

TEST(millis_wrap) {
  Driver d(toy::CoreConfig(), toy::BootInfo{false, 1}, 0xFFFFFF00u);
  d.connect_and_auth();
  d.text(msg::kComplete);
  d.advance(999);  // crosses 2^32
  CHECK(d.state() == DeviceState::kHold);
  d.advance(1);
  CHECK(d.state() == DeviceState::kListening);
}

TEST(led_follows_state) {
  Driver d;
  d.connect_and_auth();
  CHECK_EQ(d.rec.last(ActionKind::kSetLed)->value, static_cast<int32_t>(toy::LedPattern::kThinking));
  d.text(msg::kCreated);
  CHECK_EQ(d.rec.last(ActionKind::kSetLed)->value, static_cast<int32_t>(toy::LedPattern::kSpeaking));
  d.text(msg::kComplete);
  d.advance(d.cfg.hold_ms);
  CHECK_EQ(d.rec.last(ActionKind::kSetLed)->value, static_cast<int32_t>(toy::LedPattern::kListening));
  d.core.request_end_session(d.t);
  CHECK_EQ(d.rec.last(ActionKind::kSetLed)->value, static_cast<int32_t>(toy::LedPattern::kGoodbye));
  d.text(msg::kSessionEnd);
  CHECK_EQ(d.rec.last(ActionKind::kSetLed)->value, static_cast<int32_t>(toy::LedPattern::kOff));
}

TEST_MAIN()
