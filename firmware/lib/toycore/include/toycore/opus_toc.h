// Duration of an Opus packet from its TOC byte (RFC 6716 §3.1).
//
// The core never decodes audio, but it needs each packet's duration to
// know how much of a response has been played (INTERRUPT's audio_end_ms).
// Reading the TOC is enough and costs nothing.
#pragma once

#include <cstddef>
#include <cstdint>

namespace toy {

constexpr uint32_t kOpusClockHz = 48000;               // TOC durations are defined at 48 kHz
constexpr uint32_t kOpusMaxPacketSamples48k = 5760;    // 120 ms, the Opus maximum

// Samples at 48 kHz in the packet, or 0 if the packet is malformed
// (empty, missing frame-count byte, zero frames, or longer than 120 ms).
uint32_t opus_packet_samples_48k(const uint8_t* packet, size_t len);

}  // namespace toy
