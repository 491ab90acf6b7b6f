"""``BRIDGE_RECORDINGS_DIR``: one stereo WAV per call (caller left, agent right).

The file is named ``<UTC start>-<call id>.wav`` in the directory; the name is decided when the
session is created, so the call record can carry it from its first row. A recording that
cannot be opened is logged and skipped: the call goes on unrecorded.
"""

from __future__ import annotations

import logging
import re
import time
from pathlib import Path

from pipeline.observers import ObservedCall, SessionObserver
from pipeline.wav_recorder import CallRecording

log = logging.getLogger("bridge.call_records")

_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")


class Recordings(SessionObserver):
    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        self._paths: dict[ObservedCall, Path] = {}
        self.failures = 0

    def path_for(self, session: ObservedCall) -> str:
        """The session's recording file ('' when it is not recorded)."""
        path = self._paths.get(session)
        return str(path) if path is not None else ""

    def on_session_created(self, session: ObservedCall) -> None:
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        name = _UNSAFE.sub("_", session.call.call_id)[:100] or "call"
        path = self.directory / f"{stamp}-{name}.wav"
        try:
            recording = CallRecording(path, session.port.wire_in, session.port.wire_out)
        except OSError as exc:
            self.failures += 1
            session.log.error("recording disabled for this call: %s", exc)
            return
        self._paths[session] = path
        session.attach_tap(recording)

    def on_call_ended(self, session: ObservedCall) -> None:
        # the session closed the tap itself before this hook
        self._paths.pop(session, None)
