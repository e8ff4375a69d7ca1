"""Backup and restore of a whole plantcast database, online (writers may go on meanwhile).

- PostgreSQL: ``pg_dump --format=custom`` of the schema plantcast lives in (its
  ``current_schema()``: ``public``, or the one the URL's ``search_path`` names), restored with
  ``pg_restore`` in one transaction, stopping at the first error. The password, if the URL has
  one, reaches the tools as ``PGPASSWORD``, never on their command line.
- SQLite: the online backup API (``sqlite3.Connection.backup``), a consistent copy page by page
  while other processes read and write; restored the same way in the other direction.

A restore refuses a database that already holds readings unless ``force``: then the plantcast
tables there are dropped first and the backup's put in their place. Both report the rows of
every table, so a round trip can be checked table by table.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import func, inspect, select, text

from plantcast.core.errors import InputError, PlantcastError, Refused, StoreError
from plantcast.store.facade import Store
from plantcast.store.schema import metadata

__all__ = ["BackupResult", "backup", "restore", "table_counts"]

PG_MAGIC = b"PGDMP"
SQLITE_MAGIC = b"SQLite format 3\x00"


@dataclass(frozen=True)
class BackupResult:
    path: Path
    engine: str
    bytes: int
    seconds: float
    counts: dict[str, int]  # rows per plantcast table


def table_counts(store: Store) -> dict[str, int]:
    """Rows in each plantcast table the database has (a round trip compares these)."""
    with store.read() as conn:
        have = set(inspect(conn).get_table_names())
        return {
            name: int(conn.execute(select(func.count()).select_from(table)).scalar_one())
            for name, table in sorted(metadata.tables.items())
            if name in have
        }


def backup(store: Store, to: Path) -> BackupResult:
    """Write a backup of ``store`` to ``to`` (replacing the file if it exists)."""
    to = Path(to)
    if to.parent and not to.parent.exists():
        raise InputError(f"no folder {to.parent} to write the backup in", field="--to")
    started = time.perf_counter()
    counts = table_counts(store)
    if store.dialect == "postgresql":
        _pg_dump(store, to)
    else:
        _sqlite_copy(_sqlite_path(store), to)
    return BackupResult(to, store.dialect, to.stat().st_size, time.perf_counter() - started, counts)


def restore(store: Store, source: Path, *, force: bool = False) -> BackupResult:
    """Put the backup at ``source`` in ``store``'s place; see the module docstring."""
    source = Path(source)
    try:
        head = source.open("rb").read(16)
    except OSError as exc:
        raise InputError(f"cannot read {source}: {exc.strerror}", field="--from") from None
    kind = "postgresql" if head.startswith(PG_MAGIC) else "sqlite" if head == SQLITE_MAGIC else None
    if kind is None:
        raise InputError(f"{source} is not a plantcast backup (pg_dump or SQLite)", field="--from")
    if kind != store.dialect:
        raise Refused(f"{source} is a {kind} backup; this database is {store.dialect}")
    started = time.perf_counter()
    held = table_counts(store).get("readings", 0)
    if held and not force:
        raise Refused(
            f"{store.url} already holds {held:,} readings: `restore --force` replaces them "
            "with the backup's"
        )
    if kind == "postgresql":
        _pg_restore(store, source)
    else:
        path = _sqlite_path(store)
        store.close()  # the engine's pooled connections would keep the old pages in view
        _sqlite_copy(source, path)
    counts = table_counts(store)
    return BackupResult(source, kind, source.stat().st_size, time.perf_counter() - started, counts)


# -- SQLite -----------------------------------------------------------------------------------
def _sqlite_path(store: Store) -> Path:
    database = store.engine.url.database
    if not database or database == ":memory:":
        raise Refused("an in-memory SQLite database has nothing to back up")
    return Path(database).expanduser()


def _sqlite_copy(source: Path, target: Path) -> None:
    """SQLite's online backup from one file to another (a consistent snapshot)."""
    try:
        src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
        try:
            dst = sqlite3.connect(target)
            try:
                src.backup(dst, pages=4096)
            finally:
                dst.close()
        finally:
            src.close()
    except sqlite3.Error as exc:
        raise StoreError(f"SQLite backup from {source} to {target} failed: {exc}") from exc


# -- PostgreSQL -------------------------------------------------------------------------------
def _pg_target(store: Store) -> tuple[str, dict[str, str], str]:
    """(libpq URL without the password, the tools' environment, plantcast's schema)."""
    url = store.engine.url
    env = {**os.environ}
    if url.password:
        env["PGPASSWORD"] = str(url.password)
    plain = url.set(drivername="postgresql", password=None).render_as_string(hide_password=False)
    with store.read() as conn:
        schema = conn.execute(text("SELECT current_schema()")).scalar_one()
    return plain, env, str(schema)


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise PlantcastError(
            f"{name} is not installed: install PostgreSQL's client tools "
            "(apt-get install postgresql-client) to back up or restore PostgreSQL"
        )
    return found


def _run(args: list[str], env: dict[str, str], what: str) -> str:
    done = subprocess.run(args, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise StoreError(f"{what} failed: {done.stderr.strip() or done.returncode}")
    return done.stdout


def _pg_dump(store: Store, to: Path) -> None:
    url, env, schema = _pg_target(store)
    args = [_tool("pg_dump"), "--format=custom", "--no-owner", "--no-privileges"]
    _run([*args, f"--schema={schema}", f"--file={to}", f"--dbname={url}"], env, "pg_dump")


def _pg_restore(store: Store, source: Path) -> None:
    """Drop plantcast's tables in the target schema, then restore the backup's objects in one
    transaction (its schema entry left out: the schema is the target's own)."""
    url, env, schema = _pg_target(store)
    restore_tool = _tool("pg_restore")
    listing = _run([restore_tool, "--list", str(source)], env, "pg_restore --list")
    kept = [line for line in listing.splitlines() if " SCHEMA " not in line]
    with store.write() as conn:
        have = set(inspect(conn).get_table_names())
        for name in reversed(metadata.sorted_tables):
            if name.name in have:
                conn.execute(text(f'DROP TABLE IF EXISTS "{name.name}" CASCADE'))
    with tempfile.NamedTemporaryFile("w", suffix=".list", delete=False) as f:
        f.write("\n".join(kept) + "\n")
        list_file = f.name
    try:
        args = [restore_tool, "--no-owner", "--no-privileges", "--single-transaction"]
        args += ["--exit-on-error", f"--use-list={list_file}", f"--dbname={url}", str(source)]
        env = {**env, "PGOPTIONS": f"-c search_path={schema}"}
        _run(args, env, "pg_restore")
    finally:
        os.unlink(list_file)
    store.engine.dispose()  # cached partition knowledge and plans of the dropped tables go
    from plantcast.store import partitions

    partitions.forget(store.engine)
