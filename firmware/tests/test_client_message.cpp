// Device -> server instruction texts must be exactly what the spec shows.
#include <string>

#include "harness.h"
#include "toycore/client_message.h"
#include "toycore/json_reader.h"

TEST(interrupt_text) {
  char buf[toy::kClientMessageMaxBytes];
  const size_t n = toy::format_interrupt_message(buf, sizeof(buf), 1000);
  CHECK_STR_EQ(std::string(buf, n), R"({"type":"instruction","msg":"INTERRUPT","audio_end_ms":1000})");
  const size_t big = toy::format_interrupt_message(buf, sizeof(buf), 4294967295u);
  CHECK(big > 0);
  toy::FlatJson j;
  CHECK_EQ(j.parse(buf, big), toy::JsonError::kNone);
  CHECK_EQ(j.find("audio_end_ms")->integer, 4294967295LL);
}

TEST(interrupt_small_buffer) {
  char buf[10];
  CHECK_EQ(toy::format_interrupt_message(buf, sizeof(buf), 5), 0u);
  CHECK_EQ(buf[0], '\0');
  CHECK_EQ(toy::format_interrupt_message(nullptr, 0, 5), 0u);
}

TEST(fixed_texts) {
  CHECK_STR_EQ(toy::kEndSessionMessage, R"({"type":"instruction","msg":"END_SESSION"})");
  CHECK_STR_EQ(toy::kEndOfSpeechMessage, R"({"type":"instruction","msg":"end_of_speech"})");
}

TEST_MAIN()
