"""History upkeep: migrating an unpartitioned ``readings`` to monthly partitions, and retention.

Both take a :class:`~plantcast.store.Store` because they run many short transactions (a month
copied, a chunk deleted) so that readers and the streamer are never blocked for long.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, cast

import pandas as pd
import psycopg
from psycopg import sql
from sqlalchemy import BindParameter, Connection, MetaData, bindparam, inspect, text

from plantcast.core.errors import PlantcastError, StoreError
from plantcast.core.timeutil import TimeLike, to_utc, utcnow
from plantcast.store import partitions as parts
from plantcast.store.schema import UTCTime, metadata, readings, sensors

if TYPE_CHECKING:
    from plantcast.store.facade import Store

Progress = Callable[[int, int], None]
NEW = "readings_migrating"  # the partitioned table being filled, until the swap
OLD = "readings_unpartitioned"  # the old table's name for the instant before it is dropped
CHUNK_ROWS = 50_000


# -- migrate ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class MigrateResult:
    status: str  # "migrated", "already partitioned", "not needed (SQLite)"
    rows: int = 0
    partitions: int = 0
    created: tuple[str, ...] = ()  # tables added since the database was made, now created


def migrate(store: Store, on_progress: Progress | None = None) -> MigrateResult:
    """Move an unpartitioned PostgreSQL ``readings`` into monthly partitions, with no loss.

    Builds the partitioned table under another name, copies it month by month (one transaction
    each), then under a lock that holds writers off re-copies any month whose count changed
    meanwhile, checks every month's count, and swaps the names in that same transaction.
    Interrupted, it starts over next time (the old table is untouched until the swap); run on
    a partitioned table, it does nothing.
    """
    created = _create_new_tables(store)
    if store.dialect != "postgresql":
        return MigrateResult("not needed (SQLite)", created=created)
    with store.read() as conn:
        kind = parts.table_kind(conn)
    if kind is None:
        raise PlantcastError(
            f"the database {store.url} has no readings table; run `plantcast init`"
        )
    if kind == "partitioned":
        return MigrateResult("already partitioned", created=created)
    with store.write() as conn:
        months = _prepare(conn)
    progress = on_progress or (lambda done, total: None)
    progress(0, len(months))
    for i, month in enumerate(months, 1):
        with store.write() as conn:
            _copy_month(conn, month)
        progress(i, len(months))
    with store.write() as conn:
        rows = _verify_and_swap(conn)
    parts.forget(store.engine)
    return MigrateResult("migrated", rows, len(months), created)


def _create_new_tables(store: Store) -> tuple[str, ...]:
    """Create the tables a newer plantcast added (e.g. ``detector_fits``) on a database made
    before them; ``readings`` is left to the migration. Returns the names created."""
    with store.write() as conn:
        have = set(inspect(conn).get_table_names())
        if "sensors" not in have:
            return ()  # not a plantcast database: migrate says so below
        new = [t for t in metadata.sorted_tables if t.name not in have and t is not readings]
        metadata.create_all(conn, tables=new, checkfirst=True)
    return tuple(t.name for t in new)


def _cur(conn: Connection) -> psycopg.Cursor[Any]:
    return cast("psycopg.Connection[Any]", conn.connection.dbapi_connection).cursor()


def _prepare(conn: Connection) -> list[int]:
    """A fresh partitioned twin of readings with every month the data spans (and now's)."""
    with _cur(conn) as cur:
        cur.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(NEW)))
    twin_md = MetaData()
    sensors.to_metadata(twin_md)  # for the foreign key to resolve
    readings.to_metadata(twin_md, name=NEW).create(conn)
    with _cur(conn) as cur:
        cur.execute("SELECT min(ts), max(ts) FROM readings")
        lo, hi = cur.fetchone()  # type: ignore[misc]  # an aggregate: always one row
    now = parts.month_of(utcnow())
    months = set(range(now - parts.MONTHS_BEHIND, now + parts.MONTHS_AHEAD + 1))
    if lo is not None:
        months |= set(parts.months_spanned(lo, hi))
    for month in sorted(months):
        parts._create(conn, month, parent=NEW)
    return sorted(months)


def _copy_month(conn: Connection, month: int) -> int:
    # sensor_id = ANY(all sensors) lets each month be read through the primary key index
    # instead of a scan of the whole table per month.
    with _cur(conn) as cur:
        cur.execute(
            sql.SQL(
                "INSERT INTO {} (sensor_id, ts, value) SELECT sensor_id, ts, value FROM readings "
                "WHERE sensor_id = ANY(ARRAY(SELECT id FROM sensors)) AND ts >= %s AND ts < %s"
            ).format(sql.Identifier(NEW)),
            _month_bounds(month),
        )
        return cur.rowcount


def _month_bounds(month: int) -> tuple[datetime, datetime]:
    return parts.month_start(month).to_pydatetime(), parts.month_start(month + 1).to_pydatetime()


def _month_counts(conn: Connection, table: str) -> dict[int, int]:
    with _cur(conn) as cur:
        cur.execute(
            sql.SQL(
                "SELECT date_trunc('month', ts AT TIME ZONE 'UTC') AS m, count(*) FROM {} "
                "GROUP BY m"
            ).format(sql.Identifier(table))
        )
        return {parts.month_of(m): n for m, n in cur.fetchall()}


