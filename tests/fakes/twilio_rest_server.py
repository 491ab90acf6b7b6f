"""A fake of Twilio's REST API (the two Calls endpoints we use), as a real HTTP server.

The real ``twilio`` client talks to it over loopback (``BRIDGE_TWILIO_API_URL``), so the
tests see exactly what would reach Twilio: method, path, Basic auth and form fields. It takes
call creation (with whatever callback and AMD fields came along), hang-ups
(``Status=completed``) and TwiML updates (``Twiml``: a transfer's ``<Dial>``); the callbacks
Twilio would then send are posted by tests/support/twilio_signing.py (``post_callback``) to
the URLs recorded here.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

CALLS = re.compile(r"/2010-04-01/Accounts/(AC[0-9a-f]{32})/Calls\.json")
CALL = re.compile(r"/2010-04-01/Accounts/(AC[0-9a-f]{32})/Calls/(CA[0-9a-f]{32})\.json")
NOT_FOUND_BODY = {
    "code": 20404,
    "message": "The requested resource was not found",
    "more_info": "https://www.twilio.com/docs/errors/20404",
    "status": 404,
}


@dataclass(frozen=True)
class Seen:
    method: str
    path: str
    #: Basic auth (username, password), None when absent
    auth: tuple[str, str] | None
    form: dict[str, list[str]]
    at: float  # time.monotonic() when it arrived
    #: the CallSid created (a create) or addressed (an update); empty otherwise
    sid: str = ""

    def field(self, name: str) -> str:
        return self.form[name][0]

    def get(self, name: str, default: str = "") -> str:
        """The field's first value, or ``default`` when it was not sent."""
        values = self.form.get(name)
        return values[0] if values else default

    @property
    def is_create(self) -> bool:
        return CALLS.fullmatch(self.path) is not None

    @property
    def is_twiml_update(self) -> bool:
        return CALL.fullmatch(self.path) is not None and "Twiml" in self.form


class FakeTwilioRest:
    def __init__(self) -> None:
        self.requests: list[Seen] = []
        #: CallSids that are over: updating them answers 404 / 20404
        self.ended: set[str] = set()
        #: when set, every call update answers this (status, JSON body)
        self.update_failure: tuple[int, dict[str, Any]] | None = None
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self.arrived = threading.Event()

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> FakeTwilioRest:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    def wait_for_request(self, timeout_s: float = 10.0) -> Seen:
        if not self.arrived.wait(timeout_s):
            raise TimeoutError("no REST request arrived")
        return self.requests[0]

    def created(self) -> list[Seen]:
        """Every call creation, in order (``sid`` is the CallSid it was given)."""
        return [seen for seen in self.requests if seen.is_create]

    def twiml_updates(self, call_sid: str | None = None) -> list[Seen]:
        """Every ``Twiml`` update (of ``call_sid`` only, when given), in order."""
        return [
            seen
            for seen in self.requests
            if seen.is_twiml_update and (call_sid is None or seen.sid == call_sid)
        ]

    def wait_for(self, matches: Callable[[Seen], bool], timeout_s: float = 10.0) -> Seen:
        """The first request ``matches`` accepts, waiting for it to arrive."""
        deadline = time.monotonic() + timeout_s
        while True:
            found = next((seen for seen in list(self.requests) if matches(seen)), None)
            if found is not None:
                return found
            if time.monotonic() > deadline:
                raise TimeoutError("no matching REST request arrived")
            time.sleep(0.02)

    def answer(self, method: str, path: str, form: dict[str, list[str]]) -> tuple[int, Any]:
        if method != "POST":
            return 405, {"code": 20004, "message": "Method not allowed", "status": 405}
        if match := CALLS.fullmatch(path):
            sid = "CA" + secrets.token_hex(16)
            return 201, {
                "sid": sid,
                "account_sid": match.group(1),
                "to": form.get("To", [""])[0],
                "from": form.get("From", [""])[0],
                "status": "queued",
            }
        if match := CALL.fullmatch(path):
            sid = match.group(2)
            if self.update_failure is not None:
                return self.update_failure
            if sid in self.ended:
                return 404, NOT_FOUND_BODY
            if "Twiml" in form:  # new instructions: the call goes on (a transfer's <Dial>)
                return 200, {"sid": sid, "account_sid": match.group(1), "status": "in-progress"}
            self.ended.add(sid)
            return 200, {"sid": sid, "account_sid": match.group(1), "status": "completed"}
        return 404, NOT_FOUND_BODY

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self._serve()

            def do_GET(self) -> None:
                self._serve()

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode("utf-8")
                form = parse_qs(body, keep_blank_values=True)
                auth = None
                header = self.headers.get("Authorization", "")
                if header.startswith("Basic "):
                    user, _, password = base64.b64decode(header[6:]).decode().partition(":")
                    auth = (user, password)
                path = self.path.split("?")[0]
                at = time.monotonic()
                status, payload = fake.answer(self.command, path, form)
                sid = ""
                if match := CALL.fullmatch(path):
                    sid = match.group(2)
                elif status == 201:
                    sid = payload["sid"]
                fake.requests.append(Seen(self.command, path, auth, form, at, sid))
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                fake.arrived.set()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler
