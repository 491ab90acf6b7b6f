"""The toys' way in: ``/ws/esp32`` (the Elato device protocol)."""

from __future__ import annotations

from starlette.websockets import WebSocket

from bridge.ops.admission import RATE_LIMITED
from bridge.refusals import RETRY_AFTER_S, deny
from bridge.state import BridgeState, client_ip, state_of
from transports.esp32.adapter import serve_esp32

ESP32_PATH = "/ws/esp32"


async def esp32_ws(ws: WebSocket) -> None:
    """A toy. Every refusal is an HTTP answer before the 101 (429 rate, 503 capacity/drain),
    never accept-then-close: the device retries every second forever (spec C9, C10), a 503
    costs no TLS-to-WebSocket upgrade, no ``auth`` frame and no session, and the firmware
    treats both the same way (it reconnects a second later)."""
    state = state_of(ws)
    ip = client_ip(ws)
    refusal = state.admission.refusal("esp32", ip)
    if refusal is not None:
        state.metrics.rejected("esp32", refusal)
        status = 429 if refusal == RATE_LIMITED else 503
        await deny(ws, status, "too many connections" if status == 429 else "busy", RETRY_AFTER_S)
        return
    with state.admission.slot("esp32"):
        await _serve_toy(ws, state, ip)


async def _serve_toy(ws: WebSocket, state: BridgeState, ip: str) -> None:
    gate = state.devices
    device = await gate.admit(ws, ip)
    if device is None:
        return
    failed = False

    def agent_failed() -> None:
        nonlocal failed
        failed = True
        gate.backoff.failure(device.identity)

    await serve_esp32(
        ws,
        device,
        state.switchboard,
        state.esp32,
        gate.subprotocol(ws),
        on_agent_failure=agent_failed,
    )
    if not failed:
        gate.backoff.success(device.identity)
