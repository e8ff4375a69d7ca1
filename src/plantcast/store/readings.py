"""Readings: idempotent bulk upserts and bounded reads (raw window and SQL time buckets)."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
from sqlalchemy import Connection, text

from plantcast.core.timeutil import from_epoch_us, to_epoch_us, to_utc
from plantcast.store.partitions import ensure_partitions_for

_UPSERT_SQLITE = (
    "INSERT INTO readings (sensor_id, ts, value) VALUES (?, ?, ?) "
    "ON CONFLICT (sensor_id, ts) DO UPDATE SET value = excluded.value"
)
_STAGE_PG = (
    "CREATE TEMP TABLE IF NOT EXISTS readings_stage "
    "(sensor_id integer, ts_us bigint, value double precision) ON COMMIT DELETE ROWS"
)
_MERGE_PG = (
    "INSERT INTO readings (sensor_id, ts, value) "
    "SELECT DISTINCT ON (sensor_id, ts_us) sensor_id, "
    "timestamptz 'epoch' + ts_us * interval '1 microsecond', value FROM readings_stage "
    "ORDER BY sensor_id, ts_us "
    "ON CONFLICT (sensor_id, ts) DO UPDATE SET value = EXCLUDED.value"
)


def _ts_us_sql(conn: Connection, column: str = "ts") -> str:
    """A SQL expression giving ``column`` as integer epoch microseconds on this engine."""
    if conn.dialect.name == "sqlite":
        return column
    return f"(extract(epoch from {column}) * 1000000)::bigint"


def _bound_us(conn: Connection, ts) -> int | pd.Timestamp:
    t = to_utc(ts)
    return int(t.value // 1_000) if conn.dialect.name == "sqlite" else t.to_pydatetime()


def _ts_value_arrays(rows) -> tuple[np.ndarray, np.ndarray]:
    """(epoch µs, value) rows into two arrays. Rows are unpacked as tuples: numpy probing
    SQLAlchemy ``Row`` objects for the array protocol costs ~20 µs a row."""
    if not rows:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float64)
    ts, values = zip(*rows, strict=True)
    return np.fromiter(ts, np.int64, len(ts)), np.fromiter(values, np.float64, len(values))


def _series(rows) -> pd.Series:
    us, values = _ts_value_arrays(rows)
    return pd.Series(values, index=from_epoch_us(us).rename("ts"), name="value")


def write_readings(conn: Connection, sensor_id: int, series: pd.Series) -> int:
    """Upsert a series of readings (UTC index) for one sensor, inside the caller's transaction."""
    if len(series) == 0:
        return 0
    us = to_epoch_us(series.index)
    ensure_partitions_for(conn, us)  # PostgreSQL: the months this batch needs exist first
    values = np.asarray(series.to_numpy(), dtype=np.float64)
    if conn.dialect.name == "sqlite":
        rows = list(zip([sensor_id] * len(us), us.tolist(), values.tolist(), strict=True))
        conn.exec_driver_sql(_UPSERT_SQLITE, rows)
    else:
        _copy_upsert_pg(conn, sensor_id, us, values)
    return len(us)


def _copy_upsert_pg(conn: Connection, sensor_id: int, us: np.ndarray, values: np.ndarray) -> None:
    # COPY into a session-temporary staging table, then one INSERT … ON CONFLICT: the COPY is
    # fast and the merge makes replays idempotent.
    buf = io.StringIO()
    frame = pd.DataFrame({"s": sensor_id, "t": us, "v": values})
    frame.to_csv(buf, sep="\t", header=False, index=False, float_format="%.17g")
    raw = conn.connection.dbapi_connection
    with raw.cursor() as cur:
        cur.execute(_STAGE_PG)
        with cur.copy("COPY readings_stage (sensor_id, ts_us, value) FROM STDIN") as copy:
            copy.write(buf.getvalue())
        cur.execute(_MERGE_PG)
        cur.execute("DELETE FROM readings_stage")


def read_series(conn: Connection, sensor_id: int, start, end) -> pd.Series:
    """Raw readings with ``start <= ts < end``, ascending, as a float Series on a UTC index."""
    sql = text(
        f"SELECT {_ts_us_sql(conn)} AS ts_us, value FROM readings "
        "WHERE sensor_id = :sid AND ts >= :start AND ts < :end ORDER BY ts"
    )
    rows = conn.execute(
        sql, {"sid": sensor_id, "start": _bound_us(conn, start), "end": _bound_us(conn, end)}
    ).fetchall()
    return _series(rows)


