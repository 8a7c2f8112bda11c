"""The CI PostgreSQL database, one schema per test module, so modules on different xdist workers never share
tables (``.ci/postgres.sh`` starts the server and ``.ci/run`` sets PERSONA_PROXY_TEST_POSTGRES_URL)."""

from __future__ import annotations

import os
from urllib.parse import quote

import pytest

URL = os.environ.get("PERSONA_PROXY_TEST_POSTGRES_URL")


def postgres_schema(name: str) -> str:
    """A URL whose connections use the schema ``name``, emptied first (skips without a test database)."""
    if not URL:
        pytest.skip("PERSONA_PROXY_TEST_POSTGRES_URL is not set")
    import psycopg

    with psycopg.connect(URL, autocommit=True) as db:
        db.execute(f"DROP SCHEMA IF EXISTS {name} CASCADE")
        db.execute(f"CREATE SCHEMA {name}")
    joiner = "&" if "?" in URL else "?"
    return f"{URL}{joiner}options={quote(f'-csearch_path={name}')}"
