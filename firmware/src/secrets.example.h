// Optional build-time defaults. Copy to src/secrets.h (git-ignored) and
// edit. Values typed into the Wi-Fi set-up portal override these, and are
// kept in NVS across reboots.
#pragma once

#define TOY_DEFAULT_SERVER_URL "wss://toys.example.com/ws/esp32"
#define TOY_DEFAULT_TOKEN "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.REPLACE.ME"
