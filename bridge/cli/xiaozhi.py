"""``bridge xiaozhi``: an emulated xiaozhi-esp32 device talks to ``/xiaozhi/v1/``.

Like ``bridge toy``, it is the line test an operator runs against a real deployment: it
connects with the firmware's headers, says hello, listens in auto mode, speaks a WAV (or
types a turn, as ``listen detect`` with text), and writes what the device played (decoded
with real libopus at the rate our hello announced) to a WAV, then prints a JSON summary.
A device's first reply may be a greeting: it is waited for (briefly) and kept in the WAV.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import time
from typing import TYPE_CHECKING

from websockets.exceptions import InvalidHandshake

from bridge.cli.common import SubParsers

if TYPE_CHECKING:  # imported when the command runs: opuslib and numpy load slowly
    from transports.xiaozhi.emulator.client import FakeXiaozhi

DEFAULT_URL = "ws://127.0.0.1:8080/xiaozhi/v1/"
DEFAULT_DEVICE_ID = "24:0a:c4:00:00:01"
DEFAULT_TIMEOUT_S = 30.0
#: how long a greeting may take to start before the first turn is spoken anyway
GREETING_WAIT_S = 2.0
MS_PER_S = 1000.0


def register(sub: SubParsers) -> None:
    dev = sub.add_parser(
        "xiaozhi", help="emulate a xiaozhi-esp32 device against /xiaozhi/v1/ (line test)"
    )
    dev.add_argument(
        "--url", default=DEFAULT_URL, help="the device endpoint (default: %(default)s)"
    )
    dev.add_argument("--token", help="Bearer token of the device (default: none)")
    dev.add_argument(
        "--device-id", default=DEFAULT_DEVICE_ID, help="Device-Id, its MAC (default: %(default)s)"
    )
    dev.add_argument(
        "--version",
        type=int,
        choices=(1, 2, 3),
        default=1,
        help="binary protocol version (default: %(default)s)",
    )
    dev.add_argument(
        "--frame-ms",
        type=int,
        choices=(20, 40, 60),
        default=60,
        help="uplink Opus frame duration (default: %(default)s)",
    )
    source = dev.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--wav", help="what the user says, a 16-bit WAV (default: none; this or --text is required)"
    )
    source.add_argument(
        "--text", help="a typed turn (listen detect with text) instead of speech (default: none)"
    )
    dev.add_argument("--out", required=True, help="WAV file for what the device played (required)")
    dev.add_argument(
        "--turns", type=int, default=1, help="how many times to say it (default: %(default)s)"
    )
    dev.add_argument(
        "--abort-after-ms",
        type=int,
        default=0,
        help="abort the first reply after this much playback, 0 for never (default: %(default)s)",
    )
    dev.add_argument(
        "--timeout-s",
        type=float,
        default=DEFAULT_TIMEOUT_S,
        help="longest wait for each reply (default: %(default)s)",
    )
    dev.set_defaults(func=lambda args: asyncio.run(xiaozhi_command(args)))


async def xiaozhi_command(args: argparse.Namespace) -> int:
    from transports.xiaozhi.emulator.client import FakeXiaozhi

    question = _question(args.wav) if args.wav else b""
    device = FakeXiaozhi(
        args.url,
        token=args.token,
        device_id=args.device_id,
        version=args.version,
        frame_ms=args.frame_ms,
    )
    t0 = time.monotonic()
    ok = True
    try:
        await device.connect(timeout_s=args.timeout_s)
        await device.listen("auto")
        await _greeting(device, args.timeout_s)
        for turn in range(args.turns):
            done = device.stopped_replies() + 1
            if args.text:
                await device.send_text(device.model.listen_detect(args.text))
            else:
                await device.speak(question)
            if args.abort_after_ms and turn == 0:
                await device.wait(lambda: device.model.speaking, args.timeout_s)
                await asyncio.sleep(args.abort_after_ms / MS_PER_S)
                await device.send_text(device.model.abort())
            await device.wait_replies(done, args.timeout_s)
    except (TimeoutError, ConnectionError, OSError, InvalidHandshake) as exc:
        print(f"xiaozhi: {exc}", file=sys.stderr)
        ok = False
    finally:
        with contextlib.suppress(Exception):
            await device.close()
    rate_hz = device.rate_hz
    _write(args.out, device, rate_hz)
    summary = {
        "session_id": device.model.session_id,
        "server_hello": device.model.server_hello,
        "replies": [
            {
                "stopped": reply.stopped,
                "packets": len(reply.packets),
                "decoded_ms": round(len(pcm) / 2 / rate_hz * MS_PER_S) if rate_hz else 0,
                "sentences": reply.sentences,
            }
            for reply, pcm in zip(device.model.replies, device.played, strict=False)
        ],
        "stt": device.model.stt,
        "emotions": device.model.emotions,
        "stale_packets": device.model.stale_packets,
        "close_code": device.close_code,
        "duration_s": round(time.monotonic() - t0, 1),
        "out": args.out,
    }
    print(json.dumps(summary))
    return 0 if ok and not device.model.stale_packets else 1


def _question(path: str) -> bytes:
    """The WAV as the device's microphone hears it: PCM16 at 16 kHz."""
    from pipeline.audio import PCM16_16K, AudioSpec, Converter
    from pipeline.wav import read_wav

    pcm, rate_hz = read_wav(path)
    converter = Converter(AudioSpec("pcm16", rate_hz), PCM16_16K)
    return converter.process(pcm) + converter.flush()


async def _greeting(device: FakeXiaozhi, timeout_s: float) -> None:
    """A reply that starts on its own within :data:`GREETING_WAIT_S` is played to its end."""
    try:
        await device.wait(lambda: bool(device.model.replies), GREETING_WAIT_S)
    except TimeoutError:
        return
    await device.wait_replies(1, timeout_s)


def _write(path: str, device: FakeXiaozhi, rate_hz: int) -> None:
    from pipeline.wav import write_wav

    heard = b"".join(bytes(pcm) for pcm in device.played)
    write_wav(path, heard, rate_hz or 16000)
