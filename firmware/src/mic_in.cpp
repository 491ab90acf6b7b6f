#include "mic_in.h"

#include <driver/i2s.h>

#include "board_config.h"
#include "board_pins.h"
#include "toycore/mic_chunker.h"  // kMicBytesPerSample
#include "toycore/pcm.h"

namespace mic_in {
namespace {
constexpr i2s_port_t kPort = I2S_NUM_0;
int32_t g_slots[board::kMicReadSlots];
}  // namespace

bool begin() {
  i2s_config_t cfg = {};
  cfg.mode = static_cast<i2s_mode_t>(I2S_MODE_MASTER | I2S_MODE_RX);
  cfg.sample_rate = board::kMicRateHz;
  cfg.bits_per_sample = I2S_BITS_PER_SAMPLE_32BIT;
#ifdef TOY_MIC_RIGHT_SLOT
  cfg.channel_format = I2S_CHANNEL_FMT_ONLY_RIGHT;  // L/R tied to 3V3, or a board that swaps slots
#else
  cfg.channel_format = I2S_CHANNEL_FMT_ONLY_LEFT;
#endif
  cfg.communication_format = I2S_COMM_FORMAT_STAND_I2S;
  cfg.intr_alloc_flags = ESP_INTR_FLAG_LEVEL1;
  cfg.dma_buf_count = board::kMicDmaBuffers;
  cfg.dma_buf_len = board::kMicDmaFrames;
  cfg.use_apll = false;
  if (i2s_driver_install(kPort, &cfg, 0, nullptr) != ESP_OK) return false;

  i2s_pin_config_t pin_cfg = {};
#if ESP_IDF_VERSION >= ESP_IDF_VERSION_VAL(4, 4, 0)
  pin_cfg.mck_io_num = I2S_PIN_NO_CHANGE;  // zero would put MCLK on GPIO 0
#endif
  pin_cfg.bck_io_num = pins::kMicBclk;
  pin_cfg.ws_io_num = pins::kMicWs;
  pin_cfg.data_out_num = I2S_PIN_NO_CHANGE;
  pin_cfg.data_in_num = pins::kMicData;
  return i2s_set_pin(kPort, &pin_cfg) == ESP_OK;
}

size_t read(uint8_t* out, size_t max_bytes) {
  size_t slots_wanted = max_bytes / toy::kMicBytesPerSample;
  if (slots_wanted > board::kMicReadSlots) slots_wanted = board::kMicReadSlots;
  size_t got_bytes = 0;
  // Timeout 0: never block the loop; whatever is not read now stays in DMA.
  if (i2s_read(kPort, g_slots, slots_wanted * sizeof(int32_t), &got_bytes, 0) != ESP_OK) return 0;
  const size_t slots = got_bytes / sizeof(int32_t);
  toy::i2s_slots_to_s16le(g_slots, slots, toy::kDefaultMicShift, out);
  return slots * toy::kMicBytesPerSample;
}

}  // namespace mic_in
