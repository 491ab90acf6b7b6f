"""The server's frames as a toy receives them, shared by the emulator tests."""

from __future__ import annotations

import json


def server_msg(msg: str, **fields: object) -> str:
    return json.dumps({"type": "server", "msg": msg, **fields})


CREATED = server_msg("RESPONSE.CREATED")
COMPLETE = server_msg("RESPONSE.COMPLETE")
ERROR = server_msg("RESPONSE.ERROR")
COMMITTED = server_msg("AUDIO.COMMITTED")
SESSION_END = server_msg("SESSION.END")
