"""Voice-activity endpointing: decides when a user turn starts and ends.

WebRTC's VAD (``webrtcvad-wheels``) classifies 20 ms frames; an energy gate in front of it
skips the classifier on near-silence, which is most of a phone call. The endpointer is a
small synchronous state machine so the per-frame cost stays in microseconds and no task or
queue is involved on the hot path.

A turn ends after ``silence_ms`` of silence, but it is known well before: once the caller has
been quiet for ``tentative_ms``, the endpointer offers the turn it will commit if the silence
lasts (a :class:`TentativeTurn`, the very same audio). An agent can start transcribing then,
so the rest of the silence window hides the transcription instead of adding to it.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from enum import Enum

import webrtcvad

from pipeline.audio import PCM16_16K, AudioSpec
from pipeline.g711 import rms_pcm16

VAD_RATES_HZ = (8000, 16000, 32000, 48000)
FRAME_MS = 20
_NO_EVENTS: list[EndpointEvent | UserTurn | TentativeTurn] = []  # shared, never mutated


@dataclass(frozen=True, slots=True)
class EndpointerConfig:
    """Tunables; the defaults suit telephone speech."""

    silence_ms: int = 500
    speech_start_ms: int = 200
    #: audio kept from before the run of ``speech_start_ms`` that opened the turn: a first
    #: word followed by a stop ("What | time is it?") is not part of that run, and with only
    #: 100 ms kept the recogniser lost it (the offline agent understood 69 % of the phone
    #: questions of bench/hearing_set.py with 100 ms kept, 85 % with 300 ms, 90 % with 400)
    preroll_ms: int = 400
    max_turn_ms: int = 30_000
    vad_mode: int = 2
    energy_floor_rms: int = 120
    trailing_keep_ms: int = 100
    #: silence after which the turn is offered as a :class:`TentativeTurn` (0: never). No
    #: earlier than ``trailing_keep_ms``, or it would lack silence the committed turn keeps;
    #: at or past ``silence_ms`` it would come with the turn itself, so it is not sent.
    tentative_ms: int = 200


def native_spec(wire_in: AudioSpec) -> AudioSpec:
    """The PCM16 format the endpointer (and a non-streaming agent) takes for ``wire_in``."""
    rate = wire_in.rate_hz if wire_in.rate_hz in VAD_RATES_HZ else PCM16_16K.rate_hz
    return AudioSpec("pcm16", rate)


class EndpointEvent(Enum):
    SPEECH_STARTED = "speech_started"


@dataclass(frozen=True, slots=True)
class UserTurn:
    """A finished utterance: PCM16 at the endpointer's rate, and whether it was forced."""

    pcm16: bytes
    rate_hz: int
    speech_ms: int
    forced: bool = False

    @property
    def duration_ms(self) -> float:
        return len(self.pcm16) / 2 / self.rate_hz * 1000


@dataclass(frozen=True, slots=True)
class TentativeTurn:
    """The caller paused: ``turn`` is exactly what will be committed if the silence lasts.

    If the caller speaks again first, it is void (a later pause offers a longer one); nothing
    else announces that. Consumers compare audio: a committed turn whose ``pcm16`` equals the
    tentative one's is the same turn.
    """

    turn: UserTurn


