#include "toycore/json_reader.h"

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>

namespace toy {
namespace {

constexpr uint32_t kUnicodeMax = 0x10FFFF;
constexpr uint32_t kHighSurrogateFirst = 0xD800;
constexpr uint32_t kHighSurrogateLast = 0xDBFF;
constexpr uint32_t kLowSurrogateFirst = 0xDC00;
constexpr uint32_t kLowSurrogateLast = 0xDFFF;
constexpr size_t kUtf8MaxBytes = 4;

struct Cursor {
  const char* p;
  const char* end;
  bool done() const { return p >= end; }
  unsigned char peek() const { return static_cast<unsigned char>(*p); }
};

void skip_ws(Cursor& c) {
  while (!c.done() && (*c.p == ' ' || *c.p == '\t' || *c.p == '\n' || *c.p == '\r')) ++c.p;
}

// Output buffer that never overflows: it records truncation instead, and
// appends multi-byte characters whole or not at all (no split UTF-8).
class BoundedText {
 public:
  BoundedText(char* buf, size_t capacity) : buf_(buf), capacity_(capacity) {
    if (buf_ != nullptr) buf_[0] = '\0';
  }
  void append(const char* bytes, size_t n) {
    if (truncated_ || len_ + n > capacity_) {
      truncated_ = true;
      return;
    }
    std::memcpy(buf_ + len_, bytes, n);
    len_ += n;
    buf_[len_] = '\0';
  }
  bool truncated() const { return truncated_; }

 private:
  char* buf_;
  size_t capacity_;
  size_t len_ = 0;
  bool truncated_ = false;
};

int hex_digit(char ch) {
  if (ch >= '0' && ch <= '9') return ch - '0';
  if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
  if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
  return -1;
}

bool read_hex4(Cursor& c, uint32_t* out) {
  constexpr int kHexDigits = 4;
  if (c.end - c.p < kHexDigits) return false;
  uint32_t value = 0;
  for (int i = 0; i < kHexDigits; ++i) {
    const int d = hex_digit(c.p[i]);
    if (d < 0) return false;
    value = (value << 4) | static_cast<uint32_t>(d);
  }
  c.p += kHexDigits;
  *out = value;
  return true;
}

size_t encode_utf8(uint32_t cp, char* out) {
  if (cp < 0x80) {
    out[0] = static_cast<char>(cp);
    return 1;
  }
  if (cp < 0x800) {
    out[0] = static_cast<char>(0xC0 | (cp >> 6));
    out[1] = static_cast<char>(0x80 | (cp & 0x3F));
    return 2;
  }
  if (cp < 0x10000) {
    out[0] = static_cast<char>(0xE0 | (cp >> 12));
    out[1] = static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out[2] = static_cast<char>(0x80 | (cp & 0x3F));
    return 3;
  }
  out[0] = static_cast<char>(0xF0 | (cp >> 18));
  out[1] = static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
  out[2] = static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
  out[3] = static_cast<char>(0x80 | (cp & 0x3F));
  return 4;
}

// Validates one raw multi-byte UTF-8 sequence (RFC 3629: no overlongs, no
// surrogates, nothing above U+10FFFF) and copies it.
bool copy_utf8_sequence(Cursor& c, BoundedText& out) {
  const unsigned char lead = c.peek();
  size_t continuation = 0;
  unsigned char second_min = 0x80;
  unsigned char second_max = 0xBF;
  if (lead >= 0xC2 && lead <= 0xDF) {
    continuation = 1;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    continuation = 2;
    if (lead == 0xE0) second_min = 0xA0;  // overlong
    if (lead == 0xED) second_max = 0x9F;  // UTF-16 surrogates
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    continuation = 3;
    if (lead == 0xF0) second_min = 0x90;  // overlong
    if (lead == 0xF4) second_max = 0x8F;  // above U+10FFFF
  } else {
    return false;
  }
  if (static_cast<size_t>(c.end - c.p) < continuation + 1) return false;
  for (size_t i = 1; i <= continuation; ++i) {
    const unsigned char b = static_cast<unsigned char>(c.p[i]);
    const unsigned char lo = (i == 1) ? second_min : 0x80;
    const unsigned char hi = (i == 1) ? second_max : 0xBF;
    if (b < lo || b > hi) return false;
  }
  out.append(c.p, continuation + 1);
  c.p += continuation + 1;
  return true;
}

bool read_escape(Cursor& c, BoundedText& out) {
  if (c.done()) return false;
  const char esc = *c.p++;
  char simple = 0;
  switch (esc) {
    case '"': simple = '"'; break;
    case '\\': simple = '\\'; break;
    case '/': simple = '/'; break;
    case 'b': simple = '\b'; break;
    case 'f': simple = '\f'; break;
    case 'n': simple = '\n'; break;
    case 'r': simple = '\r'; break;
    case 't': simple = '\t'; break;
    case 'u': break;
    default: return false;
  }
  if (esc != 'u') {
    out.append(&simple, 1);
    return true;
  }
  uint32_t cp = 0;
  if (!read_hex4(c, &cp)) return false;
  if (cp == 0) return false;  // an embedded NUL would make C-string matching lie
  if (cp >= kLowSurrogateFirst && cp <= kLowSurrogateLast) return false;  // lone low half
  if (cp >= kHighSurrogateFirst && cp <= kHighSurrogateLast) {
    if (c.end - c.p < 2 || c.p[0] != '\\' || c.p[1] != 'u') return false;
    c.p += 2;
    uint32_t low = 0;
    if (!read_hex4(c, &low)) return false;
    if (low < kLowSurrogateFirst || low > kLowSurrogateLast) return false;
    cp = 0x10000 + ((cp - kHighSurrogateFirst) << 10) + (low - kLowSurrogateFirst);
  }
  if (cp > kUnicodeMax) return false;
  char utf8[kUtf8MaxBytes];
  out.append(utf8, encode_utf8(cp, utf8));
  return true;
}

JsonError read_string(Cursor& c, BoundedText& out) {
  if (c.done() || *c.p != '"') return JsonError::kSyntax;
  ++c.p;
  while (!c.done()) {
    const unsigned char ch = c.peek();
    if (ch == '"') {
      ++c.p;
      return JsonError::kNone;
    }
    if (ch == '\\') {
      ++c.p;
      if (!read_escape(c, out)) return JsonError::kBadString;
    } else if (ch < 0x20) {
      return JsonError::kBadString;  // raw control characters are not JSON
    } else if (ch < 0x80) {
      out.append(c.p, 1);
      ++c.p;
    } else if (!copy_utf8_sequence(c, out)) {
      return JsonError::kBadString;
    }
  }
  return JsonError::kBadString;  // unterminated
}

bool is_digit(char ch) { return ch >= '0' && ch <= '9'; }

void skip_digits(Cursor& c) {
  while (!c.done() && is_digit(*c.p)) ++c.p;
}

JsonError read_number(Cursor& c, JsonField& field) {
  const char* start = c.p;
  bool plain_integer = true;
  if (!c.done() && *c.p == '-') ++c.p;
  if (c.done()) return JsonError::kBadNumber;
  if (*c.p == '0') {
    ++c.p;
  } else if (*c.p >= '1' && *c.p <= '9') {
    skip_digits(c);
  } else {
    return JsonError::kBadNumber;
  }
  if (!c.done() && *c.p == '.') {
    plain_integer = false;
    ++c.p;
    if (c.done() || !is_digit(*c.p)) return JsonError::kBadNumber;
    skip_digits(c);
  }
  if (!c.done() && (*c.p == 'e' || *c.p == 'E')) {
    plain_integer = false;
    ++c.p;
    if (!c.done() && (*c.p == '+' || *c.p == '-')) ++c.p;
    if (c.done() || !is_digit(*c.p)) return JsonError::kBadNumber;
    skip_digits(c);
  }
  const size_t length = static_cast<size_t>(c.p - start);
  if (length > kJsonMaxNumberChars) return JsonError::kBadNumber;

  // strtod needs a terminated copy; the grammar above already validated it,
  // and JSON numbers never contain a locale-specific decimal separator issue
  // because the board and the host both run in the "C" locale.
  char token[kJsonMaxNumberChars + 1];
  std::memcpy(token, start, length);
  token[length] = '\0';
  const double value = std::strtod(token, nullptr);
  if (!std::isfinite(value)) return JsonError::kBadNumber;
  field.type = JsonType::kNumber;
  field.number = value;
  field.is_integer = false;
  field.integer = 0;
  if (plain_integer) {
    errno = 0;
    const long long as_int = std::strtoll(token, nullptr, 10);
    if (errno == 0) {
      field.is_integer = true;
      field.integer = static_cast<int64_t>(as_int);
    }
  }
  return JsonError::kNone;
}

bool match_literal(Cursor& c, const char* word) {
  const size_t n = std::strlen(word);
  if (static_cast<size_t>(c.end - c.p) < n || std::memcmp(c.p, word, n) != 0) return false;
  c.p += n;
  return true;
}

JsonError skip_value(Cursor& c, int depth);

// Validates and discards a nested object or array.
JsonError skip_container(Cursor& c, int depth) {
  if (depth > kJsonMaxNestingDepth) return JsonError::kTooDeep;
  const char open = *c.p;
  const char close = (open == '{') ? '}' : ']';
  ++c.p;
  skip_ws(c);
  if (!c.done() && *c.p == close) {
    ++c.p;
    return JsonError::kNone;
  }
  for (;;) {
    if (open == '{') {
      BoundedText discard(nullptr, 0);
      const JsonError e = read_string(c, discard);
      if (e != JsonError::kNone) return e;
      skip_ws(c);
      if (c.done() || *c.p != ':') return JsonError::kSyntax;
      ++c.p;
      skip_ws(c);
    }
    const JsonError e = skip_value(c, depth);
    if (e != JsonError::kNone) return e;
    skip_ws(c);
    if (c.done()) return JsonError::kSyntax;
    if (*c.p == ',') {
      ++c.p;
      skip_ws(c);
      continue;
    }
    if (*c.p == close) {
      ++c.p;
      return JsonError::kNone;
    }
    return JsonError::kSyntax;
  }
}

// Reads any value into `field` (nested values are only validated).
JsonError read_value(Cursor& c, JsonField& field, int depth) {
  if (c.done()) return JsonError::kSyntax;
  field.truncated = false;
  field.text[0] = '\0';
  const char ch = *c.p;
  if (ch == '"') {
    BoundedText text(field.text, kJsonMaxStringBytes);
    const JsonError e = read_string(c, text);
    field.type = JsonType::kString;
    field.truncated = text.truncated();
    return e;
  }
  if (ch == '-' || is_digit(ch)) return read_number(c, field);
  if (ch == 't' || ch == 'f') {
    field.type = JsonType::kBool;
    field.boolean = (ch == 't');
    return match_literal(c, field.boolean ? "true" : "false") ? JsonError::kNone : JsonError::kSyntax;
  }
  if (ch == 'n') {
    field.type = JsonType::kNull;
    return match_literal(c, "null") ? JsonError::kNone : JsonError::kSyntax;
  }
  if (ch == '{' || ch == '[') {
    field.type = JsonType::kNested;
    return skip_container(c, depth + 1);
  }
  return JsonError::kSyntax;
}

JsonError skip_value(Cursor& c, int depth) {
  JsonField discard;
  return read_value(c, discard, depth);
}

}  // namespace

const char* json_error_name(JsonError error) {
  switch (error) {
    case JsonError::kNone: return "none";
    case JsonError::kEmpty: return "empty";
    case JsonError::kTooLong: return "too_long";
    case JsonError::kSyntax: return "syntax";
    case JsonError::kBadString: return "bad_string";
    case JsonError::kBadNumber: return "bad_number";
    case JsonError::kTooDeep: return "too_deep";
    case JsonError::kTooManyFields: return "too_many_fields";
    case JsonError::kDuplicateKey: return "duplicate_key";
    case JsonError::kTrailingData: return "trailing_data";
  }
  return "unknown";
}

JsonError FlatJson::parse(const char* text, size_t len) {
  count_ = 0;
  if (text == nullptr || len == 0) return JsonError::kEmpty;
  if (len > kJsonMaxInputBytes) return JsonError::kTooLong;

  Cursor c{text, text + len};
  JsonError result = JsonError::kNone;
  skip_ws(c);
  if (c.done() || *c.p != '{') return JsonError::kSyntax;
  ++c.p;
  skip_ws(c);
  if (!c.done() && *c.p == '}') {
    ++c.p;
  } else {
    for (;;) {
      char key[kJsonMaxKeyBytes + 1];
      BoundedText key_text(key, kJsonMaxKeyBytes);
      result = read_string(c, key_text);
      if (result != JsonError::kNone) break;
      skip_ws(c);
      if (c.done() || *c.p != ':') {
        result = JsonError::kSyntax;
        break;
      }
      ++c.p;
      skip_ws(c);
      result = read_value(c, scratch_, 0);
      if (result != JsonError::kNone) break;
      if (!key_text.truncated()) {  // over-long keys are never ours: drop them
        if (find(key) != nullptr) {
          result = JsonError::kDuplicateKey;  // ambiguous: which "type" is meant?
          break;
        }
        if (count_ == kJsonMaxFields) {
          result = JsonError::kTooManyFields;
          break;
        }
        fields_[count_] = scratch_;
        std::memcpy(fields_[count_].key, key, sizeof(key));
        ++count_;
      }
      skip_ws(c);
      if (c.done()) {
        result = JsonError::kSyntax;
        break;
      }
      if (*c.p == ',') {
        ++c.p;
        skip_ws(c);
        continue;
      }
      if (*c.p == '}') {
        ++c.p;
        break;
      }
      result = JsonError::kSyntax;
      break;
    }
  }
  if (result == JsonError::kNone) {
    skip_ws(c);
    if (!c.done()) result = JsonError::kTrailingData;
  }
  if (result != JsonError::kNone) count_ = 0;
  return result;
}

const JsonField* FlatJson::find(const char* key) const {
  for (size_t i = 0; i < count_; ++i) {
    if (std::strcmp(fields_[i].key, key) == 0) return &fields_[i];
  }
  return nullptr;
}

bool FlatJson::string_equals(const char* key, const char* expected) const {
  const JsonField* f = find(key);
  return f != nullptr && f->type == JsonType::kString && !f->truncated &&
         std::strcmp(f->text, expected) == 0;
}

bool FlatJson::get_bool(const char* key, bool* out) const {
  const JsonField* f = find(key);
  if (f == nullptr || f->type != JsonType::kBool) return false;
  *out = f->boolean;
  return true;
}

bool FlatJson::get_number(const char* key, double* out) const {
  const JsonField* f = find(key);
  if (f == nullptr || f->type != JsonType::kNumber) return false;
  *out = f->number;
  return true;
}

}  // namespace toy
