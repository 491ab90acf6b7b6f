# The two commands the README promises:
#   make run   - set everything up and run the service on 0.0.0.0:8080
#   make test  - set everything up and run every check CI runs
.PHONY: setup run test lint typecheck pytest firmware-test bench docs

setup:
	scripts/setup.sh dev,local

run: setup
	.venv/bin/bridge serve

lint: setup
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .

typecheck: setup
	.venv/bin/mypy

# The suite spends 90% of its time waiting on real-time audio (1 min 45 s of CPU in 18 min of
# wall time, serially), so six workers on two cores cut it to under 4 minutes.
PYTEST_WORKERS ?= 6

# PostgreSQL tests need a server: scripts/postgres.sh provides one (required under CI=true).
pytest: setup
	url=$$(scripts/postgres.sh) || { [ "$${CI:-}" != true ] || exit 1; url=""; }; \
	BRIDGE_TEST_POSTGRES_URL="$$url" .venv/bin/python -m pytest -q -p no:cacheprovider -n $(PYTEST_WORKERS)

firmware-test: setup
	TOY_REQUIRE_E2E=1 firmware/scripts/host-test.sh build/firmware
	TOY_HOST=build/firmware/toy-host .venv/bin/python -m pytest -q -p no:cacheprovider firmware/tests/test_against_bridge.py

test: lint typecheck pytest firmware-test

bench: setup
	.venv/bin/python -m bench.twilio_load

# Regenerate README's settings table after changing bridge/settings.py
docs: setup
	.venv/bin/python scripts/sync_settings_table.py
