"""Audio conversion: G.711 tolerance, resampler continuity, duration, byte-stream alignment."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.audio import PCM16_8K, ULAW_8K, AudioSpec, Converter, Reframer, StreamResampler
from pipeline.g711 import pcm16_to_ulaw, ulaw_to_pcm16


def tone(freq_hz: float, rate_hz: int, ms: int, amplitude: float = 8000.0) -> np.ndarray:
    t = np.arange(rate_hz * ms // 1000) / rate_hz
    return (amplitude * np.sin(2 * np.pi * freq_hz * t)).astype(np.int16)


def test_ulaw_round_trip_within_g711_tolerance() -> None:
    every_code = bytes(range(256))
    pcm = ulaw_to_pcm16(every_code)
    # every code survives except -0 (0x7F), which G.711 re-encodes as +0 (0xFF)
    assert pcm16_to_ulaw(pcm) == every_code.replace(b"\x7f", b"\xff")
    assert ulaw_to_pcm16(b"\xff") == b"\x00\x00"  # 0xFF is +0: silence
    assert abs(int.from_bytes(ulaw_to_pcm16(b"\x7f"), "little", signed=True)) == 0  # -0
    # PCM -> μ-law -> PCM keeps error within half a segment step (G.711 quantisation)
    samples = np.linspace(-32000, 32000, 4001).astype(np.int16)
    back = np.frombuffer(ulaw_to_pcm16(pcm16_to_ulaw(samples.tobytes())), dtype=np.int16)
    error = np.abs(back.astype(np.int32) - samples)
    assert np.all(error <= np.maximum(8, np.abs(samples.astype(np.int32)) // 16))


def test_resampler_has_no_discontinuity_at_chunk_edges() -> None:
    """A 1 kHz tone cut into 100 chunks resamples like one piece: no clicks at edges."""
    signal = tone(1000, 8000, 2000)
    chunks = np.array_split(signal, 100)
    resampler = StreamResampler(8000, 16000)
    out = b"".join(resampler.process(c.tobytes()) for c in chunks) + resampler.flush()
    y = np.frombuffer(out, dtype=np.int16).astype(np.float64)
    steady = y[400:-400]
    # the largest sample-to-sample step of a clean 1 kHz tone at 16 kHz is A*2*sin(pi/16)
    max_step = np.max(np.abs(np.diff(steady)))
    assert max_step < 8000 * 2 * np.sin(np.pi / 16) * 1.1
    spectrum = np.abs(np.fft.rfft(steady * np.hanning(len(steady))))
    peak_hz = np.argmax(spectrum) * 16000 / len(steady)
    assert abs(peak_hz - 1000) < 5


@pytest.mark.parametrize("rate_hz", [16000, 24000, 44100])
def test_agent_rates_to_ulaw_preserve_duration(rate_hz: int) -> None:
    """Agent output at 16/24/44.1 kHz becomes 8 kHz μ-law of the same duration (± 1 chunk)."""
    ms = 3000
    converter = Converter(AudioSpec("pcm16", rate_hz), ULAW_8K)
    signal = tone(440, rate_hz, ms).tobytes()
    step = rate_hz // 50 * 2  # 20 ms pieces, as a streaming agent would deliver
    out = b"".join(converter.process(signal[i : i + step]) for i in range(0, len(signal), step))
    out += converter.flush()
    assert abs(len(out) / 8 - ms) <= 40
    decoded = np.frombuffer(ulaw_to_pcm16(out), dtype=np.int16).astype(np.float64)
    spectrum = np.abs(np.fft.rfft(decoded))
    assert abs(np.argmax(spectrum) * 8000 / len(decoded) - 440) < 5  # no chipmunk, no slow-mo


def test_pcm_byte_stream_with_odd_lengths_is_realigned() -> None:
    signal = tone(300, 16000, 500).tobytes()
    converter = Converter(AudioSpec("pcm16", 16000), AudioSpec("pcm16", 16000))
    out = bytearray()
    pos = 0
    for size in [1, 63, 64, 1023, 1024, 3000] * 10:
        out += converter.process(signal[pos : pos + size])
        pos += size
        if pos >= len(signal):
            break
    assert bytes(out) == signal[: len(out)]
    assert len(out) % 2 == 0 and len(out) >= len(signal) - 1


def test_passthrough_returns_input_unchanged() -> None:
    converter = Converter(ULAW_8K, ULAW_8K)
    assert converter.is_passthrough and converter.process(b"\x01\x02\x03") == b"\x01\x02\x03"
    assert Converter(ULAW_8K, PCM16_8K).process(b"\xff\xff") == b"\x00" * 4


def test_reframer_cuts_fixed_frames_and_keeps_the_rest() -> None:
    reframer = Reframer(320)
    assert reframer.push(b"\x00" * 100) == []
    frames = reframer.push(b"\x01" * 700)
    assert [len(f) for f in frames] == [320, 320] and len(reframer) == 160
    assert reframer.take_rest() == b"\x01" * 160 and len(reframer) == 0
    with pytest.raises(ValueError):
        Reframer(0)
