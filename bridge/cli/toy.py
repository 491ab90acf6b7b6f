"""``bridge toy``: an emulated ESP32 toy (Elato firmware) talks to ``/ws/esp32``."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time

from bridge.cli.common import SubParsers

DEFAULT_URL = "ws://127.0.0.1:8080/ws/esp32"
DEFAULT_MAC = "24:0A:C4:12:34:56"
DEFAULT_TIMEOUT_S = 30.0
CLOSE_WAIT_S = 5.0
MS_PER_S = 1000.0


def register(sub: SubParsers) -> None:
    toy = sub.add_parser("toy", help="emulate an ESP32 toy (Elato protocol) against /ws/esp32")
    toy.add_argument("--url", default=DEFAULT_URL, help="the toy endpoint (default: %(default)s)")
    toy.add_argument("--token", help="Bearer token, JWT or device token (default: none)")
    toy.add_argument(
        "--mac", default=DEFAULT_MAC, help="X-Device-Mac, '' for none (default: %(default)s)"
    )
    toy.add_argument("--wav", required=True, help="what the child says (16-bit WAV; required)")
    toy.add_argument(
        "--out", required=True, help="WAV file (48 kHz) for what the toy played (required)"
    )
    toy.add_argument(
        "--turns", type=int, default=1, help="how many times to say the WAV (default: %(default)s)"
    )
    toy.add_argument(
        "--interrupt-after-ms",
        type=int,
        default=0,
        help="interrupt the first reply after this much playback, 0 for never "
        "(default: %(default)s)",
    )
    toy.add_argument(
        "--end-session",
        action="store_true",
        help="send END_SESSION at the end (default: off)",
    )
    toy.add_argument(
        "--timeout-s",
        type=float,
        default=DEFAULT_TIMEOUT_S,
        help="longest wait for each response (default: %(default)s)",
    )
    toy.set_defaults(func=lambda args: asyncio.run(toy_command(args)))


async def toy_command(args: argparse.Namespace) -> int:
    from pipeline.audio import PCM16_16K, AudioSpec, Converter
    from pipeline.wav import read_wav, write_wav
    from transports.esp32.emulator.client import FakeToy, ToyClosed

    pcm, rate_hz = read_wav(args.wav)
    converter = Converter(AudioSpec("pcm16", rate_hz), PCM16_16K)
    question = converter.process(pcm) + converter.flush()
    toy = FakeToy(args.url, token=args.token, mac=args.mac or None, idle_mic=True)
    t0 = time.monotonic()
    heard = bytearray()
    ok = True
    try:
        await toy.connect()
        await toy.wait_responses(1, args.timeout_s)
        for turn in range(1, args.turns + 1):
            await toy.speak(question, listen_timeout_s=args.timeout_s)
            if args.interrupt_after_ms and turn == 1:
                await toy.wait_state("SPEAKING", args.timeout_s)
                await asyncio.sleep(args.interrupt_after_ms / MS_PER_S)
                await toy.send_instruction("INTERRUPT", audio_end_ms=int(toy.played_ms()))
            reply = (await toy.wait_responses(turn + 1, args.timeout_s))[turn]
            heard += reply.pcm_48k
            ok = ok and bool(reply.ok)
        if args.end_session:
            await toy.send_instruction("END_SESSION")
            await toy.wait_closed(CLOSE_WAIT_S)
    except (TimeoutError, ToyClosed) as exc:
        print(f"toy: {exc!r}", file=sys.stderr)
        ok = False
    finally:
        await toy.close()
    write_wav(args.out, bytes(heard), toy.decode_rate_hz)
    ended = toy.model.ended_responses()
    summary = {
        "auth": toy.auth,
        "greeting_ms": round(ended[0].decoded_ms) if ended else None,
        "responses": [
            {"ok": r.ok, "packets": len(r.packets), "decoded_ms": round(r.decoded_ms)}
            for r in toy.responses
        ],
        "protocol_errors": toy.protocol_errors,
        "session_ended": toy.session_ended,
        "close_code": toy.close_code,
        "duration_s": round(time.monotonic() - t0, 1),
        "out": args.out,
    }
    print(json.dumps(summary))
    return 0 if ok and not toy.protocol_errors else 1
