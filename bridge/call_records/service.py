"""Call records and recordings as the app sees them: observers to add, a start and a close."""

from __future__ import annotations

import asyncio
import logging

from bridge.call_records.observer import CallRecorder
from bridge.call_records.store import open_store
from bridge.call_records.url import parse_records_url
from bridge.call_records.wav_files import Recordings
from bridge.call_records.writer import RecordWriter
from bridge.settings import Settings
from pipeline.observers import SessionObserver

log = logging.getLogger("bridge.call_records")


class CallRecords:
    """Built from the settings; either part may be off (then it costs nothing)."""

    def __init__(self, settings: Settings) -> None:
        target = parse_records_url(settings.records_url)
        self.recordings = Recordings(settings.recordings_dir) if settings.recordings_dir else None
        self.writer: RecordWriter | None = None
        self.recorder: CallRecorder | None = None
        self.where = "off"
        if target is not None:
            self.where = target.describe()
            self.writer = RecordWriter(lambda: open_store(target))
            self.recorder = CallRecorder(
                self.writer, self.recordings.path_for if self.recordings else None
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
