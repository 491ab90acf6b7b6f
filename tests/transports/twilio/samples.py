"""Twilio's documented sample messages (spec §3.3), shared by the protocol tests."""

from __future__ import annotations

import base64
import json

SID = "MZXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX"
CALL = "CAXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX"
ACCOUNT = "ACXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX"

# Twilio's documented examples, verbatim values (spec §3.3)
CONNECTED = '{ "event": "connected", "protocol": "Call", "version": "1.0.0" }'
START = json.dumps(
    {
        "event": "start",
        "sequenceNumber": "1",
        "start": {
            "accountSid": ACCOUNT,
            "streamSid": SID,
            "callSid": CALL,
            "tracks": ["inbound"],
            "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
            "customParameters": {"FirstName": "Jane", "LastName": "Doe", "RemoteParty": "Bob"},
        },
        "streamSid": SID,
    }
)


def media(payload: bytes | str, seq: int = 2, sid: str = SID, **extra: object) -> str:
    if isinstance(payload, bytes):
        payload = base64.b64encode(payload).decode()
    body = {"track": "inbound", "chunk": str(seq), "timestamp": str(seq * 20), "payload": payload}
    return json.dumps(
        {"event": "media", "sequenceNumber": str(seq), "media": body, "streamSid": sid, **extra}
    )


def mark(name: str, seq: int = 9) -> str:
    return json.dumps(
        {"event": "mark", "sequenceNumber": str(seq), "streamSid": SID, "mark": {"name": name}}
    )
