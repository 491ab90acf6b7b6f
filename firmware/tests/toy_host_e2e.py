"""End-to-end tests: the toy-host binary against the scripted fake server.

Run by ctest (test `toy_host_e2e`) or by hand:
    python tests/toy_host_e2e.py --toy-host build/toy-host [-k interrupt] [-v]

Exit status: 0 all passed, 1 a failure, 77 skipped (no `websockets` or no
libopus), which ctest reports as "Skipped". Loopback only.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import math
import os
import struct
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from typing import Any

SKIP = 77  # ctest's SKIP_RETURN_CODE for this test
MIC_RATE_HZ = 16000
TOKEN = "e2e-token"
MAC = "24:0A:C4:12:34:56"

try:
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import fake_server as fs

    fs.OpusEncoder.lib()
except (ImportError, OSError) as exc:  # no websockets, or no libopus
    print(f"SKIP: {exc}")
    # TOY_REQUIRE_E2E=1 (e.g. in CI) makes a missing dependency a failure.
    sys.exit(1 if os.environ.get("TOY_REQUIRE_E2E") == "1" else SKIP)


def write_mic_file(path: str, tone_ms: int, freq_hz: float = 300.0) -> None:
    """A short 'utterance': a tone; toy-host appends silence by itself."""
    n = MIC_RATE_HZ * tone_ms // 1000
    samples = [int(6000 * math.sin(2 * math.pi * freq_hz * i / MIC_RATE_HZ)) for i in range(n)]
    with open(path, "wb") as f:
        f.write(struct.pack(f"<{n}h", *samples))


class Harness:
    def __init__(self, toy_host: str, verbose: bool) -> None:
        self.toy_host = toy_host
        self.verbose = verbose
        self.tmp = tempfile.mkdtemp(prefix="toy-host-e2e-")
        self.last_summary = ""
        self.mic = os.path.join(self.tmp, "mic.raw")
        write_mic_file(self.mic, tone_ms=800)

    async def run(
        self, scenario: fs.Scenario, args: list[str], timeout_s: float = 60
    ) -> tuple[int, dict[str, Any], fs.FakeServer, str]:
        server = fs.FakeServer(scenario)
        port = await server.start(0)
        out = os.path.join(self.tmp, f"heard-{time.monotonic_ns()}.raw")
        url = f"ws://127.0.0.1:{port}/ws/esp32"
        cmd = [self.toy_host, "--url", url, "--token", TOKEN, "--mac", MAC]
        cmd += ["--mic", self.mic, "--out", out, "--seed", "1", *args]
        if self.verbose:
            cmd.append("--verbose")
            print("    $", " ".join(cmd))
        proc = await asyncio.create_subprocess_exec(
            *cmd, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
        try:
            stdout, stderr = await asyncio.wait_for(proc.communicate(), timeout_s)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise AssertionError("toy-host did not finish in time") from None
        finally:
            await server.stop()
        if self.verbose:
            sys.stdout.write(stderr.decode(errors="replace"))
        lines = stdout.decode().strip().splitlines()
        assert len(lines) == 1, f"expected one summary line, got {lines!r}"
        summary = json.loads(lines[0])
        self.last_summary = lines[0]
        if self.verbose:
            print("    summary:", lines[0])
        return proc.returncode, summary, server, out


def check(cond: bool, what: str) -> None:
    if not cond:
        raise AssertionError(what)


def check_headers(server: fs.FakeServer) -> None:
    h = server.sessions[0].headers
    check(
        h.get("authorization") == f"Bearer {TOKEN}",
        f"Authorization header: {h.get('authorization')}",
    )
    check(h.get("x-device-mac") == MAC, "X-Device-Mac header")
    check(h.get("x-wifi-rssi") == "-55", "X-Wifi-Rssi header")
    check(h.get("sec-websocket-protocol") == "arduino", "subprotocol offered")
    check(h.get("origin") == "file://", "Origin header")
    check("sec-websocket-extensions" not in h, "no extension offered (spec C3)")
    check(server.sessions[0].subprotocol == "arduino", "subprotocol negotiated")


def check_upstream(log: fs.SessionLog, turns: int) -> None:
    sizes = {size for _, _, size in log.upstream_messages}
    check(sizes <= {1024}, f"upstream message sizes {sizes}")
    phases = [phase for _, phase, _ in log.upstream_messages]
    check("responding" not in phases, "no upstream while the server was responding")
    check("open" not in phases, "no upstream before the greeting ended")
    early = [t for t, phase, _ in log.upstream_messages if phase == "hold"]
    check(not early, f"upstream during the 1000 ms hold: {early[:3]}")
    check(len(log.upstream_by_turn) >= turns, "upstream for every turn")
    for i in range(turns):
        audio = bytes(log.upstream_by_turn[i])
        speech = fs.rms_s16le(audio[: 16000 * 2 * 7 // 10])  # first 0.7 s: the tone
        tail = fs.rms_s16le(audio[16000 * 2 * 9 // 10 :])  # after 0.9 s: silence
        check(speech > 2000, f"turn {i}: mic tone reached the server (rms {speech:.0f})")
        check(tail < 10, f"turn {i}: silence after the utterance (rms {tail:.0f})")


async def test_turns(h: Harness) -> None:
    scenario = fs.Scenario(token=TOKEN)
    code, s, server, out = await h.run(scenario, ["--turns", "2", "--timeout-s", "40"])
    check(code == 0, f"exit status {code}")
    check(s["ok"] and s["reason"] == "done", f"reason {s['reason']}")
    check(s["responses_completed"] == 3 and s["turns_closed"] == 3, "greeting + 2 turns")
    check(s["errors"] == 0, f"errors {s['errors']}")
    check(s["messages"]["auth"] == 1 and s["messages"]["RESPONSE.CREATED"] == 3, "message counts")
    check(s["messages"]["AUDIO.COMMITTED"] == 2, "two commits")
    check(s["packets"] == server.sessions[0].packets_sent, "every packet arrived")
    check(s["packets_played"] == s["packets"] and s["decode_errors"] == 0, "every packet decoded")
    check(
        s["samples_decoded"] == server.sessions[0].samples_sent_48k,
        "decoded duration = sent duration",
    )
    check(s["samples_decoded"] == (5 + 4 + 4) * 5760, "600 ms + 2 x 480 ms, in 120 ms frames")
    check(os.path.getsize(out) == 2 * s["samples_decoded"], "--out holds the decoded PCM")
    check(s["volume"] == 60 and s["pitch"] == 1, "volume from the last COMPLETE, pitch from auth")
    check(s["mic_bytes_sent"] > 0 and s["close_code"] == 1000, "mic sent, normal close")
    check_headers(server)
    check_upstream(server.sessions[0], 2)


async def test_interrupt(h: Harness) -> None:
    scenario = fs.Scenario(token=TOKEN, reply_ms=4000)
    code, s, server, _ = await h.run(scenario, ["--turns", "1", "--interrupt-after-ms", "700"])
    check(code == 0, f"exit status {code}")
    check(s["interrupt_sent"], "interrupt sent")
    end_ms = s["interrupt_audio_end_ms"]
    check(700 <= end_ms <= 800, f"audio_end_ms {end_ms}")
    interrupts = [i for i in server.sessions[0].instructions if i.get("msg") == "INTERRUPT"]
    check(
        len(interrupts) == 1 and interrupts[0]["audio_end_ms"] == end_ms,
        "server got the same audio_end_ms",
    )
    check(s["packets_after_interrupt"] <= 1, "at most one packet in flight after INTERRUPT")
    check(s["responses_completed"] == 2, "the interrupted response was closed by COMPLETE")
    greeting_samples = 5 * 5760
    heard_ms = (s["samples_decoded"] - greeting_samples) * 1000 // 48000
    check(heard_ms < 4000, f"the reply was cut short ({heard_ms} ms decoded)")


async def test_end_session(h: Harness) -> None:
    code, s, server, _ = await h.run(fs.Scenario(token=TOKEN), ["--turns", "1", "--end-session"])
    check(code == 0, f"exit status {code}")
    check(s["reason"] == "session_end" and s["session_end"], f"reason {s['reason']}")
    check(s["end_session_sent"], "END_SESSION sent")
    check(s["final_state"] == "SLEEP", "the device sleeps")
    check(s["close_code"] == 1000, f"close code {s['close_code']}")
    ends = [i for i in server.sessions[0].instructions if i.get("msg") == "END_SESSION"]
    check(len(ends) == 1, "server got END_SESSION once")


async def test_greeting_disabled(h: Harness) -> None:
    code, s, _, _ = await h.run(fs.Scenario(token=TOKEN, greeting_ms=0), ["--turns", "1"])
    check(code == 0, f"exit status {code}")
    check(
        s["turns_closed"] == 2 and s["messages"]["RESPONSE.CREATED"] == 1,
        "COMPLETE alone closes turn 0",
    )


async def test_hostile_server(h: Harness) -> None:
    code, s, server, _ = await h.run(fs.Scenario(token=TOKEN, hostile=True), ["--turns", "1"])
    check(s["ok"], f"the session survived ({s['reason']})")
    check(code == 1, "exit status 1: the server misbehaved")
    check(
        s["messages"]["invalid"] == 3, f"invalid texts {s['messages']['invalid']}"
    )  # hello, [], 2 KB text
    check(
        s["messages"]["unknown"] == 3, f"unknown texts {s['messages']['unknown']}"
    )  # foo, instruction, BOGUS
    check(s["packets_dropped"] == 2, f"misplaced binary dropped ({s['packets_dropped']})")
    check(s["pings_answered"] >= 1 and server.sessions[0].pong_received, "ping answered with pong")
    check(s["responses_completed"] == 2 and s["ws_errors"] == 0, "turns still complete")
    check_upstream(server.sessions[0], 1)


async def test_rejected_with_backoff(h: Harness) -> None:
    code, s, server, _ = await h.run(
        fs.Scenario(token=TOKEN, reject_status=401), ["--max-connects", "3", "--timeout-s", "20"]
    )
    check(code == 1 and s["reason"] == "connect_failed", f"reason {s['reason']}")
    check(s["http_status"] == 401 and s["connects"] == 3, "three 401s")
    t = server.upgrade_attempts
    check(len(t) == 3, f"{len(t)} attempts")
    gaps = [b - a for a, b in itertools.pairwise(t)]
    check(0.45 <= gaps[0] <= 1.2, f"first retry after {gaps[0]:.2f} s (500..1000 ms)")
    check(0.95 <= gaps[1] <= 2.2, f"second retry after {gaps[1]:.2f} s (1000..2000 ms)")


async def test_wrong_token(h: Harness) -> None:
    server_scenario = fs.Scenario(token="another-token")
    code, s, _, _ = await h.run(server_scenario, [])
    check(
        code == 1 and s["http_status"] == 401 and s["reason"] == "connect_failed",
        "401 for a bad token",
    )


async def test_silent_server_times_out(h: Harness) -> None:
    code, s, _, _ = await h.run(
        fs.Scenario(token=TOKEN, silent_after_auth=True), ["--silence-timeout-ms", "1500"]
    )
    check(code == 1 and s["reason"] == "disconnected", f"reason {s['reason']}")
    check(s["timeouts"] == 1 and s["messages"]["auth"] == 1, "greeting timeout fired")
    check(1400 <= s["elapsed_ms"] <= 5000, f"elapsed {s['elapsed_ms']} ms")


TESTS: list[Callable[[Harness], Any]] = [
    test_turns,
    test_interrupt,
    test_end_session,
    test_greeting_disabled,
    test_hostile_server,
    test_rejected_with_backoff,
    test_wrong_token,
    test_silent_server_times_out,
]


async def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--toy-host", required=True)
    parser.add_argument("-k", default="", help="run tests whose name contains this")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args()
    h = Harness(os.path.abspath(args.toy_host), args.verbose)
    passed = failed = 0
    for test in TESTS:
        if args.k not in test.__name__:
            continue
        started = time.monotonic()
        h.last_summary = ""
        try:
            await test(h)
            passed += 1
            print(f"  ok   {test.__name__} ({time.monotonic() - started:.1f} s)", flush=True)
        except Exception:  # a test failure or a crash: report and go on
            failed += 1
            print(f"  FAIL {test.__name__}", flush=True)
            traceback.print_exc()
            print(f"    last toy-host summary: {h.last_summary}", flush=True)
    print(f"{passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
