"""xiaozhi-esp32 devices' way in: ``/xiaozhi/v1/`` (their WebSocket protocol).

Who may connect is the toys' question, answered by the toys' gate pieces: the failure
limiter first (no crypto), then the toy authenticator (a devices-file token or an HS256 JWT
as ``Authorization: Bearer``; without any credential configured, in development, private
and loopback addresses only), then the per-device backoff after agent failures. The
device's ``Device-Id`` (its MAC) plays the toy's ``X-Device-Mac``: binding and revocation.
A browser client cannot set headers, so the handshake fields may come as query parameters.
Every refusal is an HTTP answer before the 101.
"""

from __future__ import annotations

import logging

from starlette.websockets import WebSocket

from bridge.ops.admission import RATE_LIMITED
from bridge.refusals import RETRY_AFTER_S, deny
from bridge.state import BridgeState, client_ip, state_of
from bridge.toys.credentials import DeviceAuthError, normalize_mac
from transports.xiaozhi.adapter import XiaozhiDevice, serve_xiaozhi
from transports.xiaozhi.handshake import HandshakeError, parse_handshake
from transports.xiaozhi.port import XiaozhiOptions

log = logging.getLogger("bridge.xiaozhi")

XIAOZHI_PATH = "/xiaozhi/v1/"
TRANSPORT = "xiaozhi"


async def xiaozhi_ws(ws: WebSocket) -> None:
    state = state_of(ws)
    ip = client_ip(ws)
    refusal = state.admission.refusal(TRANSPORT, ip)
    if refusal is not None:
        state.metrics.rejected(TRANSPORT, refusal)
        status = 429 if refusal == RATE_LIMITED else 503
        await deny(ws, status, "too many connections" if status == 429 else "busy", RETRY_AFTER_S)
        return
    with state.admission.slot(TRANSPORT):
        device = await _admit(ws, state, ip)
        if device is not None:
            await _serve(ws, state, device)


async def _admit(ws: WebSocket, state: BridgeState, ip: str) -> XiaozhiDevice | None:
    """The device to serve, or None after an HTTP refusal."""
    query = ws.scope.get("query_string", b"").decode("latin-1")
    try:
        handshake = parse_handshake(ws.headers, query)
    except HandshakeError as exc:
        state.metrics.rejected(TRANSPORT, "handshake")
        await deny(ws, exc.status, exc.reason)
        return None
    gate = state.devices
    mac = normalize_mac(handshake.device_id)
    if gate.failures.blocked(ip, mac):
        state.metrics.rejected(TRANSPORT, "blocked")
        await deny(ws, 429, "too many failed attempts")
        return None
    headers = {"x-device-mac": handshake.device_id} if handshake.device_id else {}
    if handshake.authorization is not None:
        headers["authorization"] = handshake.authorization
    try:
        identity = gate.authenticator.authenticate(headers, "", ip)
    except DeviceAuthError as exc:
        gate.failures.record_failure(ip, mac)
        log.warning("xiaozhi device rejected from %s: %s", ip, exc.reason)
        state.metrics.rejected(TRANSPORT, "auth")
        await deny(ws, exc.status, "unauthorized" if exc.status == 401 else exc.reason)
        return None
    gate.failures.record_success(ip, mac)
    wait_s = gate.backoff.blocked_for(identity.session_key)
    if wait_s > 0:
        state.metrics.rejected(TRANSPORT, "backoff")
        await deny(ws, 503, f"agent unavailable, retry in {wait_s:.0f} s")
        return None
    label = identity.sub if identity.mac is None else f"{identity.sub}/{identity.mac}"
    params = {"sub": identity.sub, "token": identity.token_fingerprint}
    if handshake.client_id:
        params["client_id"] = handshake.client_id
    if identity.settings.persona:
        params["persona"] = identity.settings.persona
    return XiaozhiDevice(identity.session_key, label, handshake.protocol_version, params)


async def _serve(ws: WebSocket, state: BridgeState, device: XiaozhiDevice) -> None:
    failed = False
    backoff = state.devices.backoff

    def agent_failed() -> None:
        nonlocal failed
        failed = True
        backoff.failure(device.identity)

    await serve_xiaozhi(ws, device, state.switchboard, _options(state), agent_failed)
    if not failed:
        backoff.success(device.identity)


def _options(state: BridgeState) -> XiaozhiOptions:
    settings = state.settings
    return XiaozhiOptions(
        lead_ms=settings.xiaozhi_lead_ms, opus_complexity=settings.esp32_opus_complexity
    )
