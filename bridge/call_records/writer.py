"""One writer thread per process, fed by a bounded queue: the event loop never waits on SQL.

Session hooks call :meth:`RecordWriter.submit`, which only appends to a queue. The thread
wakes on the first row, lingers briefly for the rest (a turn's rows come in a burst: commit,
transcript, first audio), keeps the newest snapshot of each row, and upserts the batch in one
transaction. Lingering means fewer transactions, and that the writer's work (which shares the
core and the interpreter lock with the event loop) does not start the moment a caller's turn
is committed, when the loop is busiest with that turn. (Twilio's status rows are never
coalesced: each callback carries different columns, merged by the database; see
:class:`~bridge.call_records.model.TwilioStatusRow`.) A failing database (locked,
unreachable, read-only) is retried with backoff for a while, then the batch is dropped and
counted: call records must never cost a call.
When the queue is full, new rows are dropped and counted rather than blocking the loop.

:meth:`close` (the app's lifespan shutdown) writes everything already queued before it
returns, so calls that ended during a drain keep complete records.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

from bridge.call_records.model import Row
from bridge.call_records.store import RecordStore

log = logging.getLogger("bridge.call_records")

#: rows waiting for the writer; at ~4 rows per turn this is minutes of a busy server
MAX_QUEUE_ROWS = 20_000
#: most rows in one transaction
MAX_BATCH_ROWS = 500
#: a batch is retried this many times (with backoff) before it is dropped
WRITE_ATTEMPTS = 5
BACKOFF_FIRST_S = 0.2
BACKOFF_MAX_S = 5.0
#: how long the writer waits for more rows after the first of a batch
LINGER_S = 0.5


@dataclass
class WriterStats:
    rows_written: int = 0
    #: rows lost: the queue was full, the batch kept failing, or the writer was closed
    rows_dropped: int = 0
    #: failed attempts to open the database or write a batch
    failures: int = 0


class _Flush:
    """A marker in the queue: set once every row queued before it has been handled."""

    def __init__(self) -> None:
        self.done = threading.Event()


_STOP = object()


class RecordWriter:
    def __init__(
        self,
        open_store: Callable[[], RecordStore],
        *,
        max_queue_rows: int = MAX_QUEUE_ROWS,
        name: str = "records-writer",
        linger_s: float = LINGER_S,
    ) -> None:
        self._open_store = open_store
        self._linger_s = linger_s
        #: set by flush() and close(): stop lingering, someone is waiting
        self._hurry = threading.Event()
        self._queue: queue.Queue[object] = queue.Queue(maxsize=max_queue_rows)
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._closed = False
        self._store: RecordStore | None = None
        self._last_drop_log_s = 0.0
        self._stats_lock = threading.Lock()  # drops are counted on both threads
        self.stats = WriterStats()

    def start(self) -> None:
        self._thread.start()

    # -- event loop side -------------------------------------------------------------------

    def submit(self, row: Row) -> None:
        """Queue a snapshot of ``row``; never blocks, never raises."""
        if self._closed:
            self._dropped(1, "the writer is closed")
            return
        try:
            self._queue.put_nowait(replace(row))
        except queue.Full:
            self._dropped(1, "the queue is full")

    def flush(self, timeout_s: float = 10.0) -> bool:
        """Block until everything queued so far is written (or dropped); False on timeout."""
        if not self._thread.is_alive():
            return self._queue.empty()
        marker = _Flush()
        try:
            self._queue.put(marker, timeout=timeout_s)
        except queue.Full:
            return False
        self._hurry.set()
        return marker.done.wait(timeout_s)

    def close(self, timeout_s: float = 10.0) -> None:
        """Write what is queued, stop the thread, close the database. Idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._thread.is_alive():
            try:
                self._queue.put(_STOP, timeout=timeout_s)
                self._hurry.set()
            except queue.Full:
                log.error("records writer stuck; %d rows not written", self._queue.qsize())
            self._thread.join(timeout_s)
        if self._thread.is_alive():
            log.error("records writer did not finish within %.0f s", timeout_s)

    # -- writer thread ---------------------------------------------------------------------

    def _run(self) -> None:
        self._connect()
        stop = False
        while not stop:
            items = [self._queue.get()]
            if not isinstance(items[0], _Flush) and items[0] is not _STOP:
                self._hurry.wait(self._linger_s)
            while len(items) < MAX_BATCH_ROWS:
                try:
                    items.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            # a marker queued after this point comes first in the next round: no linger then
            self._hurry.clear()
            batch: dict[tuple[object, ...], Row] = {}
            for item in items:
                if item is _STOP:
                    stop = True
                elif isinstance(item, _Flush):
                    self._write(batch)
                    batch = {}
                    item.done.set()
                else:
                    row: Row = item  # type: ignore[assignment]
                    batch.pop(row.key, None)  # the newest snapshot goes last
                    batch[row.key] = row
            self._write(batch)
        if self._store is not None:
            self._store.close()
            self._store = None

    def _connect(self) -> RecordStore | None:
        if self._store is None:
            try:
                self._store = self._open_store()
            except Exception as exc:
                self.stats.failures += 1
                log.error("call records: cannot open the database: %s", exc)
        return self._store

    def _write(self, batch: dict[tuple[object, ...], Row]) -> None:
        if not batch:
            return
        rows = list(batch.values())
        backoff_s = BACKOFF_FIRST_S
        for attempt in range(1, WRITE_ATTEMPTS + 1):
            store = self._connect()
            if store is not None:
                try:
                    store.write(rows)
                except Exception as exc:
                    self.stats.failures += 1
                    log.warning(
                        "call records: write of %d rows failed (attempt %d/%d): %s",
                        len(rows),
                        attempt,
                        WRITE_ATTEMPTS,
                        exc,
                    )
                    self._discard_store()
                else:
                    self.stats.rows_written += len(rows)
                    return
            if attempt < WRITE_ATTEMPTS and not self._closed:
                time.sleep(backoff_s)
                backoff_s = min(backoff_s * 2, BACKOFF_MAX_S)
        self._dropped(len(rows), "the database kept failing")

    def _discard_store(self) -> None:
        """Reconnect on the next attempt: the connection may be what broke."""
        store, self._store = self._store, None
        if store is not None:
            with contextlib.suppress(Exception):  # it is broken already
                store.close()

    def _dropped(self, n: int, why: str) -> None:
        with self._stats_lock:
            self.stats.rows_dropped += n
            now = time.monotonic()
            if now - self._last_drop_log_s < 10.0:  # at most one line per 10 s
                return
            self._last_drop_log_s = now
        log.error(
            "call records: %d row(s) dropped (%s); %d dropped in total",
            n,
            why,
            self.stats.rows_dropped,
        )
