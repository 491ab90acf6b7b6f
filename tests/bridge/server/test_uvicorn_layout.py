"""The start-up check of the uvicorn layout our protocol subclasses rely on."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

from bridge.server import wsprotocol
from bridge.server.uvicorn_layout import (
    SUPPORTED_UVICORN,
    assigned_attributes,
    missing_layout,
    require_layout,
    require_uvicorn_version,
    version_tuple,
)

ROOT = Path(__file__).resolve().parents[3]


class _Base:
    def __init__(self) -> None:
        self.queue: list[Any] = []
        self.conn = None

    def data_received(self, data: bytes) -> None:
        pass


class _BrokenStandIn(_Base):
    """What a future uvicorn might look like: ``frames`` renamed, ``receive`` gone."""

    def __init__(self) -> None:
        super().__init__()
        self.fragments: list[bytes] = []
        self.read_paused = False


def test_installed_uvicorn_has_everything_the_subclass_uses() -> None:
    assert (
        missing_layout(WebSocketsSansIOProtocol, wsprotocol.RELIED_ON_METHODS, wsprotocol.RELIED_ON)
        == []
    )
    assert {"frames", "curr_msg_data_type", "read_paused"} <= assigned_attributes(
        WebSocketsSansIOProtocol, "__init__"
    )
    assert "conn" in assigned_attributes(H11Protocol, "__init__")


def test_attributes_are_found_across_the_bases() -> None:
    assert assigned_attributes(_BrokenStandIn, "__init__") == {
        "queue",
        "conn",
        "fragments",
        "read_paused",
    }


def test_a_broken_stand_in_fails_loudly_naming_what_is_missing() -> None:
    with pytest.raises(RuntimeError) as failure:
        require_layout(
            _BrokenStandIn,
            ("data_received", "receive"),
            {"__init__": ("queue", "frames", "read_paused", "curr_msg_data_type")},
            what="bridge/server/wsprotocol.py",
        )
    message = str(failure.value)
    assert "method _BrokenStandIn.receive()" in message
    assert "attribute _BrokenStandIn.frames (set in __init__)" in message
    assert "attribute _BrokenStandIn.curr_msg_data_type (set in __init__)" in message
    assert "data_received" not in message and "read_paused" not in message
    assert f"uvicorn {uvicorn.__version__} is installed" in message
    assert SUPPORTED_UVICORN in message


def test_supported_range_matches_the_pin_in_pyproject() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    pins = [d for d in project["project"]["dependencies"] if d.startswith("uvicorn")]
    assert pins == [f"uvicorn{SUPPORTED_UVICORN}"]


def test_version_parts() -> None:
    assert version_tuple("0.52.1") == (0, 52, 1)
    assert version_tuple("0.55.0rc1") == (0, 55, 0)
    assert version_tuple("1.0.dev3") == (1, 0)


@pytest.mark.parametrize("old", ["0.35.0", "0.50.0", "0.52.0"])
def test_releases_with_broken_denial_responses_are_refused(old: str) -> None:
    with pytest.raises(RuntimeError) as failure:
        require_uvicorn_version(old)
    message = str(failure.value)
    assert f"uvicorn {old} is installed" in message and SUPPORTED_UVICORN in message


def test_supported_releases_start_and_newer_ones_are_warned_about(
    caplog: pytest.LogCaptureFixture,
) -> None:
    require_uvicorn_version("0.52.1")
    require_uvicorn_version("0.55.0")
    assert caplog.records == []
    require_uvicorn_version("0.56.0")
    assert "newer than the newest tested" in caplog.text
