"""Readings: idempotent bulk upserts of many sensors at once, bounded reads (window, buckets)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, cast

import numpy as np
import numpy.typing as npt
import pandas as pd
from sqlalchemy import Connection, bindparam, text

from plantcast.core.errors import InputError, StoreError, StoreUnavailable
from plantcast.core.timeutil import TimeLike, from_epoch_us, to_epoch_us, to_utc
from plantcast.store.partitions import ensure_partitions_for

_UPSERT_SQLITE = (
    "INSERT INTO readings (sensor_id, ts, value) VALUES (?, ?, ?) "
    "ON CONFLICT (sensor_id, ts) DO UPDATE SET value = excluded.value"
)
_KNOWN_SQLITE = "SELECT count(*) FROM sensors WHERE id IN (SELECT value FROM json_each(?))"
_KNOWN_PG = "SELECT count(*) FROM sensors WHERE id = ANY(%s::integer[])"
# One query decides the PostgreSQL path: does any stored row fall in a (sensor, first..last)
# range of the batch? No → COPY straight into readings; yes → stage and merge.
_ANY_STORED_PG = (  # LATERAL … LIMIT 1: one index probe per sensor, never a scan of readings
    "SELECT EXISTS (SELECT 1 FROM unnest(%s::integer[], %s::bigint[], %s::bigint[]) "
    "AS b(sid, lo, hi) CROSS JOIN LATERAL (SELECT 1 FROM readings r WHERE r.sensor_id = b.sid "
    "AND r.ts >= timestamptz 'epoch' + b.lo * interval '1 microsecond' "
    "AND r.ts <= timestamptz 'epoch' + b.hi * interval '1 microsecond' LIMIT 1) AS hit)"
)
_STAGE_PG = (
    "CREATE TEMP TABLE IF NOT EXISTS readings_batch_stage "
    "(sensor_id integer, ts timestamptz, value double precision) ON COMMIT DELETE ROWS"
)
_COPY_PG = "COPY {table} (sensor_id, ts, value) FROM STDIN (FORMAT BINARY)"
# The batch is deduplicated before staging, so no row is touched twice by the merge.
_MERGE_PG = (
    "INSERT INTO readings (sensor_id, ts, value) "
    "SELECT sensor_id, ts, value FROM readings_batch_stage "
    "ON CONFLICT (sensor_id, ts) DO UPDATE SET value = EXCLUDED.value"
)
_PG_EPOCH_US = 946_684_800_000_000  # 2000-01-01 in Unix µs: binary COPY's timestamp origin
_COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + (0).to_bytes(4, "big") + (0).to_bytes(4, "big")
_COPY_TRAILER = (-1).to_bytes(2, "big", signed=True)
_COPY_ROW = np.dtype(
    [
        ("nfields", ">i2"),
        ("len_sid", ">i4"),
        ("sid", ">i4"),
        ("len_ts", ">i4"),
        ("ts", ">i8"),
        ("len_value", ">i4"),
        ("value", ">f8"),
    ]
)
_COPY_CHUNK = 1 << 23  # bytes per copy.write()


def _ts_us_sql(conn: Connection, column: str = "ts") -> str:
    """A SQL expression giving ``column`` as integer epoch microseconds on this engine."""
    if conn.dialect.name == "sqlite":
        return column
    return f"(extract(epoch from {column}) * 1000000)::bigint"


def _bound_us(conn: Connection, ts: TimeLike) -> int | pd.Timestamp:
    t = to_utc(ts)
    return int(t.value // 1_000) if conn.dialect.name == "sqlite" else t.to_pydatetime()


def _ts_value_arrays(rows: Sequence[Sequence[Any]]) -> tuple[np.ndarray, np.ndarray]:
    """(epoch µs, value) rows into two arrays. Rows are unpacked as tuples: numpy probing
    SQLAlchemy ``Row`` objects for the array protocol costs ~20 µs a row."""
    if not rows:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float64)
    ts, values = zip(*rows, strict=True)
    return np.fromiter(ts, np.int64, len(ts)), np.fromiter(values, np.float64, len(values))


def _series(rows: Sequence[Sequence[Any]]) -> pd.Series:
    us, values = _ts_value_arrays(rows)
    return pd.Series(values, index=from_epoch_us(us).rename("ts"), name="value")


def write_readings(conn: Connection, sensor_id: int, series: pd.Series) -> int:
    """Upsert a series of readings (UTC index) for one sensor, inside the caller's transaction."""
    if len(series) == 0:
        return 0
    us = to_epoch_us(series.index)
    return write_batch_arrays(conn, np.full(len(us), sensor_id, np.int64), us, series.to_numpy())


