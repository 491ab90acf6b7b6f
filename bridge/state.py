"""What every request handler may reach: the bridge's state, hung on ``app.state.bridge``.

It lives in a module of its own, below both the app factory (which builds it) and the route
handlers (which read it), so neither imports the other.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from starlette.requests import HTTPConnection

from bridge import __version__
from bridge.call_records.service import CallRecords
from bridge.ops.admission import Admission
from bridge.ops.drain import Drainer
from bridge.ops.metrics import Metrics
from bridge.server.handshakes import HandshakeGuard
from bridge.settings import Settings
from bridge.switchboard import Switchboard
from bridge.toys.gate import DeviceGate
from bridge.twilio.signatures import TwilioSignatures
from pipeline.agents.persona import Persona, PersonaBook
from pipeline.observers import Observers
from transports.esp32.port import Esp32Options
from transports.twilio.port import TwilioOptions


@dataclass
class BridgeState:
    settings: Settings
    switchboard: Switchboard
    #: every session hook fans out through here; metrics and call records add themselves
    observers: Observers
    twilio: TwilioOptions
    esp32: Esp32Options
    devices: DeviceGate
    #: X-Twilio-Signature checks (disabled without TWILIO_AUTH_TOKEN)
    signatures: TwilioSignatures
    admission: Admission
    metrics: Metrics
    drainer: Drainer
    #: call records and recordings; flushed at shutdown
    records: CallRecords
    #: the deadline and bound on unfinished request headers and upgrades (bridge/server)
    handshakes: HandshakeGuard
    #: what is insecure about this configuration; logged at start-up and shown by /healthz
    warnings: list[str] = field(default_factory=list)
    #: the personas file, read once: Twilio's callbacks find a transfer's target in it again
    personas: PersonaBook = field(default_factory=lambda: PersonaBook(Persona()))
    started_at: float = field(default_factory=time.monotonic)
    version: str = __version__


def state_of(conn: HTTPConnection) -> BridgeState:
    state: BridgeState = conn.app.state.bridge
    return state


def client_ip(conn: HTTPConnection) -> str:
    """The client's address as admission sees it (a trusted proxy's word, or the peer)."""
    peer = conn.client.host if conn.client else ""
    return state_of(conn).admission.client_address(peer, conn.headers)
