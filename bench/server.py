"""Start ``bridge serve`` as a separate process pinned to one core, for benchmarks."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


#: a load generator is one client address opening hundreds of calls: lift the admission limits
UNLIMITED = {
    "BRIDGE_RATE_LIMIT_PER_S": "0",
    "BRIDGE_MAX_CALLS": "100000",
    "BRIDGE_MAX_TWILIO_CALLS": "100000",
    "BRIDGE_MAX_TOY_SESSIONS": "100000",
}


class BenchServer:
    def __init__(self, core: int | set[int], env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        cores = {core} if isinstance(core, int) else core
        full_env = {**os.environ, **UNLIMITED, "BRIDGE_LOG_LEVEL": "WARNING", **(env or {})}
        # a file, not a pipe: a pipe nobody reads fills up, and the server blocks on a log line
        self.log = tempfile.NamedTemporaryFile(prefix="bench-server-", suffix=".log")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bridge.cli",
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
            ],
            cwd=ROOT,
            env=full_env,
            preexec_fn=lambda: os.sched_setaffinity(0, cores),
            stdout=subprocess.DEVNULL,
            stderr=self.log,
        )
        self._wait_ready()

    def log_text(self) -> str:
        """What the server has logged so far (warnings and errors)."""
        with open(self.log.name, errors="replace") as f:
            return f.read()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + 60  # the local agent loads its models first
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(self.log_text() or "exited")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/health", timeout=1):
                    return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("server did not become ready")

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        self.log.close()
