"""``BRIDGE_RECORDS_URL``: which database holds the call records.

* ``sqlite:///data/calls.db`` — a SQLite file, relative to the working directory
  (``sqlite:////var/lib/bridge/calls.db`` for an absolute path). The embedded default.
* ``postgresql://user:pass@host:5432/db`` (or ``postgres://``) — for several instances.
* ``none`` or empty — no call records.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from bridge.settings import SettingsError


class RecordsUrlError(SettingsError):
    """The records URL names no backend we have."""


@dataclass(frozen=True, slots=True)
class RecordsTarget:
    kind: Literal["sqlite", "postgresql"]
    #: the file (sqlite) or the libpq connection URL (postgresql)
    location: str

    def describe(self) -> str:
        """Where the records go, without the password, for logs."""
        if self.kind == "sqlite":
            return f"sqlite file {self.location}"
        from urllib.parse import urlsplit

        parts = urlsplit(self.location)
        return f"postgresql {parts.hostname or 'local socket'}:{parts.port or 5432}{parts.path}"


def parse_records_url(url: str) -> RecordsTarget | None:
    """The backend for ``url``; None when records are off; raises on anything else."""
    url = url.strip()
    if url.lower() in ("", "none", "off"):
        return None
    if url.startswith("sqlite:///"):
        path = url[len("sqlite:///") :]
        if not path or path.endswith("/"):
            raise RecordsUrlError(f"{url!r}: a sqlite URL needs a file name")
        return RecordsTarget("sqlite", str(Path(path)))
    if url.startswith(("postgresql://", "postgres://")):
        return RecordsTarget("postgresql", url)
    raise RecordsUrlError(
        f"{url!r} is not sqlite:///FILE, postgresql://… or none (BRIDGE_RECORDS_URL)"
    )
