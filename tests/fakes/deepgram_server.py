"""A fake Deepgram on loopback: Nova-3, Flux and Aura over real WebSockets, straight or as
Cloudflare AI Gateway serves them from Workers AI. The code lives in
:mod:`tests.fakes.deepgram`; this module is its front door and its command line.

In a test::

    fake = FakeDeepgram().start()            # key API_KEY, gateway token CF_TOKEN
    fake.transcripts.extend(["Hello there.", "Goodbye."])   # one per stretch of speech
    fake.tuning.flux_eager_ms = 100          # timing in audio time (see Tuning)
    fake.first_result_delay_s["aura"] = 0.1  # before each flush's first audio
    fake.fail("nova", Fault.http(429))       # or Fault.drop(n), Fault.stall(n), Fault.close(n)
    url = f"{fake.ws}/v1/listen?model=nova-3&encoding=mulaw&sample_rate=8000"
    url = f"{fake.gateway_url()}?model=@cf/deepgram/flux&encoding=linear16&sample_rate=16000"
    ...
    conn = fake.to("nova")[0]                # a Connection: query, headers (redacted),
    conn.audio, conn.of_type("KeepAlive")    # every client message with its time,
    conn.events("Results")                   # everything the fake sent, how it closed
    fake.stop()

The fake does not recognise speech: it finds voiced 20 ms frames by their energy and answers
with the scripted transcripts, timing every event by the audio it received (sample counts),
so audio may be streamed faster than real time.

For a benchmark, in its own process until killed::

    python -m tests.fakes.deepgram_server --port 8766 --eager-ms 100 --eot-ms 200 \\
        --first-result-delay-ms aura=100
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import cast

import uvicorn

from tests.fakes.deepgram import (
    API_KEY,
    CF_TOKEN,
    FakeDeepgram,
    Tuning,
)
from tests.fakes.deepgram.records import Endpoint

ENDPOINTS: tuple[Endpoint, ...] = ("nova", "flux", "aura")


def build(args: argparse.Namespace) -> FakeDeepgram:
    """A fake configured from the command line (not started)."""
    tuning = Tuning(
        flux_eager_ms=args.eager_ms,
        flux_eot_ms=args.eot_ms,
        flux_update_ms=args.update_ms,
        nova_interim_ms=args.interim_ms,
        idle_timeout_s=args.idle_timeout_s,
    )
    fake = FakeDeepgram(args.api_key or None, args.cf_token or None, tuning)
    if args.transcript:
        fake.default_transcript = args.transcript
    for item in args.first_result_delay_ms:
        name, _, ms = item.partition("=")
        if name not in ENDPOINTS or not ms:
            raise SystemExit(f"--first-result-delay-ms wants nova|flux|aura=MS, not {item!r}")
        fake.first_result_delay_s[cast(Endpoint, name)] = float(ms) / 1000
    return fake


def main(argv: Sequence[str] | None = None) -> None:
    defaults = Tuning()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--api-key", default=API_KEY, help="'' accepts any Deepgram key")
    parser.add_argument("--cf-token", default=CF_TOKEN, help="'' accepts any gateway token")
    parser.add_argument("--transcript", default="", help="what every stretch of speech said")
    parser.add_argument("--eager-ms", type=int, default=defaults.flux_eager_ms)
    parser.add_argument("--eot-ms", type=int, default=defaults.flux_eot_ms)
    parser.add_argument("--update-ms", type=int, default=defaults.flux_update_ms)
    parser.add_argument("--interim-ms", type=int, default=defaults.nova_interim_ms)
    parser.add_argument("--idle-timeout-s", type=float, default=defaults.idle_timeout_s)
    parser.add_argument(
        "--first-result-delay-ms",
        action="append",
        default=[],
        metavar="ENDPOINT=MS",
        help="delay before each first answer (nova, flux) or first audio (aura)",
    )
    args = parser.parse_args(argv)
    fake = build(args)
    print(f"fake Deepgram on ws://{args.host}:{args.port}", flush=True)
    config = uvicorn.Config(
        fake.app,
        host=args.host,
        port=args.port,
        ws="websockets-sansio",
        lifespan="off",
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=2,
    )
    uvicorn.Server(config).run()
    sys.stdout.flush()


if __name__ == "__main__":
    main()
