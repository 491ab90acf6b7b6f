// Board-side constants (the protocol timings live in toycore/core_config.h).
#pragma once

#include <cstddef>
#include <cstdint>

namespace board {

constexpr uint32_t kSerialBaud = 115200;

// Microphone: 16 kHz mono (spec §4.2); INMP441 delivers 24-bit samples in
// 32-bit slots. 8 x 256 frames of DMA = 128 ms of slack for a busy loop.
constexpr uint32_t kMicRateHz = 16000;
constexpr int kMicDmaBuffers = 8;
constexpr int kMicDmaFrames = 256;
constexpr size_t kMicReadSlots = 256;  // per loop iteration (16 ms)

// Speaker: the device decodes at 48 kHz (spec §4.1), mono duplicated to
// both I2S slots so the MAX98357A plays it whatever its SD_MODE selects.
constexpr uint32_t kSpeakerRateHz = 48000;
constexpr int kSpeakerDmaBuffers = 8;
constexpr int kSpeakerDmaFrames = 256;
constexpr size_t kSpeakerSliceSamples = 256;

// Opus packets waiting for the decoder. 32 KiB holds several seconds at
// 24 kbit/s; a full ring blocks the network loop, which is exactly the TCP
// back-pressure the server expects (spec §4.1).
constexpr size_t kPlaybackRingBytes = 32 * 1024;
constexpr uint32_t kEnqueueTimeoutMs = 1000;
constexpr uint32_t kAudioTaskStackBytes = 32 * 1024;  // libopus decodes on the stack
constexpr uint32_t kAudioTaskPriority = 5;
constexpr int kAudioTaskCore = 1;  // Wi-Fi runs on core 0

// Wi-Fi set-up portal.
constexpr char kPortalSsid[] = "VoiceToy-Setup";
constexpr uint32_t kPortalTimeoutS = 300;
constexpr uint32_t kHoldAtBootForPortalMs = 3000;  // hold the button at power-on to reconfigure

// arduinoWebSockets retries a failed TCP connect on its own at this pace
// inside one connect attempt; the core's connect timeout bounds the attempt.
constexpr uint32_t kLibraryRetryMs = 2000;

}  // namespace board
