"""``bridge serve``: run the voice bridge under uvicorn, draining calls on shutdown."""

from __future__ import annotations

import argparse
import sys

from bridge.cli.common import SubParsers, settings_or_none
from bridge.settings import SettingsError
from pipeline.agents.persona import PersonaError


def register(sub: SubParsers) -> None:
    serve = sub.add_parser("serve", help="run the voice bridge")
    serve.add_argument("--host", help="listen address (default BRIDGE_HOST)")
    serve.add_argument("--port", type=int, help="listen port (default BRIDGE_PORT)")
    serve.set_defaults(func=serve_command)


def serve_command(args: argparse.Namespace) -> int:
    import uvicorn

    from bridge.app import create_app
    from bridge.ops import heap, logs
    from bridge.server.draining import DrainingServer

    try:  # checks the installed uvicorn against what our protocol subclasses rely on
        from bridge.server.config import uvicorn_options
    except RuntimeError as exc:
        print(f"bridge serve: {exc}", file=sys.stderr)
        return 2
    settings = settings_or_none()
    if settings is None:
        return 2
    host = args.host or settings.host
    port = args.port or settings.port
    logs.configure(settings.log_level, settings.log_format)
    try:
        app = create_app(settings)
    except (SettingsError, PersonaError) as exc:  # e.g. a missing API key, a bad personas file
        print(exc, file=sys.stderr)
        return 2
    heap.settle()  # after the app and its agent are built: the objects that live forever
    config = uvicorn.Config(app, host=host, port=port, **uvicorn_options(settings))
    drainer = app.state.bridge.drainer
    server = DrainingServer(config, lambda: drainer.drain(settings.drain_timeout_s))
    server.run()
    return 0
