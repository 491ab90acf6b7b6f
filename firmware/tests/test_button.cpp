// Button gestures: debounce, tap on release, long press while held.
#include <vector>

#include "harness.h"
#include "toycore/button.h"

using toy::ButtonEvent;

// Samples the level every ms over [from, to) and collects events.
static std::vector<ButtonEvent> run(toy::ButtonDecoder& b, uint32_t from, uint32_t to, bool pressed) {
  std::vector<ButtonEvent> ev;
  for (uint32_t t = from; t < to; ++t) {
    const ButtonEvent e = b.update(t, pressed);
    if (e != ButtonEvent::kNone) ev.push_back(e);
  }
  return ev;
}

TEST(tap) {
  toy::ButtonDecoder b;
  CHECK(run(b, 0, 100, false).empty());
  CHECK(run(b, 100, 300, true).empty());  // held 200 ms: nothing yet
  const auto ev = run(b, 300, 400, false);
  CHECK_EQ(ev.size(), 1u);
  CHECK(ev[0] == ButtonEvent::kTap);
}

TEST(long_press_fires_while_held_and_once) {
  toy::ButtonDecoder b;
  const auto held = run(b, 0, 3000, true);
  CHECK_EQ(held.size(), 1u);
  CHECK(held[0] == ButtonEvent::kLongPress);
  CHECK(run(b, 3000, 3100, false).empty());  // no tap on release
}

TEST(long_press_timing) {
  toy::ButtonConfig cfg;
  toy::ButtonDecoder b(cfg);
  b.update(0, true);
  CHECK(b.update(cfg.long_press_ms - 1, true) == ButtonEvent::kNone);
  CHECK(b.update(cfg.long_press_ms, true) == ButtonEvent::kLongPress);
}

TEST(bounce_is_ignored) {
  toy::ButtonDecoder b;
  // 10 ms of chatter, shorter than the debounce time, then released.
  std::vector<ButtonEvent> ev;
  for (uint32_t t = 0; t < 10; ++t) {
    const ButtonEvent e = b.update(t, t % 2 == 0);
    if (e != ButtonEvent::kNone) ev.push_back(e);
  }
  const auto rest = run(b, 10, 200, false);
  CHECK(ev.empty());
  CHECK(rest.empty());
}

TEST(chatter_on_release_gives_one_tap) {
  toy::ButtonDecoder b;
  run(b, 0, 200, true);
  std::vector<ButtonEvent> ev;
  for (uint32_t t = 200; t < 210; ++t) {
    const ButtonEvent e = b.update(t, t % 2 == 1);
    if (e != ButtonEvent::kNone) ev.push_back(e);
  }
  const auto rest = run(b, 210, 400, false);
  ev.insert(ev.end(), rest.begin(), rest.end());
  CHECK_EQ(ev.size(), 1u);
}

TEST(sparse_polling_still_works) {
  // The loop may be slow (e.g. blocked on a TLS handshake).
  toy::ButtonDecoder b;
  CHECK(b.update(0, true) == ButtonEvent::kNone);
  CHECK(b.update(5000, true) == ButtonEvent::kLongPress);
  CHECK(b.update(5001, false) == ButtonEvent::kNone);
  CHECK(b.update(9000, false) == ButtonEvent::kNone);
}

TEST_MAIN()
