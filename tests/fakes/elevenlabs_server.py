"""The fake ElevenLabs text-to-speech (implementation in ``tests/fakes/elevenlabs/``).

Tests::

    fake = FakeElevenLabs(pace=20).start()        # ws://127.0.0.1:<port>, in a thread
    url = fake.url("voice1", "multi-stream-input", model_id="eleven_flash_v2_5",
                   output_format="ulaw_8000")    # connect with the header xi-api-key: API_KEY
    fake.fail("any", Fault.http(429))           # the next handshake is refused
    fake.first_audio_delay_s = 0.1              # before the first audio of each generation
    fake.last.keepalives("turn-1")              # what the client sent, with times
    fake.stop()

Benchmarks run it in a process of its own, until killed::

    python -m tests.fakes.elevenlabs_server --port 9000 --first-audio-delay-ms 100
"""

from __future__ import annotations

import argparse

from tests.fakes.elevenlabs import (
    API_KEY,
    FakeElevenLabs,
)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--api-key", default=API_KEY)
    parser.add_argument("--first-audio-delay-ms", type=float, default=0.0)
    parser.add_argument("--pace", type=float, default=4.0, help="times faster than real time")
    parser.add_argument("--inactivity-timeout-s", type=float, default=20.0)
    args = parser.parse_args(argv)
    fake = FakeElevenLabs(
        args.api_key,
        pace=args.pace,
        first_audio_delay_s=args.first_audio_delay_ms / 1000,
        inactivity_timeout_s=args.inactivity_timeout_s,
    )
    fake.serve(args.host, args.port)


if __name__ == "__main__":
    main()
