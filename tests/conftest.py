"""Shared fixtures: one store fixture parametrized over SQLite and a real PostgreSQL server."""

from __future__ import annotations

import importlib
import os
import uuid
from types import ModuleType
from urllib.parse import quote

import psycopg
import pytest

from plantcast.store import Store

pytest_plugins = ["dashboard_fixtures"]  # the page's AppTest fixtures

PG_URL = os.environ.get("PLANTCAST_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def require_module(name: str, why: str) -> ModuleType:
    """``name`` imported; missing → fail under CI (a hard dependency must be there), skip
    elsewhere saying how to get it (``pytest.importorskip`` would skip under CI too)."""
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        msg = f"{name} is not importable ({exc}); {why} (pip install -e '.[dev]')"
        if IN_CI:
            pytest.fail(msg, pytrace=False)
        pytest.skip(msg, allow_module_level=True)


def _plain_pg(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


@pytest.fixture(scope="session")
def pg_base_url() -> str:
    """The test server's URL; unreachable → fail under CI, skip (with how to enable) elsewhere."""
    try:
        with psycopg.connect(_plain_pg(PG_URL), connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except Exception as exc:
        msg = (
            f"PostgreSQL not reachable at {PG_URL} ({str(exc).strip().splitlines()[0]}); "
            "start a server and set PLANTCAST_TEST_PG_URL to run these tests"
        )
        if IN_CI:
            pytest.fail(msg)
        pytest.skip(msg)
    return PG_URL


@pytest.fixture
def pg_url(pg_base_url):
    """A URL whose connections live in a fresh schema, dropped after the test."""
    schema = f"pc_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(_plain_pg(pg_base_url), autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    sep = "&" if "?" in pg_base_url else "?"
    yield f"{pg_base_url}{sep}options={quote(f'-csearch_path={schema}')}"
    with psycopg.connect(_plain_pg(pg_base_url), autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture
def sqlite_url(tmp_path):
    return f"sqlite:///{tmp_path / 'plantcast.db'}"


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request):
    if request.param == "postgresql":
        request.applymarker(pytest.mark.postgres)
        return request.getfixturevalue("pg_url")
    return request.getfixturevalue("sqlite_url")


@pytest.fixture
def store(db_url):
    s = Store.open(db_url)
    s.init()
    yield s
    s.close()


def pytest_collection_modifyitems(items):
    """Mark every test that uses PostgreSQL ``postgres`` when collected, so ``-m`` selects it.

    (A marker applied inside a fixture comes too late for ``-m``: collection is over by then.)
    """
    for item in items:
        callspec = getattr(item, "callspec", None)
        engine = callspec.params.get("db_url") if callspec else None
        if engine == "postgresql" or "pg_base_url" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.postgres)
