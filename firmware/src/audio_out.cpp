#include "audio_out.h"

#include <Arduino.h>
#include <driver/i2s.h>
#include <freertos/FreeRTOS.h>
#include <freertos/ringbuf.h>

#include <atomic>
#include <cstring>

#include "board_config.h"
#include "board_pins.h"
#include "opus.h"  // pschatzmann/arduino-libopus: the standard libopus API
#include "toycore/opus_toc.h"
#include "toycore/pcm.h"
#include "toycore/pitch_shifter.h"

namespace audio_out {
namespace {

constexpr i2s_port_t kPort = I2S_NUM_1;
constexpr int kChannels = 2;  // mono duplicated into both slots
constexpr size_t kGenerationBytes = sizeof(uint32_t);
constexpr size_t kMaxPacketBytes = 15 * 1024;  // the WebSocket library's limit (spec §3.2)
constexpr uint32_t kReceiveWaitMs = 50;

RingbufHandle_t g_ring = nullptr;
// A flush bumps the generation; queued packets of older generations are
// skipped by the task without being decoded.
std::atomic<uint32_t> g_generation{0};
std::atomic<int> g_volume_percent{70};
std::atomic<float> g_pitch_factor{1.0f};
std::atomic<uint32_t> g_decode_errors{0};

// Owned by the main task (enqueue) and the audio task (the rest).
uint8_t g_staging[kGenerationBytes + kMaxPacketBytes];
int16_t g_pcm[toy::kOpusMaxPacketSamples48k];
int16_t g_stereo[board::kSpeakerSliceSamples * kChannels];
toy::PitchShifter g_pitch;

void write_pcm(const int16_t* pcm, size_t count, uint32_t generation) {
  for (size_t start = 0; start < count; start += board::kSpeakerSliceSamples) {
    if (g_generation.load() != generation) return;  // flushed mid-packet: stop at once
    size_t n = count - start;
    if (n > board::kSpeakerSliceSamples) n = board::kSpeakerSliceSamples;
    for (size_t i = 0; i < n; ++i) {
      g_stereo[kChannels * i] = pcm[start + i];
      g_stereo[kChannels * i + 1] = pcm[start + i];
    }
    size_t written = 0;
    i2s_write(kPort, g_stereo, n * kChannels * sizeof(int16_t), &written, portMAX_DELAY);
  }
}

void audio_task(void*) {
  int err = OPUS_OK;
  OpusDecoder* decoder = opus_decoder_create(board::kSpeakerRateHz, 1, &err);
  if (err != OPUS_OK || decoder == nullptr) {
    Serial.println("[audio] opus_decoder_create failed");
    vTaskDelete(nullptr);
    return;
  }
  uint32_t seen_generation = g_generation.load();
  for (;;) {
    size_t size = 0;
    auto* item = static_cast<uint8_t*>(xRingbufferReceive(g_ring, &size, pdMS_TO_TICKS(kReceiveWaitMs)));
    const uint32_t current = g_generation.load();
    if (current != seen_generation) {
      seen_generation = current;
      i2s_zero_dma_buffer(kPort);
      opus_decoder_ctl(decoder, OPUS_RESET_STATE);
      g_pitch.reset();
    }
    if (item == nullptr) continue;
    uint32_t item_generation = 0;
    std::memcpy(&item_generation, item, kGenerationBytes);
    if (item_generation == current && size > kGenerationBytes) {
      const int samples = opus_decode(decoder, item + kGenerationBytes, static_cast<opus_int32>(size - kGenerationBytes),
                                      g_pcm, toy::kOpusMaxPacketSamples48k, 0);
      if (samples < 0) {
        g_decode_errors.fetch_add(1);
      } else {
        g_pitch.set_factor(g_pitch_factor.load());
        g_pitch.process(g_pcm, static_cast<size_t>(samples));
        toy::apply_volume(g_pcm, static_cast<size_t>(samples), g_volume_percent.load());
        write_pcm(g_pcm, static_cast<size_t>(samples), current);
      }
    }
    vRingbufferReturnItem(g_ring, item);
  }
}

}  // namespace

bool begin() {
  pinMode(pins::kAmpEnable, OUTPUT);
  digitalWrite(pins::kAmpEnable, LOW);

  i2s_config_t cfg = {};
  cfg.mode = static_cast<i2s_mode_t>(I2S_MODE_MASTER | I2S_MODE_TX);
  cfg.sample_rate = board::kSpeakerRateHz;
  cfg.bits_per_sample = I2S_BITS_PER_SAMPLE_16BIT;
  cfg.channel_format = I2S_CHANNEL_FMT_RIGHT_LEFT;
  cfg.communication_format = I2S_COMM_FORMAT_STAND_I2S;
  cfg.intr_alloc_flags = ESP_INTR_FLAG_LEVEL1;
  cfg.dma_buf_count = board::kSpeakerDmaBuffers;
  cfg.dma_buf_len = board::kSpeakerDmaFrames;
  cfg.use_apll = false;
  cfg.tx_desc_auto_clear = true;  // an underrun plays silence, not a repeated buffer
  if (i2s_driver_install(kPort, &cfg, 0, nullptr) != ESP_OK) return false;

  i2s_pin_config_t pin_cfg = {};
#if ESP_IDF_VERSION >= ESP_IDF_VERSION_VAL(4, 4, 0)
  pin_cfg.mck_io_num = I2S_PIN_NO_CHANGE;
#endif
  pin_cfg.bck_io_num = pins::kAmpBclk;
  pin_cfg.ws_io_num = pins::kAmpWs;
  pin_cfg.data_out_num = pins::kAmpData;
  pin_cfg.data_in_num = I2S_PIN_NO_CHANGE;
  if (i2s_set_pin(kPort, &pin_cfg) != ESP_OK) return false;

  g_ring = xRingbufferCreate(board::kPlaybackRingBytes, RINGBUF_TYPE_NOSPLIT);
  if (g_ring == nullptr) return false;
  return xTaskCreatePinnedToCore(audio_task, "audio_out", board::kAudioTaskStackBytes, nullptr,
                                 board::kAudioTaskPriority, nullptr, board::kAudioTaskCore) == pdPASS;
}

bool enqueue(const uint8_t* packet, size_t len) {
  if (g_ring == nullptr || len == 0 || len > kMaxPacketBytes) return false;
  const uint32_t generation = g_generation.load();
  std::memcpy(g_staging, &generation, kGenerationBytes);
  std::memcpy(g_staging + kGenerationBytes, packet, len);
  return xRingbufferSend(g_ring, g_staging, kGenerationBytes + len, pdMS_TO_TICKS(board::kEnqueueTimeoutMs)) ==
         pdTRUE;
}

void flush() { g_generation.fetch_add(1); }

void set_amp(bool on) { digitalWrite(pins::kAmpEnable, on ? HIGH : LOW); }

void set_volume(int percent) { g_volume_percent.store(percent); }

void set_pitch(float factor) { g_pitch_factor.store(factor); }

uint32_t decode_errors() { return g_decode_errors.load(); }

}  // namespace audio_out
