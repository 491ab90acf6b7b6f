"""``bridge dial``: place an outbound call through Twilio's REST API, connected to the agent.

Every call asks Twilio for call-progress callbacks (``/twilio/status``), so a call nobody
answered still gets a record, and by default for asynchronous answering-machine detection
(``/twilio/amd``): the call connects at once, and when a machine answered the agent leaves the
persona's voicemail after the beep. ``--no-amd`` is for numbers known to be people (AMD costs
a little per call, and its verdict takes a few seconds).
"""

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
    dial.add_argument(
        "--no-amd",
        dest="amd",
        action="store_false",
        help="no answering-machine detection (default: detect, leave the persona's voicemail)",
    )
    dial.set_defaults(func=dial_command)


def dial_command(args: argparse.Namespace) -> int:
    """Place an outbound call through Twilio's REST API and connect it to the agent."""
    from bridge.twilio import twiml
    from bridge.twilio.paths import AMD_PATH, STATUS_PATH, STREAM_PATH, TWIML_PATH, public_url
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
    callbacks = {
        "status_callback": public_url(host, STATUS_PATH),
        "amd_callback": public_url(host, AMD_PATH) if args.amd else None,
    }
    try:
        if args.inline:
            document = twiml.connect_stream(
                f"wss://{host}{STREAM_PATH}", {"to": args.to}, settings.twilio_after_stream
            )
            sid = rest.place_call(args.to, caller_id, twiml=document, **callbacks)
        else:
            url = args.webhook or public_url(host, TWIML_PATH)
            sid = rest.place_call(args.to, caller_id, url=url, **callbacks)
    except Exception as exc:
        print(f"bridge dial: Twilio refused the call: {exc!r}", file=sys.stderr)
        return 1
    print(sid)
    return 0
