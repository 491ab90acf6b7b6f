// A tiny self-contained test harness (no framework to install in CI).
//
//   TEST(name) { CHECK(cond); CHECK_EQ(a, b); }
//   int main() { return run_all_tests(); }   // provided by TEST_MAIN()
//
// Each failed check prints file:line and the values; the run ends with the
// line "N passed, N failed" that CI tooling recognises.
#pragma once

#include <cstdio>
#include <cstring>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

namespace harness {

struct TestCase {
  const char* name;
  std::function<void()> fn;
};

inline std::vector<TestCase>& registry() {
  static std::vector<TestCase> tests;
  return tests;
}

inline int& current_failures() {
  static int failures = 0;
  return failures;
}

struct Registrar {
  Registrar(const char* name, std::function<void()> fn) { registry().push_back({name, std::move(fn)}); }
};

template <typename T>
std::string show(const T& v) {
  std::ostringstream os;
  if constexpr (std::is_same_v<T, uint8_t> || std::is_same_v<T, int8_t>) {
    os << static_cast<int>(v);
  } else if constexpr (std::is_enum_v<T>) {
    os << static_cast<long long>(v);
  } else {
    os << v;
  }
  return os.str();
}

inline void fail(const char* file, int line, const std::string& what) {
  std::printf("    FAIL %s:%d: %s\n", file, line, what.c_str());
  ++current_failures();
}

inline int run_all_tests() {
  int passed = 0;
  int failed = 0;
  for (const TestCase& t : registry()) {
    current_failures() = 0;
    t.fn();
    if (current_failures() == 0) {
      ++passed;
      std::printf("  ok   %s\n", t.name);
    } else {
      ++failed;
      std::printf("  FAIL %s\n", t.name);
    }
  }
  std::printf("%d passed, %d failed\n", passed, failed);
  return failed == 0 ? 0 : 1;
}

}  // namespace harness

#define HARNESS_CAT2(a, b) a##b
#define HARNESS_CAT(a, b) HARNESS_CAT2(a, b)

#define TEST(name)                                                                   \
  static void name();                                                                \
  static const harness::Registrar HARNESS_CAT(registrar_, name)(#name, name);        \
  static void name()

#define CHECK(cond)                                                \
  do {                                                             \
    if (!(cond)) harness::fail(__FILE__, __LINE__, "CHECK(" #cond ")"); \
  } while (0)

#define CHECK_EQ(a, b)                                                                         \
  do {                                                                                         \
    const auto& harness_a = (a);                                                               \
    const auto& harness_b = (b);                                                               \
    if (!(harness_a == harness_b))                                                             \
      harness::fail(__FILE__, __LINE__,                                                        \
                    std::string(#a " == " #b ": ") + harness::show(harness_a) + " vs " +       \
                        harness::show(harness_b));                                             \
  } while (0)

#define CHECK_STR_EQ(a, b) CHECK_EQ(std::string(a), std::string(b))

#define TEST_MAIN() \
  int main() { return harness::run_all_tests(); }
