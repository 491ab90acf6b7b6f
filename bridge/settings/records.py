"""Call records and recordings."""

from __future__ import annotations

from dataclasses import dataclass

from bridge.settings.fields import setting


@dataclass(frozen=True)
class RecordsSettings:
    records_url: str = setting(
        "BRIDGE_RECORDS_URL",
        "sqlite:///data/calls.db",
        "Where call records go: `sqlite:///FILE` (relative; `sqlite:////abs/path`), "
        "`postgresql://user:pass@host/db` for several instances, or `none`.",
    )
    recordings_dir: str = setting(
        "BRIDGE_RECORDINGS_DIR",
        "",
        "Directory for one stereo WAV per call (caller left, agent right). Empty: no recordings.",
    )
