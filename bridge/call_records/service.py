"""Call records and recordings as the app sees them: observers to add, a start and a close,
and what Twilio's status callbacks report (the web routes hand it over here)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from bridge.call_records.model import TwilioStatusRow
from bridge.call_records.observer import CallRecorder
from bridge.call_records.store import open_store
from bridge.call_records.url import parse_records_url
from bridge.call_records.wav_files import Recordings
from bridge.call_records.writer import RecordWriter
from bridge.settings import Settings
from pipeline.observers import SessionObserver
from transports.base import mask_phone

log = logging.getLogger("bridge.call_records")


class CallRecords:
    """Built from the settings; either part may be off (then it costs nothing)."""

    def __init__(self, settings: Settings, wall_clock: Callable[[], float] = time.time) -> None:
        self._now = wall_clock
        target = parse_records_url(settings.records_url)
        self.recordings = Recordings(settings.recordings_dir) if settings.recordings_dir else None
        self.writer: RecordWriter | None = None
        self.recorder: CallRecorder | None = None
        self.where = "off"
        if target is not None:
            self.where = target.describe()
            self.writer = RecordWriter(lambda: open_store(target))
            self.recorder = CallRecorder(
                self.writer, self.recordings.path_for if self.recordings else None, wall_clock
            )

    @property
    def observers(self) -> list[SessionObserver]:
        """In hook order: the recording first, so the record knows its file name."""
        found: list[SessionObserver] = []
        if self.recordings is not None:
            found.append(self.recordings)
        if self.recorder is not None:
            found.append(self.recorder)
        return found

    def twilio_status(
        self,
        call_sid: str,
        *,
        status: str = "",
        duration_s: float | None = None,
        answered_by: str = "",
        caller: str = "",
        callee: str = "",
    ) -> None:
        """Record what one Twilio callback said of ``call_sid`` (status callback: CallStatus,
        CallDuration; answering-machine detection: AnsweredBy). Pass only what it carried.

        Non-blocking and never raises, like every record; a no-op when records are off. The
        callback may come before the media stream, after it, or for a call that never had
        one: the call's row is created if needed, else only these columns are set. Numbers
        are masked here too (masking is idempotent), like the session's own row.
        """
        if self.writer is None or not call_sid:
            return
        self.writer.submit(
            TwilioStatusRow(
                call_id=call_sid,
                at_s=self._now(),
                twilio_status=status,
                twilio_duration_s=duration_s,
                answered_by=answered_by,
                caller=mask_phone(caller),
                callee=mask_phone(callee),
            )
        )

    def start(self) -> None:
        log.info(
            "call records: %s; recordings: %s",
            self.where,
            self.recordings.directory if self.recordings else "off",
        )
        if self.writer is not None:
            self.writer.start()

    async def aclose(self, timeout_s: float = 10.0) -> None:
        """Write every record already queued, then close the database (lifespan shutdown)."""
        if self.writer is not None:
            await asyncio.to_thread(self.writer.close, timeout_s)
