"""``bridge call``: an emulated Twilio phone call against ``/stream``, without a phone.

The caller behaves like Twilio and a patient person: it fetches the webhook's TwiML, opens the
stream, keeps the line alive with silence, lets the agent's greeting finish (unless
``--barge-in``), says the WAV, and hangs up once the reply *to that question* has played and
``--quiet-s`` passed without more audio, or after ``--timeout-s``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import time
from typing import TYPE_CHECKING

from bridge.cli.common import SubParsers
from bridge.cli.listening import Heard, line_kept_alive, listen

if TYPE_CHECKING:
    from transports.twilio.emulator.client import FakeTwilio

DEFAULT_URL = "ws://127.0.0.1:8080/stream"
DEFAULT_CALLER = "+15550001111"
DEFAULT_CALLEE = "+15550002222"
DEFAULT_LEAD_SILENCE_MS = 1000
DEFAULT_GREETING_WAIT_S = 3.0
DEFAULT_QUIET_S = 1.5
DEFAULT_TIMEOUT_S = 30.0
ULAW_RATE_HZ = 8000
ULAW_BYTES_PER_MS = ULAW_RATE_HZ // 1000
MS_PER_S = 1000.0


def register(sub: SubParsers) -> None:
    call = sub.add_parser("call", help="emulate a Twilio phone call against /stream")
    add = call.add_argument
    add("--url", default=DEFAULT_URL, help="the stream endpoint (default: %(default)s)")
    add("--wav", required=True, help="what the caller says (16-bit WAV; required)")
    add("--out", required=True, help="WAV file for what the caller heard (required)")
    add("--webhook", help="voice webhook to fetch TwiML from (default: /twiml next to --url)")
    add("--caller", default=DEFAULT_CALLER, help="the webhook's From (default: %(default)s)")
    add("--callee", default=DEFAULT_CALLEE, help="the webhook's To (default: %(default)s)")
    add("--dtmf", help="digits to press before speaking (default: none)")
    add(
        "--auth-token",
        default="",
        help="sign the webhook and the stream like Twilio, with the server's "
        "TWILIO_AUTH_TOKEN (default: unsigned)",
    )
    add(
        "--lead-silence-ms",
        type=int,
        default=DEFAULT_LEAD_SILENCE_MS,
        help="silence sent after the stream starts, before anything else (default: %(default)s)",
    )
    add(
        "--greeting-wait-s",
        type=float,
        default=DEFAULT_GREETING_WAIT_S,
        help="how long after the stream starts a greeting may begin; the caller lets a "
        "greeting finish before speaking (default: %(default)s)",
    )
    add(
        "--barge-in",
        action="store_true",
        help="speak right after the lead silence, over any greeting (default: off)",
    )
    add(
        "--quiet-s",
        type=float,
        default=DEFAULT_QUIET_S,
        help="silence that ends the greeting or the reply (default: %(default)s)",
    )
    add(
        "--timeout-s",
        type=float,
        default=DEFAULT_TIMEOUT_S,
        help="longest wait for the greeting to end, and for the reply after the question "
        "(default: %(default)s)",
    )
    call.set_defaults(func=lambda args: asyncio.run(call_command(args)))


async def call_command(args: argparse.Namespace) -> int:
    from websockets.exceptions import ConnectionClosed

    from pipeline.audio import PCM16_8K, ULAW_8K, AudioSpec, Converter
    from pipeline.wav import read_wav, write_wav

    pcm, rate_hz = read_wav(args.wav)
    converter = Converter(AudioSpec("pcm16", rate_hz), ULAW_8K)
    question = converter.process(pcm) + converter.flush()
    peer = _caller(args)
    await peer.connect()
    t0 = time.monotonic()
    try:
        spoke_at_s, reply = await _converse(peer, question, args)
    finally:
        if not peer.is_closed:
            with contextlib.suppress(ConnectionClosed):
                await peer.send_stop()
        await peer.close()
    if reply.began_at_s is None:
        print("warning: no reply after the question before the timeout", file=sys.stderr)
    elif not reply.finished:
        print("warning: the reply did not finish before the timeout", file=sys.stderr)
    decoder = Converter(ULAW_8K, PCM16_8K)
    write_wav(args.out, decoder.process(bytes(peer.played)), ULAW_RATE_HZ)
    replied_after_s = None if reply.began_at_s is None else reply.began_at_s - spoke_at_s
    summary = {
        "call_sid": peer.call_sid,
        "sent_ms": len(question) // ULAW_BYTES_PER_MS,
        "heard_ms": len(peer.played) // ULAW_BYTES_PER_MS,
        "first_reply_after_speech_ms": (
            None if replied_after_s is None else round(replied_after_s * MS_PER_S)
        ),
        "marks_echoed": len(peer.timeline.echoed_marks),
        "clears": len(peer.timeline.clears),
        "close_code": peer.close_code,
        "duration_s": round(time.monotonic() - t0, 1),
        "out": args.out,
    }
    print(json.dumps(summary))
    return 0 if reply.began_at_s is not None else 1


def _caller(args: argparse.Namespace) -> FakeTwilio:
    """The peer, with the stream parameters the webhook hands out and Twilio's signature."""
    from transports.twilio.emulator.client import FakeTwilio
    from transports.twilio.emulator.model import new_sid
    from transports.twilio.emulator.webhook import (
        default_webhook,
        fetch_stream_parameters,
        stream_signature,
    )

    call_sid = new_sid("CA")
    params: dict[str, str] = {}
    webhook = args.webhook or default_webhook(args.url)
    try:
        params = fetch_stream_parameters(
            webhook, call_sid, args.caller, args.callee, args.auth_token
        )
    except Exception as exc:
        print(f"note: webhook {webhook} not used ({exc})", file=sys.stderr)
    headers = {}
    if args.auth_token:
        headers["X-Twilio-Signature"] = stream_signature(args.auth_token, args.url)
    return FakeTwilio(args.url, call_sid=call_sid, params=params, headers=headers)


async def _converse(
    peer: FakeTwilio, question: bytes, args: argparse.Namespace
) -> tuple[float, Heard]:
    """Start, wait, ask, listen. Returns when the question ended and what followed it."""
    await peer.begin()
    started_s = time.monotonic()
    await peer.silence(args.lead_silence_ms)
    if not args.barge_in:
        await _let_greeting_finish(peer, started_s, args)
    for digit in args.dtmf or "":
        await peer.send_dtmf(digit)
    await peer.stream(question)
    spoke_at_s = time.monotonic()
    deadline_s = spoke_at_s + args.timeout_s
    async with line_kept_alive(peer, args.timeout_s):
        reply = await listen(
            peer,
            after_s=spoke_at_s,
            begin_by_s=deadline_s,
            end_by_s=deadline_s,
            quiet_s=args.quiet_s,
        )
    return spoke_at_s, reply


async def _let_greeting_finish(
    peer: FakeTwilio, started_s: float, args: argparse.Namespace
) -> None:
    """A greeting that began within ``--greeting-wait-s`` of the start plays to its end."""
    begin_by_s = started_s + args.greeting_wait_s
    end_by_s = time.monotonic() + args.timeout_s
    async with line_kept_alive(peer, args.greeting_wait_s + args.timeout_s):
        greeting = await listen(
            peer, after_s=started_s, begin_by_s=begin_by_s, end_by_s=end_by_s, quiet_s=args.quiet_s
        )
    if greeting.began_at_s is not None and not greeting.finished:
        print("warning: the greeting did not end before the timeout", file=sys.stderr)
