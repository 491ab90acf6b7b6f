"""What an ESP32 running the Elato firmware is, as data: wire facts, states, responses.

Shared by the pure device model (``model.py``) and its socket client (``client.py``); the
numbers come from ``spec/esp32-elato.md`` §1-§4 and the firmware sources it cites.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

MS_PER_S = 1000.0

# -- wire facts (spec §1-§4) -----------------------------------------------------------------

#: the device's WebSocket library drops messages of 15 * 1024 bytes or more [WSLIB]
MAX_MESSAGE_BYTES = 15 * 1024
#: the longest Opus packet (RFC 6716) and the longest the device's decode buffer accepts
MAX_PACKET_MS = 120
#: Opus decode rates libopus accepts
OPUS_RATES_HZ = (8000, 12000, 16000, 24000, 48000)
#: the current firmware decodes at 48 kHz (older builds: 24 kHz)
DEVICE_DECODE_RATE_HZ = 48000
#: the firmware's ring between the decoder and I2S (≈ 107 ms at 48 kHz)
DEVICE_RING_BYTES = 10240
#: the firmware sleeps this long (``vTaskDelay(50)``) before entering SPEAKING on CREATED
CREATED_TO_SPEAKING_MS = 50
#: the firmware restarts listening this long after reading COMPLETE/ERROR
DEVICE_HOLD_MS = 1000
#: lwIP's TCP receive window on the ESP32 Arduino core (4 x 1436-byte MSS)
DEVICE_TCP_WINDOW_BYTES = 5744
#: upstream: raw PCM, signed 16-bit little-endian, mono, 16 kHz
MIC_RATE_HZ = 16000
BYTES_PER_SAMPLE = 2
MIC_BYTES_PER_MS = MIC_RATE_HZ * BYTES_PER_SAMPLE // 1000
#: the device's usual upstream message (512 samples = 32 ms)
DEVICE_MIC_CHUNK_BYTES = 1024

DEVICE_SUBPROTOCOL = "arduino"
DEVICE_ORIGIN = "file://"
DEVICE_USER_AGENT = "arduino-WebSocket-Client"
DEFAULT_MAC = "24:0A:C4:12:34:56"
DEFAULT_RSSI_DBM = -55

SERVER_CREATED = "RESPONSE.CREATED"
SERVER_COMPLETE = "RESPONSE.COMPLETE"
SERVER_ERROR = "RESPONSE.ERROR"
SERVER_COMMITTED = "AUDIO.COMMITTED"
SERVER_SESSION_END = "SESSION.END"


class ToyState(StrEnum):
    """The firmware's device state names that the emulator goes through (see ``model.py``)."""

    PROCESSING = "PROCESSING"
    SPEAKING = "SPEAKING"
    LISTENING = "LISTENING"
    IDLE = "IDLE"
    SLEEP = "SLEEP"


@dataclass
class ToyResponse:
    """One response as the device saw it.

    ``bracketed`` is False for a bare COMPLETE/ERROR (greeting disabled, or ERROR answering
    a commit): it has no packets and ``created_at == ended_at``. ``dropped`` is True when the
    device threw the whole response away (CREATED inside the listen hold, spec TE3).
    """

    created_at: float  # monotonic time CREATED arrived
    ended_at: float | None = None  # time COMPLETE/ERROR arrived
    ok: bool | None = None  # True COMPLETE, False ERROR, None still open
    packets: list[bytes] = field(default_factory=list)  # every binary message, as received
    pcm_48k: bytearray = field(default_factory=bytearray)  # s16le mono at ``rate_hz``
    volume_control: int | None = None  # from COMPLETE/ERROR if present
    rate_hz: int = DEVICE_DECODE_RATE_HZ
    packet_times: list[float] = field(default_factory=list)  # monotonic arrival per packet
    bracketed: bool = True
    dropped: bool = False

    @property
    def decoded_ms(self) -> float:
        """Duration of the decoded (played) audio."""
        return len(self.pcm_48k) / BYTES_PER_SAMPLE / self.rate_hz * MS_PER_S