def batch_arrays(
    batch: pd.DataFrame | Mapping[str, npt.ArrayLike],
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``sensor_id, ts, value`` columns (a DataFrame or a mapping of arrays) as int64 ids,
    int64 epoch µs and float64 values. ``ts`` may be datetimes (naive = UTC) or epoch µs."""
    try:
        sid, ts, value = (batch[k] for k in ("sensor_id", "ts", "value"))
    except (KeyError, IndexError, TypeError):
        raise InputError("a batch needs the columns sensor_id, ts and value") from None
    if pd.api.types.is_integer_dtype(getattr(ts, "dtype", None) or np.asarray(ts).dtype):
        us = np.asarray(ts, dtype=np.int64)
    else:
        try:
            us = to_epoch_us(pd.DatetimeIndex(ts))
        except (TypeError, ValueError) as exc:
            raise InputError(f"cannot read ts as timestamps: {exc}", field="ts") from None
    try:
        sid_arr = np.asarray(sid, dtype=np.int64)
        values = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InputError(f"sensor_id and value must be numbers: {exc}") from None
    if not (len(sid_arr) == len(us) == len(values)):
        raise InputError("sensor_id, ts and value must have the same length")
    return sid_arr, us, values


def write_batch(conn: Connection, batch: pd.DataFrame | Mapping[str, npt.ArrayLike]) -> int:
    """Upsert readings of many sensors (``sensor_id, ts, value`` columns) in one statement."""
    return write_batch_arrays(conn, *batch_arrays(batch))


def write_batch_arrays(
    conn: Connection, sensor_ids: np.ndarray, ts_us: np.ndarray, values: np.ndarray
) -> int:
    """Upsert readings of many sensors inside the caller's transaction; returns rows written.

    Values must be finite (a missing reading is a missing row, never NaN) and every sensor
    must exist: either problem raises InputError before anything is written. Within the batch
    the last reading of a (sensor, ts) wins, as a later write would.
    """
    sid, us, values = _validated(conn, sensor_ids, ts_us, values)
    ensure_partitions_for(conn, us)  # PostgreSQL: the months this batch needs exist first
    if len(sid) == 0:
        return 0
    if conn.dialect.name == "sqlite":
        rows = list(zip(sid.tolist(), us.tolist(), values.tolist(), strict=True))
        conn.exec_driver_sql(_UPSERT_SQLITE, rows)
    else:
        _write_pg(conn, sid, us, values)
    return len(sid)


def _validated(
    conn: Connection, sid: npt.ArrayLike, us: npt.ArrayLike, values: npt.ArrayLike
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Checked, sorted by (sensor, ts) and deduplicated (last wins) copies of the columns."""
    sid = np.asarray(sid, dtype=np.int64)
    us = np.asarray(us, dtype=np.int64)
    values = np.asarray(values, dtype=np.float64)
    if len(sid) == 0:
        return sid, us, values
    bad = np.flatnonzero(~np.isfinite(values))
    if len(bad):
        i = int(bad[0])
        raise InputError(
            f"{len(bad)} value(s) are not finite numbers, the first at row {i} "
            f"(sensor {int(sid[i])}, {from_epoch_us(us[i : i + 1])[0].isoformat()}); "
            "leave a missing reading out instead of writing NaN",
            field="value",
        )
    order = np.lexsort((us, sid))  # stable: equal keys keep their batch order
    sid, us, values = sid[order], us[order], values[order]
    last = np.ones(len(sid), dtype=bool)
    last[:-1] = (sid[1:] != sid[:-1]) | (us[1:] != us[:-1])
    if not last.all():
        sid, us, values = sid[last], us[last], values[last]
    _check_sensors(conn, np.unique(sid))
    return sid, us, values


def _check_sensors(conn: Connection, ids: np.ndarray) -> None:
    if conn.dialect.name == "sqlite":
        found = conn.exec_driver_sql(_KNOWN_SQLITE, (json.dumps(ids.tolist()),)).scalar_one()
    else:
        found = conn.exec_driver_sql(_KNOWN_PG, (ids.tolist(),)).scalar_one()
    if int(found) != len(ids):
        raise InputError(
            f"{len(ids) - int(found)} of the batch's {len(ids)} sensor id(s) do not exist",
            field="sensor_id",
        )


def _write_pg(conn: Connection, sid: np.ndarray, us: np.ndarray, values: np.ndarray) -> None:
    # Binary COPY built in numpy (no Python object per row). Straight into readings when no
    # stored row can clash; otherwise into a staging table and one INSERT … ON CONFLICT.
    starts = np.flatnonzero(np.r_[True, sid[1:] != sid[:-1]])
    ends = np.r_[starts[1:], len(sid)] - 1
    bounds = (sid[starts].tolist(), us[starts].tolist(), us[ends].tolist())
    clash = conn.exec_driver_sql(_ANY_STORED_PG, bounds).scalar()
    payload = _copy_payload(sid, us, values)
    if not clash:
        _copy(conn, "readings", payload)
        return
    conn.exec_driver_sql(_STAGE_PG)
    _copy(conn, "readings_batch_stage", payload)
    conn.exec_driver_sql(_MERGE_PG)
    conn.exec_driver_sql("DELETE FROM readings_batch_stage")


def _copy_payload(sid: np.ndarray, us: np.ndarray, values: np.ndarray) -> memoryview:
    """PostgreSQL's binary COPY format: header, rows of (count, length + big-endian field)s."""
    rows = np.empty(len(sid), dtype=_COPY_ROW)
    rows["nfields"] = 3
    rows["len_sid"] = 4
    rows["sid"] = sid
    rows["len_ts"] = 8
    rows["ts"] = us - _PG_EPOCH_US
    rows["len_value"] = 8
    rows["value"] = values
    return memoryview(b"".join((_COPY_HEADER, rows.tobytes(), _COPY_TRAILER)))


def _copy(conn: Connection, table: str, payload: memoryview) -> None:
    import psycopg  # PostgreSQL only: a SQLite store never imports the driver

    raw = cast("psycopg.Connection[Any]", conn.connection.dbapi_connection)
    try:
        with raw.cursor() as cur, cur.copy(_COPY_PG.format(table=table)) as copy:
            for lo in range(0, len(payload), _COPY_CHUNK):
                copy.write(payload[lo : lo + _COPY_CHUNK])
    except psycopg.OperationalError as exc:
        raise StoreUnavailable(f"lost the database during COPY: {_first_line(exc)}") from exc
    except psycopg.Error as exc:
        raise StoreError(f"the database refused the COPY: {_first_line(exc)}") from exc


def _first_line(exc: BaseException) -> str:
    text_ = str(exc).strip()
    return text_.splitlines()[0] if text_ else type(exc).__name__


def read_series(conn: Connection, sensor_id: int, start: TimeLike, end: TimeLike) -> pd.Series:
    """Raw readings with ``start <= ts < end``, ascending, as a float Series on a UTC index."""
    sql = text(
        f"SELECT {_ts_us_sql(conn)} AS ts_us, value FROM readings "
        "WHERE sensor_id = :sid AND ts >= :start AND ts < :end ORDER BY ts"
    )
    rows = conn.execute(
        sql, {"sid": sensor_id, "start": _bound_us(conn, start), "end": _bound_us(conn, end)}
    ).fetchall()
    return _series(rows)


def read_tail(conn: Connection, sensor_id: int, n: int, end: TimeLike | None = None) -> pd.Series:
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


def read_buckets(
    conn: Connection, sensor_id: int, start: TimeLike, end: TimeLike, buckets: int
) -> pd.DataFrame:
    """Downsample ``start <= ts < end`` into ``buckets`` equal time buckets, computed in SQL.

    Returns one row per non-empty bucket, indexed by the bucket's start time, with columns
    ``mean``, ``min``, ``max`` and ``count``.
    """
    start, end = to_utc(start), to_utc(end)
    if end <= start or buckets < 1:
        raise ValueError("need end > start and at least one bucket")
    width_us = max(1, -(-((end - start).value // 1_000) // buckets))  # ceil division
    params = {"sid": sensor_id, "start": _bound_us(conn, start), "end": _bound_us(conn, end)}
    params["width"] = width_us
    where = "sensor_id = :sid AND ts >= :start AND ts < :end"
    if conn.dialect.name == "sqlite":
        sql = text(
            "SELECT (ts - :start) / :width AS b, avg(value), min(value), max(value), count(*) "
            f"FROM readings WHERE {where} GROUP BY b ORDER BY b"
        )
    else:
        # Grouped by date_bin (a time operation, cheap per row); each group's start is turned
        # into its bucket number once per bucket, not once per reading.
        params["width_iv"] = pd.Timedelta(microseconds=width_us).to_pytimedelta()
        sql = text(
            "SELECT (extract(epoch from b - :start) * 1000000)::bigint / :width, mean, lo, hi, n "
            "FROM (SELECT date_bin(:width_iv, ts, :start) AS b, avg(value) AS mean, "
            f"min(value) AS lo, max(value) AS hi, count(*) AS n FROM readings WHERE {where} "
            "GROUP BY b) AS g ORDER BY b"
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


def count_readings(
    conn: Connection,
    sensor_id: int,
    start: TimeLike | None = None,
    end: TimeLike | None = None,
) -> int:
    where, params = "sensor_id = :sid", {"sid": sensor_id}
    if start is not None:
        where += " AND ts >= :start"
        params["start"] = _bound_us(conn, start)
    if end is not None:
        where += " AND ts < :end"
        params["end"] = _bound_us(conn, end)
    sql = text(f"SELECT count(*) FROM readings WHERE {where}")
    return int(conn.execute(sql, params).scalar_one())


# -- many sensors in one statement (a detect pass over a plant) ---------------------------
MANY_CHUNK = 500  # sensors per statement: bounded statement size and bind-parameter count


def read_series_many(
    conn: Connection, sensor_ids: Iterable[int], start: TimeLike, end: TimeLike
) -> dict[int, pd.Series]:
    """``read_series`` of many sensors over one window, one statement per MANY_CHUNK sensors.
    Every asked sensor has an entry (empty when it has no reading in the window)."""
    ids = [int(i) for i in dict.fromkeys(sensor_ids)]
    if conn.dialect.name == "postgresql":
        return _read_many_pg(conn, ids, to_utc(start), to_utc(end))
    out: dict[int, pd.Series] = {}
    sql = text(
        f"SELECT sensor_id, {_ts_us_sql(conn)} AS ts_us, value FROM readings "
        "WHERE sensor_id IN :ids AND ts >= :start AND ts < :end ORDER BY sensor_id, ts"
    ).bindparams(bindparam("ids", expanding=True))
    bounds = {"start": _bound_us(conn, start), "end": _bound_us(conn, end)}
    for lo in range(0, len(ids), MANY_CHUNK):
        part = ids[lo : lo + MANY_CHUNK]
        rows = conn.execute(sql, {"ids": part, **bounds}).fetchall()
        sid = np.fromiter((r[0] for r in rows), np.int64, len(rows))
        us, values = _ts_value_arrays([(r[1], r[2]) for r in rows])
        cuts = np.flatnonzero(np.diff(sid)) + 1 if len(sid) else np.empty(0, np.int64)
        for piece_ids, piece_us, piece_values in zip(
            np.split(sid, cuts), np.split(us, cuts), np.split(values, cuts), strict=True
        ):
            if len(piece_ids):
                index = from_epoch_us(piece_us).rename("ts")
                out[int(piece_ids[0])] = pd.Series(piece_values, index=index, name="value")
        for i in part:
            if i not in out:  # an empty series made only for a sensor without readings
                out[i] = _series([])
    return out


# One row per sensor, its times and values as two arrays, sent in binary: the client makes
# two numbers per sensor, not three Python objects per reading (an incremental detect pass
# reads a week of context for every sensor: 350,000 readings for 1,000 sensors at 30 min).
_MANY_PG = (
    "SELECT sensor_id, array_agg((extract(epoch from ts) * 1000000)::bigint ORDER BY ts),"
    " array_agg(value ORDER BY ts) FROM readings"
    " WHERE sensor_id = ANY(%s) AND ts >= %s AND ts < %s GROUP BY sensor_id"
)


def _read_many_pg(
    conn: Connection, ids: list[int], start: pd.Timestamp, end: pd.Timestamp
) -> dict[int, pd.Series]:
    """``read_series_many`` on PostgreSQL: per MANY_CHUNK sensors one statement, binary."""
    import psycopg  # PostgreSQL only: a SQLite store never imports the driver

    raw = cast("psycopg.Connection[Any]", conn.connection.dbapi_connection)
    out: dict[int, pd.Series] = {}
    bounds = (start.to_pydatetime(), end.to_pydatetime())
    try:
        with raw.cursor(binary=True) as cur:
            for lo in range(0, len(ids), MANY_CHUNK):
                for sid, us, values in cur.execute(_MANY_PG, (ids[lo : lo + MANY_CHUNK], *bounds)):
                    index = from_epoch_us(np.array(us, dtype=np.int64)).rename("ts")
                    out[int(sid)] = pd.Series(
                        np.array(values, dtype=np.float64), index=index, name="value"
                    )
    except psycopg.OperationalError as exc:
        raise StoreUnavailable(f"lost the database reading readings: {_first_line(exc)}") from exc
    except psycopg.Error as exc:
        raise StoreError(f"the database refused a read of readings: {_first_line(exc)}") from exc
    for i in ids:
        if i not in out:  # an empty series made only for a sensor without readings
            out[i] = _series([])
    return out


def _edge_sql(last: bool) -> Any:
    op, order, none = ("<", "DESC", "infinity") if last else (">=", "ASC", "-infinity")
    return text(
        f"SELECT b.sid, {_PG_US}, r.value FROM"
        " unnest(CAST(:ids AS integer[]), CAST(:bounds AS timestamptz[])) AS b(sid, bound)"
        " CROSS JOIN LATERAL (SELECT ts, value FROM readings WHERE sensor_id = b.sid"
        f" AND ts {op} COALESCE(b.bound, '{none}'::timestamptz) ORDER BY ts {order} LIMIT 1) r"
    )


_PG_US = "(extract(epoch from r.ts) * 1000000)::bigint"


def _edge_readings_pg(
    conn: Connection, bounds: list[tuple[int, TimeLike | None]], last: bool
) -> dict[int, tuple[pd.Timestamp, float]]:
    """``edge_readings`` on PostgreSQL: one statement, a lateral index seek per sensor (a
    UNION of hundreds of LIMIT-1 parts costs the planner more than the seeks)."""
    out: dict[int, tuple[pd.Timestamp, float]] = {}
    if not bounds:
        return out
    ids = [int(sid) for sid, _ in bounds]
    at = [None if b is None else to_utc(b).to_pydatetime() for _, b in bounds]
    for sid, us, value in conn.execute(_edge_sql(last), {"ids": ids, "bounds": at}):
        out[int(sid)] = (pd.Timestamp(int(us) * 1_000, tz="UTC"), float(value))
    return out


def edge_readings(
    conn: Connection, bounds: Iterable[tuple[int, TimeLike | None]], *, last: bool = True
) -> dict[int, tuple[pd.Timestamp, float]]:
    """Per ``(sensor_id, bound)``: the last reading before ``bound`` (``last``) or the first at
    or after it; ``bound`` None means no bound. One statement per MANY_CHUNK sensors, each part
    an index seek (``ORDER BY ts LIMIT 1``); sensors with no such reading are left out."""
    op, order = ("<", "DESC") if last else (">=", "ASC")
    ts_sql = _ts_us_sql(conn)
    out: dict[int, tuple[pd.Timestamp, float]] = {}
    bounds = list(bounds)
    if conn.dialect.name == "postgresql":
        return _edge_readings_pg(conn, bounds, last)
    for lo in range(0, len(bounds), MANY_CHUNK):
        parts, params = [], {}
        for k, (sid, bound) in enumerate(bounds[lo : lo + MANY_CHUNK]):
            where = f"sensor_id = :s{k}"
            params[f"s{k}"] = int(sid)
            if bound is not None:
                where += f" AND ts {op} :b{k}"
                params[f"b{k}"] = _bound_us(conn, bound)
            parts.append(
                f"SELECT * FROM (SELECT sensor_id, {ts_sql} AS ts_us, value FROM readings "
                f"WHERE {where} ORDER BY ts {order} LIMIT 1) AS e{k}"
            )
        if not parts:
            continue
        for sid, us, value in conn.execute(text(" UNION ALL ".join(parts)), params):
            out[int(sid)] = (pd.Timestamp(int(us) * 1_000, tz="UTC"), float(value))
    return out
