"""TwiML for the voice webhook, built with Twilio's library so every value is XML-escaped.

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

from twilio.twiml.voice_response import Connect, Stream, VoiceResponse

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
    """Spoken fallback that opens no stream (capacity reached, draining)."""
    response = VoiceResponse()
    response.say(message)
    response.hangup()
    return str(response)
