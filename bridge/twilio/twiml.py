"""TwiML for the voice webhook and transfers, built with Twilio's library so every value is
XML-escaped.

What follows ``</Connect>`` is an explicit choice (``BRIDGE_TWILIO_AFTER_STREAM``), because
Twilio runs the next verb as soon as the stream closes, whoever closed it:

* ``end`` (default): nothing follows. Closing the stream ends the call, so an agent's hang-up
  needs nothing else; but a stream that drops (bridge restart, network) leaves the caller
  with a silent hang-up.
* ``apology``: a short spoken apology and ``<Hangup/>``, so a dropped stream is explained.
  A deliberate agent hang-up must then not fall through to the apology: the bridge completes
  the call through the REST API once the goodbye was heard, before closing the stream
  (bridge/twilio/rest.py).
"""

from __future__ import annotations

from collections.abc import Mapping

from twilio.twiml.voice_response import Connect, Dial, Stream, VoiceResponse

from pipeline.tools.base import TransferTarget

#: Twilio: the combined length of each <Parameter> name and value must be under 500
MAX_PARAMETER_CHARS = 499

AFTER_STREAM_END = "end"
AFTER_STREAM_APOLOGY = "apology"
#: spoken when the stream ended without the agent hanging up (``apology``)
DROPPED_STREAM_APOLOGY = "Sorry, the connection to the assistant was lost. Please call again."


def connect_stream(
    stream_url: str, parameters: Mapping[str, str], after: str = AFTER_STREAM_END
) -> str:
    """``<Connect><Stream url=…>`` with ``<Parameter>`` children, then what ``after`` names."""
    if "?" in stream_url:
        raise ValueError("Twilio does not support a query string on <Stream url>")
    response = VoiceResponse()
    connect = Connect()
    stream = Stream(url=stream_url)
    for name, value in parameters.items():
        if value and len(name) + len(value) <= MAX_PARAMETER_CHARS:
            stream.parameter(name=name, value=value)
    connect.append(stream)
    response.append(connect)
    if after == AFTER_STREAM_APOLOGY:
        response.say(DROPPED_STREAM_APOLOGY)
        response.hangup()
    elif after != AFTER_STREAM_END:
        raise ValueError(f"unknown after-stream choice {after!r}")
    return str(response)


def say_and_hang_up(message: str) -> str:
    """Spoken fallback that opens no stream (capacity reached, draining, nobody answered a
    transfer)."""
    response = VoiceResponse()
    response.say(message)
    response.hangup()
    return str(response)


def hang_up() -> str:
    """``<Hangup/>``: a transferred call that was answered is over when that leg ends."""
    response = VoiceResponse()
    response.hangup()
    return str(response)


def dial(target: TransferTarget, action_url: str) -> str:
    """``<Dial>`` to a person: ``<Number>`` for a phone number, ``<Sip>`` for a SIP URI.

    Without ``callerId`` Twilio shows the caller's own number, which is what a person taking a
    transferred call usually wants to see. ``action`` is asked (POST) once the dialled leg
    ended, with ``DialCallStatus``: that is where a transfer nobody answered is handled.
    """
    response = VoiceResponse()
    verb = Dial(
        action=action_url,
        method="POST",
        timeout=target.ring_timeout_s,
        caller_id=target.caller_id or None,
    )
    if target.is_sip:
        verb.sip(target.to)
    else:
        verb.number(target.to)
    response.append(verb)
    return str(response)
