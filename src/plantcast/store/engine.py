"""Engines: URL normalisation and connection setup (SQLite WAL + busy timeout, psycopg 3)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, Table, create_engine, event
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import make_url

from plantcast.core.errors import InputError

SQLITE_BUSY_TIMEOUT_MS = 30_000


def normalize_url(url: str) -> str:
    """Map URLs as people write them to SQLAlchemy's: ``postgresql://`` → psycopg 3."""
    url = url.strip()
    for prefix in ("postgres://", "postgresql://", "postgresql+psycopg2://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    if url.startswith(("sqlite:", "postgresql+psycopg:")):
        return url
    raise InputError(
        f"unsupported database URL scheme in {redact(url)!r}: "
        "use sqlite:///path/to/file.db or postgresql://user@host/db",
        field="database_url",
    )


def redact(url: str) -> str:
    """The URL with any password hidden, for messages and logs."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<unparseable URL>"


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


def upsert(
    conn: Connection, table: Table, rows: list[dict[str, Any]], keys: tuple[str, ...]
) -> None:
    """Insert ``rows`` into ``table`` in one statement, each replacing the row that has the
    same ``keys`` (a unique index): the dialect's ``INSERT … ON CONFLICT DO UPDATE``. Every
    row names the same columns."""
    if not rows:
        return
    insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    stmt = insert(table)
    replace = {c: stmt.excluded[c] for c in rows[0] if c not in keys}
    conn.execute(stmt.on_conflict_do_update(index_elements=list(keys), set_=replace), rows)


def make_engine(url: str) -> Engine:
    """Create an engine; for SQLite make the file's folder and set WAL mode per connection."""
    url = normalize_url(url)
    if url.startswith("sqlite:"):
        return _sqlite_engine(url)
    connect_args: dict[str, Any] = {"connect_timeout": 5}
    if "application_name" not in make_url(url).query:  # the URL may name the client itself
        connect_args["application_name"] = "plantcast"
    return create_engine(
        url, pool_pre_ping=True, pool_size=2, max_overflow=4, connect_args=connect_args
    )


def _sqlite_engine(url: str) -> Engine:
    database = make_url(url).database
    if database and database != ":memory:":
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})

    @event.listens_for(engine, "connect")
    def _on_connect(
        dbapi_conn: Any, _record: Any
    ) -> None:  # pragma: no cover - exercised by every test
        # Let SQLAlchemy, not the driver, begin transactions (see _on_begin).
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:  # pragma: no cover - exercised by every test
        # Writers take the write lock up front (BEGIN IMMEDIATE) so the busy timeout applies;
        # a deferred transaction that reads and then writes could fail at once with "locked".
        mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
        conn.exec_driver_sql(f"BEGIN {mode}")

    return engine
