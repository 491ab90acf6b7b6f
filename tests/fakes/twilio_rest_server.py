"""A fake of Twilio's REST API (the two Calls endpoints we use), as a real HTTP server.

The real ``twilio`` client talks to it over loopback (``BRIDGE_TWILIO_API_URL``), so the
tests see exactly what would reach Twilio: method, path, Basic auth and form fields.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import threading
import time
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

    def field(self, name: str) -> str:
        return self.form[name][0]


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
                fake.requests.append(Seen(self.command, path, auth, form, time.monotonic()))
                status, payload = fake.answer(self.command, path, form)
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
