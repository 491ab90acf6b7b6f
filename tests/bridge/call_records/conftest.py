"""Every test here runs against a real SQLite file and a real PostgreSQL schema."""

from __future__ import annotations

from tests.support import records as records_fixtures

postgres_url = records_fixtures.postgres_url
store_url = records_fixtures.store_url
