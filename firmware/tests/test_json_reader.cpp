// FlatJson: valid input, every rejection path, and hostile input.
#include <cstring>
#include <string>

#include "harness.h"
#include "toycore/json_reader.h"
#include "toycore/rng.h"

using toy::FlatJson;
using toy::JsonError;
using toy::JsonType;

static JsonError parse(FlatJson& j, const std::string& s) { return j.parse(s.data(), s.size()); }

TEST(parses_auth_message) {
  FlatJson j;
  CHECK_EQ(parse(j, R"({"type":"auth","volume_control":70,"pitch_factor":1.0,"is_ota":false,"is_reset":false})"),
           JsonError::kNone);
  CHECK_EQ(j.size(), 5u);
  CHECK(j.string_equals("type", "auth"));
  double v = 0;
  CHECK(j.get_number("volume_control", &v));
  CHECK_EQ(v, 70.0);
  CHECK(j.find("volume_control")->is_integer);
  CHECK_EQ(j.find("volume_control")->integer, 70);
  CHECK(j.get_number("pitch_factor", &v));
  CHECK_EQ(v, 1.0);
  CHECK(!j.find("pitch_factor")->is_integer);
  bool b = true;
  CHECK(j.get_bool("is_ota", &b));
  CHECK(!b);
}

TEST(whitespace_and_empty_object) {
  FlatJson j;
  CHECK_EQ(parse(j, " \t\r\n{ \"a\" : true , \"b\":null }\n"), JsonError::kNone);
  CHECK_EQ(j.find("b")->type, JsonType::kNull);
  CHECK_EQ(parse(j, "{}"), JsonError::kNone);
  CHECK_EQ(j.size(), 0u);
  CHECK_EQ(parse(j, "  {  }  "), JsonError::kNone);
}

TEST(string_escapes_and_unicode) {
  FlatJson j;
  CHECK_EQ(parse(j, R"({"k":"a\"b\\c\/d\n\t\u0041\u00e9\ud83d\ude00"})"), JsonError::kNone);
  CHECK_STR_EQ(j.find("k")->text, "a\"b\\c/d\n\tA\xc3\xa9\xf0\x9f\x98\x80");
  // Escaped key still matches: JSON semantics, not byte equality.
  CHECK_EQ(parse(j, R"({"ty\u0070e":"server"})"), JsonError::kNone);
  CHECK(j.string_equals("type", "server"));
  // Raw UTF-8 passes through.
  CHECK_EQ(parse(j, "{\"k\":\"h\xc3\xa9llo\"}"), JsonError::kNone);
}

TEST(number_grammar) {
  FlatJson j;
  const char* good[] = {"0", "-0", "12", "-12", "1.5", "1e3", "1E+3", "2.5e-3", "9223372036854775807"};
  for (const char* n : good) {
    CHECK_EQ(parse(j, std::string("{\"n\":") + n + "}"), JsonError::kNone);
  }
  CHECK(j.find("n")->is_integer);
  const char* bad[] = {"01", "-", "+1", ".5", "1.", "1e", "1e+", "0x10", "NaN", "Infinity", "1e999", "--1"};
  for (const char* n : bad) {
    const JsonError e = parse(j, std::string("{\"n\":") + n + "}");
    CHECK(e != JsonError::kNone);
    CHECK_EQ(j.size(), 0u);
  }
  // Too large for int64: still a number, but not an integer.
  CHECK_EQ(parse(j, R"({"n":92233720368547758070})"), JsonError::kNone);
  CHECK(!j.find("n")->is_integer);
}

TEST(rejects_malformed) {
  FlatJson j;
  const char* bad[] = {
      "", "hello", "[]", "[1,2]", "\"str\"", "42", "true", "null", "{", "}", "{\"a\"}", "{\"a\":}",
      "{\"a\":1,}", "{,}", "{\"a\":1 \"b\":2}", "{'a':1}", "{a:1}", "{\"a\":tru}", "{\"a\":nul}",
      "{\"a\":1}}", "{\"a\":1} x", "{\"a\":\"unterminated}", "{\"a\":\"bad \\q escape\"}",
      "{\"a\":\"\\u12\"}", "{\"a\":\"\\uZZZZ\"}", "{\"a\":1}{\"b\":2}", "{\"a\" 1}"};
  for (const char* s : bad) {
    const JsonError e = parse(j, s);
    if (e == JsonError::kNone) std::printf("    accepted: %s\n", s);
    CHECK(e != JsonError::kNone);
    CHECK_EQ(j.size(), 0u);
  }
}

TEST(rejects_bad_strings) {
  FlatJson j;
  CHECK_EQ(parse(j, std::string("{\"a\":\"x\ny\"}")), JsonError::kBadString);   // raw control char
  CHECK_EQ(parse(j, R"({"a":"\u0000"})"), JsonError::kBadString);              // embedded NUL
  CHECK_EQ(parse(j, R"({"a":"\ud83d"})"), JsonError::kBadString);              // lone high surrogate
  CHECK_EQ(parse(j, R"({"a":"\ude00"})"), JsonError::kBadString);              // lone low surrogate
  CHECK_EQ(parse(j, R"({"a":"\ud83d\u0041"})"), JsonError::kBadString);        // bad pair
  CHECK_EQ(parse(j, std::string("{\"a\":\"\xc0\xaf\"}")), JsonError::kBadString);  // overlong
  CHECK_EQ(parse(j, std::string("{\"a\":\"\xed\xa0\x80\"}")), JsonError::kBadString);  // UTF-8 surrogate
  CHECK_EQ(parse(j, std::string("{\"a\":\"\xff\"}")), JsonError::kBadString);
  CHECK_EQ(parse(j, std::string("{\"a\":\"\xe2\x82\"}")), JsonError::kBadString);  // truncated sequence
  const std::string with_nul("{\"a\":\"x\0y\"}", 11);
  CHECK(parse(j, with_nul) != JsonError::kNone);
  const std::string nul_outside("{\"a\":1}\0", 8);
  CHECK_EQ(parse(j, nul_outside), JsonError::kTrailingData);
}