def read_tail(conn: Connection, sensor_id: int, n: int, end=None) -> pd.Series:
    """The last ``n`` readings (before ``end`` if given): a bounded read by count."""
    where = "sensor_id = :sid" + (" AND ts < :end" if end is not None else "")
    params = {"sid": sensor_id, "n": int(n)}
    if end is not None:
        params["end"] = _bound_us(conn, end)
    sql = text(
        f"SELECT {_ts_us_sql(conn)} AS ts_us, value FROM readings WHERE {where} "
        "ORDER BY ts DESC LIMIT :n"
    )
    return _series(conn.execute(sql, params).fetchall()[::-1])


def read_buckets(conn: Connection, sensor_id: int, start, end, buckets: int) -> pd.DataFrame:
    """Downsample ``start <= ts < end`` into ``buckets`` equal time buckets, computed in SQL.

    Returns one row per non-empty bucket, indexed by the bucket's start time, with columns
    ``mean``, ``min``, ``max`` and ``count``.
    """
    start, end = to_utc(start), to_utc(end)
    if end <= start or buckets < 1:
        raise ValueError("need end > start and at least one bucket")
    width_us = max(1, -(-((end - start).value // 1_000) // buckets))  # ceil division
    params = {"sid": sensor_id, "start": _bound_us(conn, start), "end": _bound_us(conn, end)}
    if conn.dialect.name == "sqlite":
        bucket = "(ts - :start) / :width"
    else:
        # date_bin keeps it a time operation on PostgreSQL; convert back to an index for both.
        bucket = (
            "(extract(epoch from date_bin(:width_iv, ts, :start) - :start) * 1000000)::bigint"
            " / :width"
        )
        params["width_iv"] = pd.Timedelta(microseconds=width_us).to_pytimedelta()
    params["width"] = width_us
    sql = text(
        f"SELECT {bucket} AS b, avg(value), min(value), max(value), count(*) FROM readings "
        "WHERE sensor_id = :sid AND ts >= :start AND ts < :end GROUP BY b ORDER BY b"
    )
    rows = conn.execute(sql, params).fetchall()
    cols = ["mean", "min", "max", "count"]
    if not rows:
        empty = pd.DataFrame(columns=cols, dtype=float)
        empty.index = from_epoch_us([]).rename("ts")
        return empty
    arr = np.array([tuple(r) for r in rows], dtype=np.float64)  # tuples: see _ts_value_arrays
    start_us = start.value // 1_000
    idx = from_epoch_us(start_us + arr[:, 0].astype(np.int64) * width_us).rename("ts")
    out = pd.DataFrame(arr[:, 1:], index=idx, columns=cols)
    out["count"] = out["count"].astype(np.int64)
    return out


def last_reading(conn: Connection, sensor_id: int) -> tuple[pd.Timestamp, float] | None:
    sql = text(
        f"SELECT {_ts_us_sql(conn)}, value FROM readings WHERE sensor_id = :sid "
        "ORDER BY ts DESC LIMIT 1"
    )
    row = conn.execute(sql, {"sid": sensor_id}).first()
    if row is None:
        return None
    return pd.Timestamp(int(row[0]) * 1_000, tz="UTC"), float(row[1])


def first_timestamp(conn: Connection, sensor_id: int) -> pd.Timestamp | None:
    sql = text(
        f"SELECT {_ts_us_sql(conn)} FROM readings WHERE sensor_id = :sid ORDER BY ts LIMIT 1"
    )
    row = conn.execute(sql, {"sid": sensor_id}).first()
    return None if row is None else pd.Timestamp(int(row[0]) * 1_000, tz="UTC")


def count_readings(conn: Connection, sensor_id: int, start=None, end=None) -> int:
    where, params = "sensor_id = :sid", {"sid": sensor_id}
    if start is not None:
        where += " AND ts >= :start"
        params["start"] = _bound_us(conn, start)
    if end is not None:
        where += " AND ts < :end"
        params["end"] = _bound_us(conn, end)
    return int(conn.execute(text(f"SELECT count(*) FROM readings WHERE {where}"), params).scalar())
