"""``bridge`` command line: serve the bridge, emulate a caller or a toy, read the call records,
print the settings table."""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
import time
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET
from collections.abc import Sequence

from bridge.settings import Settings, SettingsError
from pipeline.agents.persona import PersonaError


def _settings_or_none() -> Settings | None:
    """The settings, or None after printing every problem (the command then exits 2)."""
    try:
        return Settings.from_env()
    except SettingsError as exc:
        print(exc, file=sys.stderr)
        return None


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from bridge.app import create_app
    from bridge.server.config import uvicorn_options
    from bridge.ops import heap, logs
    from bridge.server.draining import DrainingServer

    settings = _settings_or_none()
    if settings is None:
        return 2
    host = args.host or settings.host
    port = args.port or settings.port
    logs.configure(settings.log_level, settings.log_format)
    try:
        app = create_app(settings)
    except (SettingsError, PersonaError) as exc:  # e.g. a missing API key, a bad personas file
        print(exc, file=sys.stderr)
        return 2
    heap.settle()  # after the app and its agent are built: the objects that live forever
    config = uvicorn.Config(app, host=host, port=port, **uvicorn_options(settings))
    drainer = app.state.bridge.drainer
    server = DrainingServer(config, lambda: drainer.drain(settings.drain_timeout_s))
    server.run()
    return 0


def twilio_signature(auth_token: str, url: str, params: dict[str, str] | None = None) -> str:
    """``X-Twilio-Signature`` for ``url`` and POST ``params``, computed as Twilio does."""
    from twilio.request_validator import RequestValidator

    signature: str = RequestValidator(auth_token).compute_signature(url, params or {})
    return signature


def fetch_stream_parameters(
    webhook_url: str, call_sid: str, caller: str, callee: str, auth_token: str = ""
) -> dict[str, str]:
    """POST the voice webhook like Twilio (signed when ``auth_token`` is given) and return
    the <Parameter>s of its <Stream>."""
    form = {"CallSid": call_sid, "From": caller, "To": callee}
    body = urllib.parse.urlencode(form).encode()
    request = urllib.request.Request(webhook_url, data=body, method="POST")
    if auth_token:
        request.add_header("X-Twilio-Signature", twilio_signature(auth_token, webhook_url, form))
    with urllib.request.urlopen(request, timeout=5) as response:
        root = ET.fromstring(response.read())
    stream = root.find("./Connect/Stream")
    if stream is None:
        raise RuntimeError(
            "webhook answered without <Connect><Stream>: " + ET.tostring(root).decode()
        )
    return {p.attrib["name"]: p.attrib["value"] for p in stream.findall("Parameter")}


def default_webhook(stream_url: str) -> str:
    parts = urllib.parse.urlsplit(stream_url)
    scheme = "https" if parts.scheme == "wss" else "http"
    return urllib.parse.urlunsplit((scheme, parts.netloc, "/twiml", "", ""))


async def _call(args: argparse.Namespace) -> int:
    from pipeline.audio import PCM16_8K, ULAW_8K, AudioSpec, Converter
    from pipeline.wav import read_wav, write_wav
    from transports.twilio.emulator.client import FakeTwilio, new_sid

    pcm, rate_hz = read_wav(args.wav)
    converter = Converter(AudioSpec("pcm16", rate_hz), ULAW_8K)
    question = converter.process(pcm) + converter.flush()
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
        # Twilio signs the wss:// URL of the <Stream>, whatever carries the bytes
        parts = urllib.parse.urlsplit(args.url)
        signed = urllib.parse.urlunsplit(("wss", parts.netloc, parts.path, parts.query, ""))
        headers["X-Twilio-Signature"] = twilio_signature(args.auth_token, signed)
    peer = FakeTwilio(args.url, call_sid=call_sid, params=params, headers=headers)
    await peer.connect()
    t0 = time.monotonic()
    await peer.begin()
    await peer.silence(args.lead_silence_ms)
    for digit in args.dtmf or "":
        await peer.send_dtmf(digit)
    await peer.stream(question)
    spoke_at = time.monotonic()
    sender = asyncio.create_task(peer.silence(int(args.timeout_s * 1000)))
    try:
        await peer.wait_quiet(quiet_s=args.quiet_s, timeout_s=args.timeout_s)
    except TimeoutError:
        print("warning: no complete reply before the timeout", file=sys.stderr)
    sender.cancel()
    if not peer.is_closed:
        await peer.send_stop()
    await peer.close()
    decoder = Converter(ULAW_8K, PCM16_8K)
    write_wav(args.out, decoder.process(bytes(peer.played)), 8000)
    first = next((t for t in peer.timeline.media_times if t >= spoke_at), None)
    summary = {
        "call_sid": call_sid,
        "sent_ms": len(question) // 8,
        "heard_ms": len(peer.played) // 8,
        "first_reply_after_speech_ms": round((first - spoke_at) * 1000) if first else None,
        "marks_echoed": len(peer.timeline.echoed_marks),
        "clears": len(peer.timeline.clears),
        "close_code": peer.close_code,
        "duration_s": round(time.monotonic() - t0, 1),
        "out": args.out,
    }
    print(json.dumps(summary))
    return 0 if peer.played else 1


async def _toy(args: argparse.Namespace) -> int:
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
        greeting = (await toy.wait_responses(1, args.timeout_s))[0]
        for turn in range(1, args.turns + 1):
            await toy.speak(question, listen_timeout_s=args.timeout_s)
            if args.interrupt_after_ms and turn == 1:
                await toy.wait_state("SPEAKING", args.timeout_s)
                await asyncio.sleep(args.interrupt_after_ms / 1000)
                await toy.send_instruction("INTERRUPT", audio_end_ms=int(toy.played_ms()))
            reply = (await toy.wait_responses(turn + 1, args.timeout_s))[turn]
            heard += reply.pcm_48k
            ok = ok and bool(reply.ok)
        if args.end_session:
            await toy.send_instruction("END_SESSION")
            await toy.wait_closed(5)
    except (TimeoutError, ToyClosed) as exc:
        print(f"toy: {exc!r}", file=sys.stderr)
        ok = False
    finally:
        await toy.close()
    write_wav(args.out, bytes(heard), 48000)
    summary = {
        "auth": toy.auth,
        "greeting_ms": round(greeting.decoded_ms) if toy.responses else None,
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


E164 = re.compile(r"\+[1-9][0-9]{6,14}")


def _dial(args: argparse.Namespace) -> int:
    """Place an outbound call through Twilio's REST API and connect it to the agent."""
    from bridge.routes import STREAM_PATH
    from bridge.twilio import twiml
    from bridge.twilio.rest import TwilioRest

    settings = _settings_or_none()
    if settings is None:
        return 2
    caller_id = args.from_ or settings.twilio_from
    problems = [
        f"{label} {number!r} is not an E.164 number such as +15551234567"
        for label, number in (("to", args.to), ("from", caller_id))
        if number and not E164.fullmatch(number)
    ]
    if not caller_id:
        problems.append("no caller ID: set BRIDGE_TWILIO_FROM or pass --from")
    if not settings.twilio_rest_configured:
        problems.append(
            "no REST credentials: set TWILIO_ACCOUNT_SID with TWILIO_AUTH_TOKEN, "
            "or with TWILIO_API_KEY_SID and TWILIO_API_KEY_SECRET"
        )
    if not (args.webhook or settings.public_host):
        problems.append("no public host: set BRIDGE_PUBLIC_HOST or pass --webhook")
    if args.inline and settings.twilio_auth_token:
        # inline TwiML is written before the CallSid exists, so it cannot carry a stream token
        problems.append(
            "--inline cannot carry the per-call stream token that TWILIO_AUTH_TOKEN enforces; "
            "use the webhook (the default)"
        )
    if problems:
        print("bridge dial: " + "\n  ".join(problems), file=sys.stderr)
        return 2
    rest = TwilioRest.from_settings(settings)
    host = settings.public_host or urllib.parse.urlsplit(args.webhook).netloc
    try:
        if args.inline:
            document = twiml.connect_stream(
                f"wss://{host}{STREAM_PATH}", {"to": args.to}, settings.twilio_after_stream
            )
            sid = rest.place_call(args.to, caller_id, twiml=document)
        else:
            sid = rest.place_call(args.to, caller_id, url=args.webhook or f"https://{host}/twiml")
    except Exception as exc:
        print(f"bridge dial: Twilio refused the call: {exc!r}", file=sys.stderr)
        return 1
    print(sid)
    return 0


def _settings(args: argparse.Namespace) -> int:
    if args.markdown:
        print(Settings.markdown_table())
        return 0
    try:
        print(json.dumps(Settings.from_env().redacted(), indent=2))
    except SettingsError as exc:
        print(exc, file=sys.stderr)
        return 2
    return 0


def _calls(args: argparse.Namespace) -> int:
    from bridge.call_records import report
    from bridge.call_records.store import open_store
    from bridge.call_records.url import parse_records_url

    try:
        url = args.url if args.url is not None else Settings.from_env().records_url
        target = parse_records_url(url)
    except SettingsError as exc:
        print(exc, file=sys.stderr)
        return 2
    if target is None:
        print("call records are off (BRIDGE_RECORDS_URL=none)", file=sys.stderr)
        return 1
    try:
        store = open_store(target, create=False)
    except Exception as exc:
        print(f"cannot open the call records ({target.describe()}): {exc}", file=sys.stderr)
        return 1
    try:
        if args.action == "show":
            found = store.call(args.call_id)
            if found is None:
                print(f"no call {args.call_id!r}", file=sys.stderr)
                return 1
            print(report.call_json(*found) if args.json else report.call_text(*found))
        else:
            calls = store.recent_calls(args.limit)
            print(report.calls_json(calls) if args.json else report.calls_table(calls))
    finally:
        store.close()
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bridge", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the voice bridge")
    serve.add_argument("--host", help="listen address (default BRIDGE_HOST)")
    serve.add_argument("--port", type=int, help="listen port (default BRIDGE_PORT)")
    serve.set_defaults(func=_serve)

    call = sub.add_parser("call", help="emulate a Twilio phone call against /stream")
    call.add_argument("--url", default="ws://127.0.0.1:8080/stream")
    call.add_argument("--wav", required=True, help="what the caller says (16-bit WAV)")
    call.add_argument("--out", required=True, help="WAV file for what the caller heard")
    call.add_argument("--webhook", help="voice webhook to fetch TwiML from (default /twiml)")
    call.add_argument("--caller", default="+15550001111")
    call.add_argument("--callee", default="+15550002222")
    call.add_argument("--dtmf", help="digits to press before speaking")
    call.add_argument(
        "--auth-token",
        default="",
        help="sign the webhook and the stream like Twilio (the server's TWILIO_AUTH_TOKEN)",
    )
    call.add_argument("--lead-silence-ms", type=int, default=1000)
    call.add_argument("--quiet-s", type=float, default=1.5, help="silence that ends the reply")
    call.add_argument("--timeout-s", type=float, default=30.0)
    call.set_defaults(func=lambda a: asyncio.run(_call(a)))

    toy = sub.add_parser("toy", help="emulate an ESP32 toy (Elato protocol) against /ws/esp32")
    toy.add_argument("--url", default="ws://127.0.0.1:8080/ws/esp32")
    toy.add_argument("--token", help="Bearer token (JWT or device token)")
    toy.add_argument("--mac", default="24:0A:C4:12:34:56", help="X-Device-Mac ('' for none)")
    toy.add_argument("--wav", required=True, help="what the child says (16-bit WAV)")
    toy.add_argument("--out", required=True, help="WAV file (48 kHz) for what the toy played")
    toy.add_argument("--turns", type=int, default=1)
    toy.add_argument("--interrupt-after-ms", type=int, default=0)
    toy.add_argument("--end-session", action="store_true", help="send END_SESSION at the end")
    toy.add_argument("--timeout-s", type=float, default=30.0)
    toy.set_defaults(func=lambda a: asyncio.run(_toy(a)))

    dial = sub.add_parser("dial", help="call a phone through Twilio and connect it to the agent")
    dial.add_argument("to", help="number to call, E.164 (+15551234567)")
    dial.add_argument("--from", dest="from_", help="caller ID (default BRIDGE_TWILIO_FROM)")
    dial.add_argument(
        "--webhook", help="TwiML URL Twilio fetches (default https://BRIDGE_PUBLIC_HOST/twiml)"
    )
    dial.add_argument(
        "--inline",
        action="store_true",
        help="send the TwiML with the request instead of a webhook (no TWILIO_AUTH_TOKEN only)",
    )
    dial.set_defaults(func=_dial)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--url", help="records database (default BRIDGE_RECORDS_URL)")
    common.add_argument("--json", action="store_true", help="JSON instead of text")
    calls = sub.add_parser("calls", parents=[common], help="list recent call records")
    calls.add_argument("--limit", type=int, default=20, help="how many calls (newest first)")
    calls.set_defaults(func=_calls, action="list")
    calls_sub = calls.add_subparsers(dest="action")
    calls_show = calls_sub.add_parser("show", parents=[common], help="one call, turn by turn")
    calls_show.add_argument("call_id")

    show = sub.add_parser("settings", help="print the effective settings")
    show.add_argument("--markdown", action="store_true", help="the README table of all settings")
    show.set_defaults(func=_settings)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
