"""Shared pieces of the operations tests: scraping /metrics, reading TwiML, echo servers."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import httpx
from prometheus_client.parser import text_string_to_metric_families

from pipeline.agents.echo import EchoAgent
from tests.fakes.agents import Factory


def echo_factory() -> Factory:
    return Factory(lambda call: EchoAgent(call.native_in))


async def scrape(base_url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """GET /metrics and parse it: {(sample name, sorted labels): value}."""
    async with httpx.AsyncClient() as client:
        response = await client.get(f"{base_url}/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def sample(
    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str
) -> float:
    """One sample's value; 0.0 when the series does not exist (yet)."""
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


async def post_webhook(base_url: str, headers: dict[str, str] | None = None) -> ET.Element:
    """POST /twiml like Twilio and return the parsed TwiML."""
    form = {"CallSid": "CA" + "0" * 32, "From": "+15550001111", "To": "+15550002222"}
    async with httpx.AsyncClient() as client:
        response = await client.post(f"{base_url}/twiml", data=form, headers=headers or {})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/xml")
    return ET.fromstring(response.text)


def is_busy(twiml: ET.Element) -> bool:
    """The spoken fallback: <Say> then <Hangup/>, and no stream."""
    return (
        [child.tag for child in twiml] == ["Say", "Hangup"]
        and twiml.find("./Connect/Stream") is None
        and "busy" in (twiml.findtext("Say") or "")
    )


def connects(twiml: ET.Element) -> bool:
    return twiml.find("./Connect/Stream") is not None
