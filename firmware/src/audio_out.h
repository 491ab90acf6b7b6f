// Speaker path: Opus packet ring -> decode task (libopus, 48 kHz mono) ->
// pitch -> volume -> I2S port 1 -> MAX98357A.
//
// The main loop only enqueues packets; a dedicated task on core 1 decodes
// and writes I2S at real time, so a slow decode never stalls the network.
#pragma once

#include <cstddef>
#include <cstdint>

namespace audio_out {

bool begin();
// Copies one Opus packet into the ring. Blocks while the ring is full (up
// to a timeout), which slows the socket reads: TCP back-pressure.
bool enqueue(const uint8_t* packet, size_t len);
// Drops everything queued and silences the DMA (interrupt, hold end).
void flush();
void set_amp(bool on);
void set_volume(int percent);
void set_pitch(float factor);
uint32_t decode_errors();

}  // namespace audio_out
