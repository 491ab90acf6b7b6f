#include "settings_store.h"

#include <Preferences.h>

#if __has_include("secrets.h")
#include "secrets.h"  // optional build-time defaults, see secrets.example.h
#endif
#ifndef TOY_DEFAULT_SERVER_URL
#define TOY_DEFAULT_SERVER_URL ""
#endif
#ifndef TOY_DEFAULT_TOKEN
#define TOY_DEFAULT_TOKEN ""
#endif

namespace settings {
namespace {
constexpr char kNamespace[] = "toy";
constexpr char kUrlKey[] = "url";
constexpr char kTokenKey[] = "token";
constexpr char kResetKey[] = "reset_flag";
}  // namespace

DeviceSettings load() {
  Preferences prefs;
  prefs.begin(kNamespace, true);
  DeviceSettings s;
  s.server_url = prefs.getString(kUrlKey, TOY_DEFAULT_SERVER_URL);
  s.token = prefs.getString(kTokenKey, TOY_DEFAULT_TOKEN);
  prefs.end();
  return s;
}

void save(const DeviceSettings& s) {
  Preferences prefs;
  prefs.begin(kNamespace, false);
  prefs.putString(kUrlKey, s.server_url);
  prefs.putString(kTokenKey, s.token);
  prefs.end();
}

bool reset_flag() {
  Preferences prefs;
  prefs.begin(kNamespace, true);
  const bool value = prefs.getBool(kResetKey, false);
  prefs.end();
  return value;
}

void set_reset_flag(bool value) {
  Preferences prefs;
  prefs.begin(kNamespace, false);
  prefs.putBool(kResetKey, value);
  prefs.end();
}

}  // namespace settings