TEST(duplicate_keys_rejected) {
  FlatJson j;
  CHECK_EQ(parse(j, R"({"type":"auth","type":"server"})"), JsonError::kDuplicateKey);
  CHECK_EQ(j.size(), 0u);
}

TEST(nested_values_skipped_with_depth_limit) {
  FlatJson j;
  CHECK_EQ(parse(j, R"({"type":"server","meta":{"a":[1,2,{"b":null}]},"msg":"RESPONSE.COMPLETE"})"),
           JsonError::kNone);
  CHECK(j.string_equals("msg", "RESPONSE.COMPLETE"));
  CHECK_EQ(j.find("meta")->type, JsonType::kNested);
  CHECK_EQ(parse(j, R"({"a":[[[[1]]]]})"), JsonError::kNone);
  CHECK_EQ(parse(j, R"({"a":[[[[[1]]]]]})"), JsonError::kTooDeep);
  CHECK_EQ(parse(j, R"({"a":[1,]})"), JsonError::kSyntax);
  CHECK_EQ(parse(j, R"({"a":{"k"}})"), JsonError::kSyntax);
  // A deeply nested bomb fails fast without recursion trouble.
  std::string bomb = "{\"a\":" + std::string(100000, '[');
  bomb.resize(toy::kJsonMaxInputBytes);
  CHECK_EQ(parse(j, bomb), JsonError::kTooDeep);
}

TEST(size_limits) {
  FlatJson j;
  // Huge input: rejected before any parsing.
  std::string huge = "{\"type\":\"" + std::string(100000, 'x') + "\"}";
  CHECK_EQ(parse(j, huge), JsonError::kTooLong);
  // Long string within the input cap: stored truncated, never equal.
  std::string long_type = "{\"type\":\"auth" + std::string(200, ' ') + "\"}";
  CHECK_EQ(parse(j, long_type), JsonError::kNone);
  CHECK(j.find("type")->truncated);
  CHECK(!j.string_equals("type", "auth"));
  CHECK_EQ(std::strlen(j.find("type")->text), toy::kJsonMaxStringBytes);
  // Truncation never splits a UTF-8 character.
  std::string euros;
  for (int i = 0; i < 40; ++i) euros += "\xe2\x82\xac";
  CHECK_EQ(parse(j, "{\"k\":\"" + euros + "\"}"), JsonError::kNone);
  CHECK_EQ(std::strlen(j.find("k")->text) % 3, 0u);
  // Over-long keys are parsed but not stored.
  std::string long_key = "{\"" + std::string(100, 'k') + "\":1,\"type\":\"auth\"}";
  CHECK_EQ(parse(j, long_key), JsonError::kNone);
  CHECK_EQ(j.size(), 1u);
  // Field count.
  std::string many = "{";
  for (size_t i = 0; i <= toy::kJsonMaxFields; ++i) many += (i ? ",\"k" : "\"k") + std::to_string(i) + "\":1";
  many += "}";
  CHECK_EQ(parse(j, many), JsonError::kTooManyFields);
  // Over-long number token.
  CHECK_EQ(parse(j, "{\"n\":1" + std::string(40, '0') + "}"), JsonError::kBadNumber);
}

TEST(type_accessors_are_strict) {
  FlatJson j;
  CHECK_EQ(parse(j, R"({"s":"true","n":"70","b":1})"), JsonError::kNone);
  bool b = false;
  double d = 0;
  CHECK(!j.get_bool("s", &b));
  CHECK(!j.get_number("n", &d));
  CHECK(!j.get_bool("b", &b));
  CHECK(!j.get_bool("missing", &b));
  CHECK(!j.string_equals("b", "1"));
}

TEST(random_garbage_never_crashes) {
  // Deterministic fuzzing: random bytes, and random mutations of a valid
  // message. The only requirement is "no crash, and a failed parse is empty".
  FlatJson j;
  toy::Rng rng(12345);
  const std::string valid = R"({"type":"server","msg":"RESPONSE.COMPLETE","volume_control":50,"x":[1,{"y":"z"}]})";
  const char alphabet[] = "{}[]:,\"\\0123456789.-+eEtrufalsn \x80\xc3\xff";
  for (int iter = 0; iter < 20000; ++iter) {
    std::string s;
    if (iter % 2 == 0) {
      const size_t len = rng.up_to(300);
      for (size_t i = 0; i < len; ++i) s += alphabet[rng.up_to(sizeof(alphabet) - 2)];
    } else {
      s = valid;
      const uint32_t edits = 1 + rng.up_to(4);
      for (uint32_t e = 0; e < edits; ++e) {
        const size_t pos = rng.up_to(static_cast<uint32_t>(s.size() - 1));
        switch (rng.up_to(2)) {
          case 0: s[pos] = static_cast<char>(rng.up_to(255)); break;
          case 1: s.erase(pos, 1); break;
          default: s.insert(pos, 1, alphabet[rng.up_to(sizeof(alphabet) - 2)]); break;
        }
      }
    }
    const JsonError e = j.parse(s.data(), s.size());
    if (e != JsonError::kNone) CHECK_EQ(j.size(), 0u);
  }
}

TEST_MAIN()
