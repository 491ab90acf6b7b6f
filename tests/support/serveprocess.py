"""The real ``bridge serve`` as a child process, for what only a process shows: signals
(SIGTERM drain, ``kill -9``), exit codes and what survives them."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from bench.server import free_port
from tests.support.loopback import Loopback

ROOT = Path(__file__).resolve().parents[2]


class ServeProcess(Loopback):
    """``python -m bridge.cli serve`` on a free loopback port, logs to a file."""

    def __init__(self, tmp_path: Path, **env: str) -> None:
        self.port = free_port()
        self.cwd = tmp_path  # the default records file lands in tmp_path/data/calls.db
        self.log_path = tmp_path / "bridge.log"
        environ = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "BRIDGE_HOST": "127.0.0.1",
            "BRIDGE_PORT": str(self.port),
            "BRIDGE_AGENT": "echo",
            "BRIDGE_LOG_FORMAT": "json",
            **env,
        }
        self._log = self.log_path.open("w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bridge.cli", "serve"],
            cwd=tmp_path,  # no stray .env
            env=environ,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    async def wait_ready(self, timeout_s: float = 30.0) -> None:
        deadline = time.monotonic() + timeout_s
        async with httpx.AsyncClient() as client:
            while time.monotonic() < deadline:
                assert self.proc.poll() is None, self.log_path.read_text()
                try:
                    if (await client.get(f"{self.http}/health")).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.1)
        raise TimeoutError("bridge serve did not come up")

    def log_entries(self) -> list[dict[str, object]]:
        return [json.loads(line) for line in self.log_path.read_text().splitlines() if line]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        self._log.close()
