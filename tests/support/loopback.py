"""Where a test server listens: loopback, one port."""

from __future__ import annotations


class Loopback:
    """``http`` and ``ws`` base URLs of a server on 127.0.0.1:``port``."""

    port: int

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws(self) -> str:
        return f"ws://127.0.0.1:{self.port}"
