"""A call recorded to one stereo WAV file: caller on the left, agent on the right.

Both channels share the call's timeline (sample 0 = the moment the recording started):

* the caller channel is placed by arrival time; a stream that stops and resumes (a toy's
  microphone is only open while it listens) leaves silence for the gap, while the ordinary
  jitter of a continuous stream (Twilio) is absorbed by appending back to back;
* the agent channel is placed at the time the playout scheduled each chunk to play, so it is
  what was *sent*: after a barge-in, the few hundred ms the far end discarded unplayed still
  appear.

The caller channel's rate is the wire's (8 kHz for phones, 16 kHz for toys); agent audio is
converted to it with the pipeline's own :class:`Converter`, so the cost is zero when
recordings are off (the session holds no tap) and a few µs per frame when on.

Crash safety: the file is written in ~1 s blocks of interleaved PCM and the RIFF/data sizes
in its header are patched after every block, so after a crash (even ``kill -9``) the file is
a valid WAV holding everything up to the last block; at most the last second or so is lost.
"""

from __future__ import annotations

import logging
import os
import struct
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from pipeline.audio import AudioSpec, Converter

log = logging.getLogger("pipeline.wav_recorder")

CALLER, AGENT = 0, 1
#: audio buffered in memory before a block is written to the file
BLOCK_MS = 1000
#: a caller stream that falls this far behind its arrival time had a gap: skip ahead
GAP_MS = 250
#: a caller stream more than this ahead of real time is dropped (a peer flooding audio)
MAX_AHEAD_MS = 2000
_HEADER_BYTES = 44


def wav_header(rate_hz: int, channels: int, data_bytes: int) -> bytes:
    block_align = channels * 2
    return struct.pack(
        "<4sI4s4sIHHIIHH4sI",
        b"RIFF",
        36 + data_bytes,
        b"WAVE",
        b"fmt ",
        16,
        1,  # PCM
        channels,
        rate_hz,
        rate_hz * block_align,
        block_align,
        16,
        b"data",
        data_bytes,
    )


class CallRecording:
    """Implements :class:`AudioTap` by writing ``path``; never raises into the call."""

    def __init__(
        self,
        path: Path,
        wire_in: AudioSpec,
        wire_out: AudioSpec,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.path = path
        self.spec = AudioSpec("pcm16", wire_in.rate_hz)
        self._rate_hz = wire_in.rate_hz
        self._clock = clock
        self._t0 = clock()
        self._in = Converter(wire_in, self.spec)
        self._out = Converter(wire_out, self.spec)
        self._block = self.spec.rate_hz * BLOCK_MS // 1000
        self._gap = self.spec.rate_hz * GAP_MS // 1000
        self._max_ahead = self.spec.rate_hz * MAX_AHEAD_MS // 1000
        #: pending interleaved samples, covering the timeline from ``_base`` on
        self._buf = np.zeros((self._block * 4, 2), dtype=np.int16)
        self._base = 0
        self._cursor = [0, 0]
        self._data_bytes = 0
        self.dropped_ms = 0.0
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fd: int | None = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640)
        os.write(self._fd, wav_header(self._rate_hz, 2, 0))

    @property
    def duration_ms(self) -> float:
        return max(self._cursor) * 1000 / self._rate_hz

    def _now(self) -> int:
        return int((self._clock() - self._t0) * self._rate_hz)

    def inbound(self, data: bytes) -> None:
        if self._fd is None:
            return
        samples = np.frombuffer(self._in.process(data), dtype=np.int16)
        now = self._now()
        start = now - len(samples)
        cursor = self._cursor[CALLER]
        if cursor < start - self._gap:
            cursor = start
        elif cursor > now + self._max_ahead:
            self.dropped_ms += len(samples) * 1000 / self._rate_hz
            return
        self._put(CALLER, cursor, samples, now)

    def outbound(self, chunk: bytes, play_at_s: float) -> None:
        if self._fd is None:
            return
        samples = np.frombuffer(self._out.process(chunk), dtype=np.int16)
        at = int((play_at_s - self._t0) * self._rate_hz)
        self._put(AGENT, max(self._cursor[AGENT], at), samples, self._now())

    def _put(self, channel: int, at: int, samples: np.ndarray, now: int) -> None:
        if at < self._base:  # a straggler behind audio already written: keep what fits
            samples = samples[self._base - at :]
            at = self._base
        end = at + len(samples)
        self._cursor[channel] = end
        need = end - self._base
        if need > len(self._buf):
            grown = np.zeros((max(need, 2 * len(self._buf)), 2), dtype=np.int16)
            grown[: len(self._buf)] = self._buf
            self._buf = grown
        self._buf[at - self._base : end - self._base, channel] = samples
        # Nothing will be written before these positions any more (see the module notes).
        settled = min(max(self._cursor[CALLER], now - self._gap), max(self._cursor[AGENT], now))
        if settled - self._base >= self._block:
            self._write_until(settled)

    def _write_until(self, end: int) -> None:
        n = end - self._base
        if n <= 0 or self._fd is None:
            return
        try:
            os.write(self._fd, self._buf[:n].tobytes())
            self._data_bytes += n * 4
            # patch the sizes so that the file is complete as it stands, crash or not
            os.pwrite(self._fd, struct.pack("<I", 36 + self._data_bytes), 4)
            os.pwrite(self._fd, struct.pack("<I", self._data_bytes), 40)
        except OSError as exc:
            log.error("recording %s failed, stopped: %s", self.path, exc)
            self._stop()
            return
        kept = len(self._buf) - n
        self._buf[:kept] = self._buf[n:]
        self._buf[kept:] = 0
        self._base = end

    def close(self) -> None:
        if self._fd is None:
            return
        tail = np.frombuffer(self._out.flush(), dtype=np.int16)
        if len(tail):
            self._put(AGENT, self._cursor[AGENT], tail, self._now())
        self._write_until(max(self._cursor))
        self._stop()

    def _stop(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)
