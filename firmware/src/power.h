// Deep sleep (woken by the button: wake = reboot = new session) and reboot.
#pragma once

namespace power {

[[noreturn]] void sleep_until_button();
[[noreturn]] void reboot();

}  // namespace power