class Endpointer:
    """Feeds PCM16 at ``rate_hz`` (one of :data:`VAD_RATES_HZ`); reports turn boundaries."""

    def __init__(self, rate_hz: int, config: EndpointerConfig | None = None) -> None:
        if rate_hz not in VAD_RATES_HZ:
            raise ValueError(f"VAD needs one of {VAD_RATES_HZ} Hz, got {rate_hz}")
        self.rate_hz = rate_hz
        self.config = cfg = config or EndpointerConfig()
        self._vad = webrtcvad.Vad(cfg.vad_mode)
        self._frame_bytes = rate_hz * FRAME_MS // 1000 * 2
        self._pending = bytearray()
        # the opening run itself and the audio before it
        kept_ms = cfg.preroll_ms + cfg.speech_start_ms
        self._preroll: deque[bytes] = deque(maxlen=max(1, kept_ms // FRAME_MS))
        self._utterance: list[bytes] = []
        self._speaking = False
        self._speech_run_ms = 0
        self._silence_run_ms = 0
        self._utterance_ms = 0
        self._speech_ms = 0
        #: 0: no tentative turns
        self._tentative_after_ms = (
            max(cfg.tentative_ms, cfg.trailing_keep_ms) if cfg.tentative_ms > 0 else 0
        )
        self.frames_classified = 0
        #: the endpointer's clock, for a judge that follows one sound: frames pushed so far,
        #: the index of the last speech frame, and of the first frame of the current turn's
        #: opening run
        self.frames = 0
        self.last_speech_frame = -(1 << 30)
        self.speech_started_frame = 0

    @property
    def in_speech(self) -> bool:
        return self._speaking

    def reset(self) -> None:
        """Forget everything heard so far (e.g. while a half-duplex device is spoken to)."""
        self._pending.clear()
        self._preroll.clear()
        self._forget_utterance()

    def drop_utterance(self) -> None:
        """The sound under way is not a turn (a cough, an "uh-huh" over the reply): forget it,
        keeping its last frames as the next turn's pre-roll in case the caller speaks on."""
        if not self._speaking:
            return
        self._preroll.extend(self._utterance)
        self._forget_utterance()

    def utterance_so_far(self) -> bytes:
        """The turn under way as it would be committed now (b"" when none is)."""
        return self._turn_so_far(forced=False).pcm16 if self._speaking else b""

    def _is_speech(self, frame: bytes) -> bool:
        index = self.frames
        self.frames += 1
        if rms_pcm16(frame) < self.config.energy_floor_rms:
            return False
        self.frames_classified += 1
        if self._vad.is_speech(frame, self.rate_hz):
            self.last_speech_frame = index
            return True
        return False

    def push(self, pcm16: bytes) -> list[EndpointEvent | UserTurn | TentativeTurn]:
        """Feed audio; returns the events it caused, in order (usually none)."""
        size = self._frame_bytes
        if not self._pending and len(pcm16) == size:
            # The common case (one 20 ms Twilio frame): no buffering, no copies.
            result = self._frame(pcm16)
            return [result] if result is not None else _NO_EVENTS
        self._pending += pcm16
        if len(self._pending) < size:
            return _NO_EVENTS
        events: list[EndpointEvent | UserTurn | TentativeTurn] = []
        n = len(self._pending) // size * size
        block = bytes(self._pending[:n])
        del self._pending[:n]
        for i in range(0, n, size):
            result = self._frame(block[i : i + size])
            if result is not None:
                events.append(result)
        return events

    def _frame(self, frame: bytes) -> EndpointEvent | UserTurn | TentativeTurn | None:
        cfg = self.config
        speech = self._is_speech(frame)
        if not self._speaking:
            self._preroll.append(frame)
            self._speech_run_ms = self._speech_run_ms + FRAME_MS if speech else 0
            if self._speech_run_ms < cfg.speech_start_ms:
                return None
            self._speaking = True
            self.speech_started_frame = self.frames - self._speech_run_ms // FRAME_MS
            self._utterance = list(self._preroll)
            self._preroll.clear()
            self._utterance_ms = len(self._utterance) * FRAME_MS
            self._speech_ms = self._speech_run_ms
            self._silence_run_ms = 0
            return EndpointEvent.SPEECH_STARTED
        self._utterance.append(frame)
        self._utterance_ms += FRAME_MS
        if speech:
            self._speech_ms += FRAME_MS
            self._silence_run_ms = 0
        else:
            self._silence_run_ms += FRAME_MS
        if self._silence_run_ms >= cfg.silence_ms:
            return self._finish(forced=False)
        if self._utterance_ms >= cfg.max_turn_ms:
            return self._finish(forced=True)
        after_ms = self._tentative_after_ms
        if after_ms and self._silence_run_ms - FRAME_MS < after_ms <= self._silence_run_ms:
            # the frame that brought this pause to ``after_ms``: once per pause
            return TentativeTurn(self._turn_so_far(forced=False))
        return None

    def force_end(self) -> UserTurn | None:
        """End the current utterance now (an explicit end-of-speech from the device)."""
        return self._finish(forced=True) if self._speaking else None

    def _turn_so_far(self, forced: bool) -> UserTurn:
        """The utterance as it would be committed now: trailing silence beyond
        ``trailing_keep_ms`` is dropped, so the same turn a longer silence later is identical."""
        drop_frames = max(0, self._silence_run_ms - self.config.trailing_keep_ms) // FRAME_MS
        frames = self._utterance[: len(self._utterance) - drop_frames]
        return UserTurn(b"".join(frames), self.rate_hz, self._speech_ms, forced)

    def _finish(self, forced: bool) -> UserTurn:
        turn = self._turn_so_far(forced)
        self._forget_utterance()
        return turn

    def _forget_utterance(self) -> None:
        """Back to waiting for speech: no utterance, no runs."""
        self._utterance = []
        self._speaking = False
        self._speech_run_ms = self._silence_run_ms = self._utterance_ms = self._speech_ms = 0
