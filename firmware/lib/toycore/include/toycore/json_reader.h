// A small, bounded reader for flat JSON objects.
//
// The server's control messages are flat objects of strings, numbers and
// booleans (spec §3.1), so this reader keeps exactly that and nothing more:
// no heap, fixed-size storage, explicit limits on every dimension, and a
// clean rejection (never a crash, never a partial result) for anything
// malformed. Nested objects/arrays are validated and skipped (bounded depth)
// so that a future server adding a nested field does not make the device
// miss a RESPONSE.COMPLETE.
#pragma once

#include <cstddef>
#include <cstdint>

namespace toy {

constexpr size_t kJsonMaxInputBytes = 1024;   // spec: control frames are < 256 B in practice
constexpr size_t kJsonMaxFields = 16;         // server messages carry at most 5 fields
constexpr size_t kJsonMaxKeyBytes = 32;       // longer keys are parsed but not stored
constexpr size_t kJsonMaxStringBytes = 64;    // longer values are stored truncated (and flagged)
constexpr size_t kJsonMaxNumberChars = 32;    // "1" followed by 1000 zeros is rejected
constexpr int kJsonMaxNestingDepth = 4;       // depth of skipped nested values

enum class JsonType : uint8_t { kString, kNumber, kBool, kNull, kNested };

enum class JsonError : uint8_t {
  kNone,
  kEmpty,
  kTooLong,
  kSyntax,
  kBadString,
  kBadNumber,
  kTooDeep,
  kTooManyFields,
  kDuplicateKey,
  kTrailingData,
};

const char* json_error_name(JsonError error);

struct JsonField {
  char key[kJsonMaxKeyBytes + 1];
  JsonType type;
  // String value, NUL-terminated UTF-8. Never contains an embedded NUL
  // (\u0000 is rejected), so C-string comparison is exact.
  char text[kJsonMaxStringBytes + 1];
  bool truncated;  // the string did not fit: it must never compare equal
  double number;
  bool is_integer;  // written without fraction/exponent and fits int64
  int64_t integer;
  bool boolean;
};

class FlatJson {
 public:
  // Parses `len` bytes (not NUL-terminated). On any error the object is
  // left empty, so a failed parse can never leak half-read fields.
  JsonError parse(const char* text, size_t len);

  size_t size() const { return count_; }
  const JsonField* find(const char* key) const;

  // True only for a complete (untruncated) string value equal to `expected`.
  bool string_equals(const char* key, const char* expected) const;
  // True only when the field exists and is a JSON boolean.
  bool get_bool(const char* key, bool* out) const;
  // True only when the field exists and is a JSON number.
  bool get_number(const char* key, double* out) const;

 private:
  JsonField fields_[kJsonMaxFields];
  JsonField scratch_;
  size_t count_ = 0;
};

}  // namespace toy
