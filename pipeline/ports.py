"""The contracts at a call's edges: the transport's :class:`CallPort`, and the :class:`AudioTap`
that sees the call's audio both ways (a recording).

The port is the contract between a transport adapter and the transport-agnostic
:class:`~pipeline.session.CallSession`.

A transport implements :class:`CallPort` for one call. Every method is called from the
session's single playout path in order, so a transport never sees interleaved writes from the
pipeline; the adapter itself still serialises its own control frames with the same lock.
"""

from __future__ import annotations

from typing import Protocol

from pipeline.audio import AudioSpec
from pipeline.tools.base import TransferTarget


class CallPort(Protocol):
    """What the far end of one call looks like to the pipeline."""

    #: short transport name for logs and metrics ("twilio", "esp32")
    transport: str
    #: format of the audio the transport hands to :meth:`CallSession.push_audio`
    wire_in: AudioSpec
    #: format :meth:`send_audio` expects
    wire_out: AudioSpec
    #: duration of each outbound chunk (the last chunk of a response may be shorter)
    chunk_ms: int
    #: how far ahead of real time the playout may send
    lead_ms: int
    #: a reply stopped by :meth:`interrupt` can go on where it stopped (its unheard audio sent
    #: again): the far end is told nothing else. False: stopping ends the reply for good (a
    #: toy's RESPONSE.COMPLETE), so every stop is a real interruption.
    resumable: bool

    async def commit_user_turn(self, turn_id: int) -> None:
        """The pipeline decided the user finished speaking; a response (or error) follows."""

    async def begin_response(self, turn_id: int) -> None:
        """First audio of ``turn_id`` is ready. May wait (e.g. a device's listen hold)."""

    async def send_audio(self, turn_id: int, chunk: bytes, duration_ms: float) -> None:
        """Send one chunk in :attr:`wire_out` format. May wait on back-pressure."""

    async def end_response(self, turn_id: int, *, had_audio: bool, ok: bool) -> None:
        """No more audio for ``turn_id``; ``ok`` is False when the turn failed."""

    async def interrupt(self, turn_id: int) -> float:
        """Stop the far end playing ``turn_id`` now; return how many ms of it were heard."""
        ...

    def is_playing(self) -> bool:
        """True while sent audio may still be unplayed at the far end."""
        ...

    def unacked_ms(self) -> float:
        """Audio sent but not yet confirmed played (the playout's hard cap uses this)."""
        ...

    async def drain(self, timeout_s: float) -> None:
        """Wait (at most ``timeout_s``) until the far end has played everything sent."""

    async def close(self, code: int, reason: str) -> None:
        """End the call from our side (after the goodbye has played)."""

    async def transfer(self, target: TransferTarget) -> None:
        """Hand the call to a person (everything said so far has been heard); the far end
        then ends the stream itself. Raises :class:`TransferFailed` when it cannot (a toy
        never can) and the call goes on."""


class AudioTap(Protocol):
    """Receives a call's audio as it passes the pipeline's edges."""

    def inbound(self, data: bytes) -> None:
        """Caller audio in the port's ``wire_in`` format, as it arrives."""

    def outbound(self, chunk: bytes, play_at_s: float) -> None:
        """Agent audio in the port's ``wire_out`` format, due to play at ``play_at_s``."""

    def close(self) -> None:
        """The call is over: write what is left."""
