"""``python -m bridge.cli`` (how the tests and benchmarks start a server)."""

from __future__ import annotations

import sys

from bridge.cli import main

sys.exit(main())
