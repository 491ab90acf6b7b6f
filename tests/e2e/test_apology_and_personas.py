"""A failed agent turn is never dead air on a phone; personas are chosen per route; a broken
observer never breaks a call."""

from __future__ import annotations

from pathlib import Path

import pytest

from bridge.settings import Settings
from bridge.wiring import persona_book
from pipeline.agents.base import CallInfo
from pipeline.agents.persona import Persona, PersonaBook, PersonaError
from pipeline.apology import apology_audio
from pipeline.audio import PCM16_16K, ULAW_8K
from tests.fakes.agents import Factory, ToneAgent
from tests.support.serverthread import MakeServer
from tests.support.twilio_calls import open_call, say_and_listen


class FailOnceAgent(ToneAgent):
    """The first answer fails (a provider outage); later answers work."""

    async def respond(self, turn_id: int, utterance: bytes, out: object) -> None:  # type: ignore[override]
        if not self.utterances:
            self.utterances.append(utterance)
            raise TimeoutError("provider timed out after retries")
        await super().respond(turn_id, utterance, out)  # type: ignore[arg-type]


async def test_a_failed_turn_plays_the_apology_and_the_call_stays_up(
    make_server: MakeServer, hello_ulaw: bytes
) -> None:
    server = make_server(Factory(lambda call: FailOnceAgent(call, reply_ms=1000)))
    peer = await open_call(server)
    await say_and_listen(peer, hello_ulaw, quiet_s=1.0)
    apology_ms = ULAW_8K.duration_ms(len(apology_audio(ULAW_8K)))
    heard_ms = ULAW_8K.duration_ms(len(peer.played))
    assert apology_ms > 3000 and abs(heard_ms - apology_ms) < 200, (heard_ms, apology_ms)
    before = len(peer.played)
    await say_and_listen(peer, hello_ulaw, quiet_s=1.0)  # the next turn is answered normally
    reply_ms = ULAW_8K.duration_ms(len(peer.played) - before)
    assert 900 < reply_ms < 1200, reply_ms
    assert not peer.is_closed
    await peer.close()


PERSONAS = """
[personas.pirate]
system_prompt = "You are a pirate."
first_message = "Ahoy!"
voice = "ash"

[personas.quiet]
first_message = ""

[numbers]
"+15551230001" = "pirate"

[devices]
"toy-7" = "quiet"
"""


def call(callee: str = "", **params: str) -> CallInfo:
    return CallInfo("c1", "twilio", PCM16_16K, caller="+1***", callee=callee, params=params)


def test_personas_are_chosen_by_parameter_then_number_then_device(tmp_path: Path) -> None:
    path = tmp_path / "personas.toml"
    path.write_text(PERSONAS)
    settings = Settings.from_env(
        {"BRIDGE_PERSONAS_FILE": str(path), "ELATO_OPENAI_SYSTEM_PROMPT": "Be brief."},
        dotenv_path=None,
    )
    book = persona_book(settings)
    assert book.for_call(call("+15551230001")).voice == "ash"
    assert book.for_call(call("+15559999999")) == book.default
    assert book.default.system_prompt == "Be brief."  # Elato's variable names still work
    assert book.for_call(call("+15559999999", persona="pirate")).first_message == "Ahoy!"
    toy = CallInfo("c2", "esp32", PCM16_16K, caller="toy-7", params={"sub": "toy-7"})
    quiet = book.for_call(toy)
    # fields a persona leaves out are inherited from the default persona
    assert quiet.first_message == "" and quiet.system_prompt == "Be brief."
    assert book.for_call(call(persona="nobody")) == book.default


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("[numbers]\n'+1' = 'ghost'\n", "unknown persona 'ghost'"),
        ("[personas.x]\ntemperature = 3\n", "unknown keys"),
        ("[personas.x]\nvoice = 3\n", "must be a string"),
        ("personas = 3\n", "must be a table"),
        ("[personas\n", "personas file"),
    ],
)
def test_a_bad_personas_file_fails_at_start_up(tmp_path: Path, text: str, problem: str) -> None:
    path = tmp_path / "personas.toml"
    path.write_text(text)
    with pytest.raises(PersonaError, match=problem):
        PersonaBook.load(path, Persona())


async def test_twiml_passes_the_persona_of_the_webhook_url(make_server: MakeServer) -> None:
    import httpx

    server = make_server()
    async with httpx.AsyncClient() as client:
        response = await client.post(
            f"{server.http}/twiml?persona=pirate", data={"From": "+15550001", "To": "+15550002"}
        )
    assert '<Parameter name="persona" value="pirate"' in response.text
