"""TwiML for the voice webhook, built with Twilio's library so every value is XML-escaped."""

from __future__ import annotations

from collections.abc import Mapping

from twilio.twiml.voice_response import Connect, Stream, VoiceResponse

#: Twilio: the combined length of each <Parameter> name and value must be under 500
MAX_PARAMETER_CHARS = 499


def connect_stream(stream_url: str, parameters: Mapping[str, str]) -> str:
    """``<Connect><Stream url=…>`` with ``<Parameter>`` children and nothing after it.

    Nothing follows ``</Connect>``: when we close the stream the call ends.
    """
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
    return str(response)


def say_and_hang_up(message: str) -> str:
    """Spoken fallback that opens no stream (capacity reached, draining)."""
    response = VoiceResponse()
    response.say(message)
    response.hangup()
    return str(response)
