"""The uvicorn releases our protocol subclasses are written against, checked at start-up.

``bridge/server/wsprotocol.py`` and ``bridge/server/httpprotocol.py`` subclass private uvicorn
classes and read their instance attributes (``frames``, ``read_paused``, ``conn``, ...).
Nothing in uvicorn promises that layout, so a release that renames one would not fail at
import but mid-call, as an ``AttributeError`` in a socket callback. Instead, each subclass
module states what it relies on and :func:`require_layout` checks it when the module is
imported: a missing method, or an attribute no longer assigned where we expect it, stops
``bridge serve`` at once with a message naming it, the installed uvicorn and the range we
support.

The same goes for the two pieces of websockets' sans-I/O connection read directly (its
``state`` and its reader's ``buffer``).

Attributes are found by reading the bytecode of the method that assigns them (``STORE_ATTR``
in ``__init__`` across the class's bases), so nothing is instantiated and no source is needed.

The range. ``WebSocketsSansIOProtocol`` exists since uvicorn 0.35.0, but its ``frames`` and
``curr_msg_data_type`` (the incoming-message state our fast path fills) only since 0.50.0;
from 0.50.0 to 0.55.0 everything the two subclass modules list is unchanged (every wheel in
between was checked). The layout alone is not enough, though: until 0.52.1 uvicorn sends a
denial response (HTTP 401/429/503 before the 101, which toys and rate-limited upgrades get)
with ``Content-Length`` twice, and clients reject it; 0.52.1 also made a server-side close
wait for the peer's close frame, which the frame splitter hands to websockets. So 0.52.1 is
the oldest release :func:`require_uvicorn_version` lets start, and 0.55.0 the newest tested
(a newer one starts, with a warning, if the layout is intact). Keep
:data:`SUPPORTED_UVICORN` equal to the pin in pyproject.toml (a test checks it).
"""

from __future__ import annotations

import dis
import logging
from collections.abc import Iterable, Mapping
from importlib import import_module
from importlib.metadata import PackageNotFoundError, version

SUPPORTED_UVICORN = ">=0.52.1,<0.56"
OLDEST_UVICORN = (0, 52, 1)
NEWEST_TESTED_UVICORN = (0, 55)
#: the versions each package's layout is checked against (websockets: the pin in pyproject.toml)
SUPPORTED = {"uvicorn": SUPPORTED_UVICORN, "websockets": ">=13"}

log = logging.getLogger("bridge.server.uvicorn_layout")


def installed(package: str) -> str:
    """The version of ``package`` that is imported (its ``__version__``), else as installed."""
    try:
        return str(import_module(package).__version__)
    except (ImportError, AttributeError):
        pass
    try:
        return version(package)
    except PackageNotFoundError:
        return "(not installed)"


def unsupported(what: str, problems: Iterable[str], package: str = "uvicorn") -> RuntimeError:
    """The error that stops start-up: what is missing, what is installed, what would work."""
    listed = "; ".join(problems)
    supported = SUPPORTED[package]
    return RuntimeError(
        f"{package} {installed(package)} is installed, but {what} needs: {listed}. "
        f"Supported {package} versions: {supported} (pip install '{package}{supported}')."
    )


def assigned_attributes(cls: type, method: str) -> set[str]:
    """Names ``method`` (as defined on ``cls`` and each of its bases) assigns to ``self.…``."""
    names: set[str] = set()
    for klass in cls.__mro__:
        function = klass.__dict__.get(method)
        code = getattr(function, "__code__", None)
        if code is None:
            continue
        names.update(
            str(ins.argval) for ins in dis.get_instructions(code) if ins.opname == "STORE_ATTR"
        )
    return names


def missing_layout(
    cls: type, methods: Iterable[str], attributes: Mapping[str, Iterable[str]]
) -> list[str]:
    """What of the expected layout ``cls`` lacks, described for an operator (empty: none).

    ``attributes`` maps a method (usually ``__init__``) to the instance attributes it must
    assign.
    """
    name = cls.__qualname__
    problems = [
        f"method {name}.{method}()"
        for method in methods
        if not callable(getattr(cls, method, None))
    ]
    for method, expected in attributes.items():
        assigned = assigned_attributes(cls, method)
        problems += [
            f"attribute {name}.{attr} (set in {method})"
            for attr in expected
            if attr not in assigned
        ]
    return problems


def require_layout(
    cls: type,
    methods: Iterable[str],
    attributes: Mapping[str, Iterable[str]],
    *,
    what: str,
    package: str = "uvicorn",
) -> None:
    """Raise :func:`unsupported` unless ``cls`` (from ``package``) has the layout ``what``
    relies on."""
    problems = missing_layout(cls, methods, attributes)
    if problems:
        raise unsupported(what, problems, package)


def version_tuple(text: str) -> tuple[int, ...]:
    """The leading numeric parts of a version: ``"0.52.1rc1"`` -> ``(0, 52, 1)``."""
    parts: list[int] = []
    for piece in text.split("."):
        digits = ""
        for char in piece:
            if not char.isdigit():
                break
            digits += char
        if not digits:
            break
        parts.append(int(digits))
        if len(digits) < len(piece):
            break
    return tuple(parts)


def require_uvicorn_version(current: str | None = None) -> None:
    """Refuse uvicorn releases older than :data:`OLDEST_UVICORN` (see the module doc); warn
    about ones newer than the newest tested."""
    current = current or installed("uvicorn")
    found = version_tuple(current)
    if found < OLDEST_UVICORN:
        oldest = ".".join(map(str, OLDEST_UVICORN))
        raise RuntimeError(
            f"uvicorn {current} is installed, but the bridge needs uvicorn {oldest} or later: "
            "before it, a WebSocket denial response (HTTP 401/429/503 before the 101) is sent "
            "with Content-Length twice and clients reject it. Supported uvicorn versions: "
            f"{SUPPORTED_UVICORN} (pip install 'uvicorn{SUPPORTED_UVICORN}')."
        )
    if found[:2] > NEWEST_TESTED_UVICORN:
        log.warning(
            "uvicorn %s is newer than the newest tested with the bridge (supported: %s)",
            current,
            SUPPORTED_UVICORN,
        )
