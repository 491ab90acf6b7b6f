"""Structured logging: one JSON object per line with call_id, transport and turn_id.

Audio and secrets never reach a log line: nothing in the code logs payloads, and phone
numbers pass through :func:`transports.base.mask_phone` first.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time

CONTEXT_KEYS = ("call_id", "transport", "turn_id")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "ts": round(record.created, 3),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key in CONTEXT_KEYS:
            value = getattr(record, key, None)
            if value is not None:
                entry[key] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        context = " ".join(
            f"{key}={getattr(record, key)}" for key in CONTEXT_KEYS if getattr(record, key, None)
        )
        stamp = time.strftime("%H:%M:%S", time.localtime(record.created))
        line = f"{stamp} {record.levelname:<7} {record.name}: {record.getMessage()}"
        line = f"{line} [{context}]" if context else line
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def configure(level: str = "INFO", fmt: str = "json") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)


class RedactSecrets(logging.Filter):
    """Masks credentials in records of libraries that log raw HTTP headers at DEBUG.

    uvicorn (through websockets) traces every handshake header, ``Authorization: Bearer``
    and ``X-Twilio-Signature`` included, and so does the websockets client of the speech
    providers (``Authorization: Token`` to Deepgram, ``cf-aig-authorization`` to Cloudflare,
    ``xi-api-key`` to ElevenLabs); nothing of ours logs them, but theirs must not either.
    """

    PATTERN = re.compile(
        r"(?i)((?:authorization|xi-api-key):\s*(?:(?:bearer|token)\s+)?|x-twilio-signature:\s*)"
        r"(\S+)"
    )

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if self.PATTERN.search(message):
            record.msg = self.PATTERN.sub(r"\1[redacted]", message)
            record.args = ()
        return True


class HideFramePayloads(logging.Filter):
    """websockets traces every frame at DEBUG with the start of its payload: base64 audio on
    a phone call. Keep the trace (direction, opcode, size) and drop the payload."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.msg in ("< %s", "> %s") and isinstance(record.args, tuple) and record.args:
            frame = record.args[0]
            opcode, data = getattr(frame, "opcode", None), getattr(frame, "data", None)
            if opcode is not None and isinstance(data, bytes | bytearray):
                name = getattr(opcode, "name", str(opcode))
                record.msg = f"{record.msg[0]} {name} [{len(data)} bytes]"
                record.args = ()
        return True


#: loggers of the libraries that log raw headers and frames. A logger's filters see only the
#: records created on it, not its children's, so the Realtime agent's client (which sends
#: ``Authorization: Bearer`` and base64 audio) needs its own entry.
HEADER_LOGGERS = (
    "uvicorn.error",
    "uvicorn.access",
    "websockets",
    "websockets.server",
    "websockets.client",
)


def install_redaction() -> None:
    for name in HEADER_LOGGERS:
        logger = logging.getLogger(name)
        for kind in (RedactSecrets, HideFramePayloads):
            if not any(isinstance(f, kind) for f in logger.filters):
                logger.addFilter(kind())
