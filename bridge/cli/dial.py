"""``bridge dial``: place an outbound call through Twilio's REST API, connected to the agent."""

from __future__ import annotations

import argparse
import re
import sys
import urllib.parse

from bridge.cli.common import SubParsers, settings_or_none

E164 = re.compile(r"\+[1-9][0-9]{6,14}")


def register(sub: SubParsers) -> None:
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
    dial.set_defaults(func=dial_command)


def dial_command(args: argparse.Namespace) -> int:
    """Place an outbound call through Twilio's REST API and connect it to the agent."""
    from bridge.routes import STREAM_PATH
    from bridge.twilio import twiml
    from bridge.twilio.rest import TwilioRest

    settings = settings_or_none()
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
