"""Handing a live phone call to a person: the REST side of the ``transfer_call`` tool.

A Media Stream cannot dial anyone, so a transfer replaces the call's TwiML through the REST
API (``calls(sid).update(twiml=...)``) with a ``<Dial>`` to the target; Twilio then ends the
``<Connect><Stream>`` (the session sees the stream stop) and rings the person. What happens
when that leg ends is decided by the ``<Dial action>``, ``/twilio/dial-result``
(bridge/twilio/callbacks.py), whose query names the persona and the target so that route can
find the target's ``no_answer`` choice again without any state kept here.

That is why a transfer needs both REST credentials and ``BRIDGE_PUBLIC_HOST``: the action URL
must be absolute and must be the URL Twilio signs, which only a configured public host makes
certain. Without them :func:`transferrer` gives None and the port refuses every transfer
(``TransferFailed``), and :func:`transfers_possible` tells the agent wiring not to offer the
tool at all.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from twilio.base.exceptions import TwilioRestException

from bridge.settings import Settings
from bridge.twilio import twiml
from bridge.twilio.paths import DIAL_RESULT_PATH, public_url
from bridge.twilio.rest import TwilioRest, is_already_ended
from pipeline.tools.base import TransferFailed, TransferTarget
from transports.base import mask_phone
from transports.twilio.port import CallTransferrer

log = logging.getLogger("bridge.twilio.transfer")


def transfers_possible(settings: Settings) -> bool:
    """True when a call can be handed to a person: REST credentials and a public host.

    The agent wiring asks this before offering the ``transfer_call`` tool, so a model is never
    shown a tool that can only fail.
    """
    return bool(settings.twilio_rest_configured and settings.public_host)


def transferrer(settings: Settings) -> CallTransferrer | None:
    """The :data:`~transports.twilio.port.CallTransferrer` for ``TwilioOptions``, or None
    when :func:`transfers_possible` is false."""
    if not transfers_possible(settings):
        return None
    return RestTransferrer(TwilioRest.from_settings(settings), settings.public_host)


def dial_action_url(host: str, persona: str, target: str) -> str:
    """The ``<Dial action>``: ``/twilio/dial-result`` naming the persona and the target.

    ``persona`` may be empty (the call's persona came from its number, not a parameter): the
    route then finds it from the call's ``To`` the way the session did.
    """
    query = {"persona": persona, "target": target} if persona else {"target": target}
    return public_url(host, DIAL_RESULT_PATH, query)


def describe(target: TransferTarget) -> str:
    """For logs: the target's name and where it rings, a phone number masked like callers'."""
    if target.is_sip:
        # the user part of a SIP URI can be a phone number too: keep only the host
        scheme, _, rest = target.to.partition(":")
        return f"{target.name} ({scheme}:…@{rest.rpartition('@')[2]})"
    return f"{target.name} ({mask_phone(target.to)})"


class RestTransferrer:
    """Replaces a live call's TwiML with a ``<Dial>`` to the target, through the REST API."""

    def __init__(self, rest: TwilioRest, public_host: str) -> None:
        self._rest = rest
        self._host = public_host

    def twiml_for(self, target: TransferTarget, params: Mapping[str, str]) -> str:
        """The ``<Dial>`` this transfer sends (``params``: the stream's from, to, persona)."""
        action = dial_action_url(self._host, params.get("persona", ""), target.name)
        return twiml.dial(target, action)

    async def __call__(
        self, call_sid: str, target: TransferTarget, params: Mapping[str, str]
    ) -> None:
        """Start the transfer; raises :class:`TransferFailed` with a reason the agent may
        repeat (no credentials, URLs or numbers in it) when Twilio did not take it."""
        extra = {"call_id": call_sid, "transport": "twilio"}
        document = self.twiml_for(target, params)
        try:
            await self._rest.update_twiml(call_sid, document)
        except TwilioRestException as exc:
            log.error(
                "transfer to %s failed: HTTP %s, Twilio error %s",
                describe(target),
                exc.status,
                exc.code,
                extra=extra,
            )
            if is_already_ended(exc):
                raise TransferFailed("the call is already over") from exc
            raise TransferFailed(f"Twilio refused the transfer (error {exc.code})") from exc
        except TimeoutError as exc:
            log.error("transfer to %s failed: Twilio did not answer", describe(target), extra=extra)
            raise TransferFailed("Twilio did not answer in time") from exc
        except Exception as exc:
            log.error("transfer to %s failed: %r", describe(target), exc, extra=extra)
            raise TransferFailed("Twilio could not be reached") from exc
        log.info(
            "call handed to %s (ring %ss, no answer: %s)",
            describe(target),
            target.ring_timeout_s,
            target.no_answer,
            extra=extra,
        )
