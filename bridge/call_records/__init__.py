"""Call records: every phone call and toy session, written to SQL as the call goes.

* :mod:`.model` — the rows (one per call, per turn, per tool call; what Twilio's callbacks
  say of a call), as plain dataclasses.
* :mod:`.url` — the one URL setting that picks the backend (SQLite, PostgreSQL or none).
* :mod:`.sql` — the portable schema (which also upgrades an older database in place) and
  the statements both backends share.
* :mod:`.sqlite`, :mod:`.postgres` — the two backends.
* :mod:`.writer` — one writer thread fed by a bounded queue, so the event loop never waits
  on the database and a database failure never reaches a call.
* :mod:`.observer` — the :class:`~pipeline.session.SessionObserver` that turns session hooks
  into rows.
* :mod:`.recordings` — the observer that records each call to a stereo WAV file.
"""
