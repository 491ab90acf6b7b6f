"""espeak-ng as the fallback voice, from the ``espeakng-loader`` wheel (no system package).

It sounds robotic next to piper, but it is a 2 MB library that starts in milliseconds and has
no model file to go missing, so a broken or absent piper install still leaves the offline agent
able to speak. The C API is small enough to drive through ctypes: synthesis runs in
``AUDIO_OUTPUT_SYNCHRONOUS`` mode and hands PCM16 to a callback. espeak-ng keeps global state,
so one process-wide instance serialises every call behind a lock.
"""

from __future__ import annotations

import ctypes
import threading
from typing import Any

from pipeline.agents.local.voice import Speaker

#: espeak_AUDIO_OUTPUT: synthesise in the calling thread, audio through the callback
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_CHARS_UTF8 = 1
_POS_CHARACTER = 1
_PARAM_RATE = 1
_EE_OK = 0

_SynthCallback = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p
)


class EspeakError(RuntimeError):
    pass


class EspeakSpeaker(Speaker):
    """The fallback :class:`Speaker`: espeak-ng's ``en-us`` voice at 22 050 Hz."""

    _shared: EspeakSpeaker | None = None
    _shared_lock = threading.Lock()

    def __init__(self, voice: str = "en-us", words_per_minute: int = 165) -> None:
        self._voice = voice
        self._wpm = words_per_minute
        self._lib: Any = None
        self._rate_hz = 0
        self._lock = threading.Lock()
        self._chunks: list[bytes] = []
        # kept on the instance: the C library holds this pointer for the process lifetime
        self._callback = _SynthCallback(self._collect)

    @classmethod
    def shared(cls) -> EspeakSpeaker:
        with cls._shared_lock:
            if cls._shared is None:
                cls._shared = cls()
            return cls._shared

    def load(self) -> None:
        with self._lock:
            if self._lib is not None:
                return
            import espeakng_loader

            lib = ctypes.CDLL(espeakng_loader.get_library_path())
            data = str(espeakng_loader.get_data_path()).encode()
            rate_hz = lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, data, 0)
            if rate_hz <= 0:
                raise EspeakError(f"espeak_Initialize failed ({rate_hz})")
            lib.espeak_SetSynthCallback(self._callback)
            self._lib, self._rate_hz = lib, rate_hz
            self._select(self._voice)

    @property
    def rate_hz(self) -> int:
        self.load()
        return self._rate_hz

    def synthesize(self, text: str, voice: str | None = None) -> bytes:
        """PCM16 at :attr:`rate_hz`. ``voice``: speak this once in another espeak-ng voice
        ("en-gb-scotland", "en-us+f3"), then go back to the speaker's own, so the bench and
        tests can sound like many people through the one process-wide synthesiser without
        changing how the agent sounds."""
        self.load()
        encoded = text.encode("utf-8") + b"\0"
        with self._lock:
            if voice is not None:
                self._select(voice)
            try:
                self._chunks = []
                status = self._lib.espeak_Synth(
                    encoded, len(encoded), 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None
                )
                if status != _EE_OK:
                    raise EspeakError(f"espeak_Synth failed ({status})")
                self._lib.espeak_Synchronize()
                return b"".join(self._chunks)
            finally:
                if voice is not None:
                    self._select(self._voice)

    def _select(self, voice: str) -> None:
        if self._lib.espeak_SetVoiceByName(voice.encode()) != _EE_OK:
            raise EspeakError(f"espeak-ng has no voice {voice!r}")
        self._lib.espeak_SetParameter(_PARAM_RATE, self._wpm, 0)

    def _collect(self, samples: Any, count: int, events: Any) -> int:
        if count > 0:
            self._chunks.append(ctypes.string_at(samples, count * 2))
        return 0  # 0: continue synthesis
