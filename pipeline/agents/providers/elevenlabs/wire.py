"""The multi-stream-input messages the stage sends, and how it reads what comes back.

From ElevenLabs' AsyncAPI definition of ``/v1/text-to-speech/{voice_id}/multi-stream-input``
and its "Multi-Context Websocket" guide:

* a context is opened by its first message, ``{"text": " ", "context_id", "voice_settings"}``
  (the settings belong to that first message only: a later one that changes them closes the
  socket with 1008);
* text is spoken when ``flush: true`` asks for it (or a buffer fills); ``close_context``
  drops what was not flushed, lets flushed audio finish, then ``{"isFinal": true,
  "contextId"}`` follows;
* ``{"text": "", "context_id"}`` only resets the inactivity clock; ``close_socket`` ends
  every context, then the socket;
* audio comes as ``{"audio": <base64>, "alignment": {"chars", "charStartTimesMs",
  "charDurationsMs"}, "contextId"}``; a failure as ``{"message", "error", "code": 1008}``,
  then a 1008 close.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Any

from pipeline.agents.providers.websocket import StreamError

#: in-band errors a new socket cures; any other one will fail the same way again (a bad key,
#: an exhausted quota, an unknown voice, settings the API refuses)
TRANSIENT_ERRORS = frozenset(
    {
        "input_timeout_exceeded",  # our keep-alive was late: reconnect
        "max_active_conversations",  # too many contexts on that socket: a new one has none
        "internal_server_error",
        "system_busy",
        "too_many_concurrent_requests",
        "rate_limit_exceeded",
    }
)
#: the HTTP status each in-band error stands for, for the permanent-failure log
ERROR_STATUS = {
    "invalid_api_key": 401,
    "too_many_concurrent_requests": 429,
    "rate_limit_exceeded": 429,
}

Message = dict[str, Any]


def open_context(context_id: str, voice_settings: Mapping[str, float | bool] | None) -> Message:
    message: Message = {"text": " ", "context_id": context_id}
    if voice_settings:
        message["voice_settings"] = dict(voice_settings)
    return message


def sentence(context_id: str, text: str) -> Message:
    """One whole sentence, spoken at once: the trailing space keeps it apart from the next
    one, and the flush starts its generation without waiting for the chunk schedule."""
    return {"text": f"{text} ", "context_id": context_id, "flush": True}


def close_context(context_id: str) -> Message:
    return {"context_id": context_id, "close_context": True}


def keepalive(context_id: str | None) -> Message:
    """Resets a context's inactivity clock; with no context open, the socket's (a bare
    ``{"text": ""}``: a context id only belongs in it once that context is open, or the
    keep-alive would open it without its ``voice_settings``)."""
    return {"text": ""} if context_id is None else {"text": "", "context_id": context_id}


CLOSE_SOCKET: Message = {"close_socket": True}


def error_of(message: Mapping[str, Any]) -> StreamError | None:
    """The failure an error message reports, else None."""
    error = message.get("error")
    if not isinstance(error, str) or not error:
        return None
    text = message.get("message")
    detail = f"{error}: {text}" if isinstance(text, str) and text else error
    return StreamError(
        f"ElevenLabs {detail}",
        transient=error in TRANSIENT_ERRORS,
        status=ERROR_STATUS.get(error, 0),
    )


def audio_of(message: Mapping[str, Any]) -> bytes:
    """The message's audio (empty when it has none: ``isFinal`` messages may carry
    ``"audio": null``)."""
    value = message.get("audio")
    if not isinstance(value, str) or not value:
        return b""
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise StreamError("ElevenLabs sent audio that is not base64", transient=True) from exc


def alignment_of(message: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """``alignment`` (the characters we sent), else ``normalizedAlignment``: the sentences are
    counted in our own characters, which normalisation changes ("3" becomes "three")."""
    for key in ("alignment", "normalizedAlignment"):
        value = message.get(key)
        if isinstance(value, Mapping):
            return value
    return None