def _verify_and_swap(conn: Connection) -> int:
    with _cur(conn) as cur:
        # EXCLUSIVE: readers go on, writers wait until the swap commits, then write the new table.
        cur.execute("LOCK TABLE readings IN EXCLUSIVE MODE")
        old = _month_counts(conn, "readings")
        new = _month_counts(conn, NEW)
        for month in sorted(m for m in old.keys() | new.keys() if old.get(m) != new.get(m)):
            if month not in parts.existing_months(conn, NEW):
                parts._create(conn, month, parent=NEW)
            cur.execute(
                sql.SQL("DELETE FROM {} WHERE ts >= %s AND ts < %s").format(sql.Identifier(NEW)),
                _month_bounds(month),
            )
            _copy_month(conn, month)
        old, new = _month_counts(conn, "readings"), _month_counts(conn, NEW)
        if old != new:
            raise StoreError("migrate: row counts differ after the copy; nothing was swapped")
        for stmt in (
            "ALTER TABLE readings RENAME TO {old}",
            "ALTER TABLE {new} RENAME TO readings",
            "DROP TABLE {old}",
            "ALTER TABLE readings RENAME CONSTRAINT {new_pkey} TO readings_pkey",
            "ALTER TABLE readings RENAME CONSTRAINT {new_fkey} TO readings_sensor_id_fkey",
        ):
            cur.execute(
                sql.SQL(stmt).format(
                    old=sql.Identifier(OLD),
                    new=sql.Identifier(NEW),
                    new_pkey=sql.Identifier(f"{NEW}_pkey"),
                    new_fkey=sql.Identifier(f"{NEW}_sensor_id_fkey"),
                )
            )
    return sum(old.values())


# -- retention --------------------------------------------------------------------------------
@dataclass(frozen=True)
class RetentionResult:
    cutoff: pd.Timestamp
    rows: int
    partitions: list[str] = field(default_factory=list)
    dry_run: bool = False


def retention(store: Store, cutoff: TimeLike, *, dry_run: bool = False) -> RetentionResult:
    """Remove every reading with ``ts < cutoff``; ``dry_run`` only counts them.

    Partitioned PostgreSQL: whole monthly partitions that end by the cutoff are dropped and the
    older rows of the month holding the cutoff are deleted, in one transaction. Elsewhere
    (SQLite, an unpartitioned table): deleted per sensor in chunks, one transaction each.
    """
    cutoff = to_utc(cutoff)
    if store.dialect == "postgresql":
        with store.read() as conn:
            partitioned = parts.table_kind(conn) == "partitioned"
        if partitioned:
            with store.write() as conn:
                result = _retention_partitioned(conn, cutoff, dry_run)
            parts.forget(store.engine)
            return result
    with store.read() as conn:
        ids = [r[0] for r in conn.execute(text("SELECT id FROM sensors ORDER BY id"))]
    rows = 0
    for sid in ids:
        if dry_run:
            with store.read() as conn:
                rows += _count_older(conn, sid, cutoff)
            continue
        while True:
            with store.write() as conn:
                removed = _delete_chunk(conn, sid, cutoff)
            rows += removed
            if removed < CHUNK_ROWS:
                break
    return RetentionResult(cutoff, rows, [], dry_run)


def _retention_partitioned(
    conn: Connection, cutoff: pd.Timestamp, dry_run: bool
) -> RetentionResult:
    whole = [p for p in parts.list_partitions(conn) if p.end <= cutoff]
    rows = 0
    with _cur(conn) as cur:
        for p in whole:
            cur.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(p.name)))
            rows += cur.fetchone()[0]  # type: ignore[index]  # an aggregate: always one row
        edge = (parts.month_start(parts.month_of(cutoff)).to_pydatetime(), cutoff.to_pydatetime())
        if dry_run:
            cur.execute("SELECT count(*) FROM readings WHERE ts >= %s AND ts < %s", edge)
            return RetentionResult(cutoff, rows + cur.fetchone()[0], [p.name for p in whole], True)  # type: ignore[index]  # an aggregate: always one row
        for p in whole:
            cur.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier(p.name)))
        cur.execute("DELETE FROM readings WHERE ts < %s", (cutoff.to_pydatetime(),))
        rows += cur.rowcount
    return RetentionResult(cutoff, rows, [p.name for p in whole], False)


_OLDER = "sensor_id = :sid AND ts < :cutoff"


def _params(sid: int, cutoff: pd.Timestamp) -> list[BindParameter[Any]]:
    return [bindparam("sid", sid), bindparam("cutoff", cutoff, type_=UTCTime())]


def _count_older(conn: Connection, sid: int, cutoff: pd.Timestamp) -> int:
    stmt = text(f"SELECT count(*) FROM readings WHERE {_OLDER}").bindparams(*_params(sid, cutoff))
    return int(conn.execute(stmt).scalar_one())


def _delete_chunk(conn: Connection, sid: int, cutoff: pd.Timestamp) -> int:
    """Delete up to CHUNK_ROWS of the sensor's oldest readings before ``cutoff``, by the index."""
    last = conn.execute(
        text(f"SELECT ts FROM readings WHERE {_OLDER} ORDER BY ts LIMIT 1 OFFSET :skip").bindparams(
            *_params(sid, cutoff), bindparam("skip", CHUNK_ROWS - 1)
        )
    ).scalar()
    if last is None:
        stmt = text(f"DELETE FROM readings WHERE {_OLDER}").bindparams(*_params(sid, cutoff))
    else:  # ``last`` comes back in the engine's own representation: pass it back untouched
        stmt = text(f"DELETE FROM readings WHERE {_OLDER} AND ts <= :last").bindparams(
            *_params(sid, cutoff), bindparam("last", last)
        )
    return conn.execute(stmt).rowcount
