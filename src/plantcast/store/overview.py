"""The plant overview's reads: every sensor's latest reading and alert counts in one statement,
and the 24 h sparklines of the sensors on show in another (downsampled in SQL).

Two statements a refresh whatever the number of sensors: the latest reading of each sensor is an
index seek (a LATERAL join on PostgreSQL, correlated subqueries on SQLite), the alert counts one
grouped scan of the unresolved alerts. Sparklines are read only for the sensors a page shows:
bucketing every sensor's day would read every reading of the last day (a second at 10,000
sensors on PostgreSQL, benchmarks/overview.py).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import pandas as pd
from sqlalchemy import Connection, bindparam, text

from plantcast.core.types import AlertStatus


@dataclass(frozen=True, slots=True)
class SensorSummary:
    """One sensor as the overview lists it; times as integer epoch microseconds (10,000 of
    these are made a refresh: pandas objects are made only for the rows shown)."""

    sensor_id: int
    name: str
    unit: str
    interval_us: int
    latest_us: int | None  # None: no reading yet
    latest_value: float | None
    open_alerts: int
    acknowledged_alerts: int

    @property
    def interval(self) -> pd.Timedelta:
        return pd.Timedelta(microseconds=self.interval_us)

    @property
    def latest_ts(self) -> pd.Timestamp | None:
        return None if self.latest_us is None else pd.Timestamp(self.latest_us * 1_000, tz="UTC")


def _no_jit(conn: Connection) -> None:
    """PostgreSQL's JIT compiles plans it costs high (a LATERAL over 10,000 sensors is one)
    for ~100 ms more than the query itself takes: off for this transaction only."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql("SET LOCAL jit = off")


_COUNTS = (
    "SELECT sensor_id, "
    "sum(CASE WHEN status = :open THEN 1 ELSE 0 END) AS n_open, "
    "sum(CASE WHEN status = :ack THEN 1 ELSE 0 END) AS n_ack "
    "FROM alerts WHERE status IN (:open, :ack) AND sensor_id IS NOT NULL GROUP BY sensor_id"
)
_SUMMARY_PG = (
    "SELECT s.id, s.name, s.unit, s.interval_s, "
    "(extract(epoch from l.ts) * 1000000)::bigint, l.value, "
    "coalesce(a.n_open, 0), coalesce(a.n_ack, 0) "
    "FROM sensors s "
    "LEFT JOIN LATERAL (SELECT ts, value FROM readings WHERE sensor_id = s.id "
    "ORDER BY ts DESC LIMIT 1) AS l ON true "
    f"LEFT JOIN ({_COUNTS}) AS a ON a.sensor_id = s.id ORDER BY s.name"
)
_SUMMARY_SQLITE = (
    "SELECT s.id, s.name, s.unit, s.interval_s, "
    "(SELECT max(ts) FROM readings WHERE sensor_id = s.id), "
    "(SELECT value FROM readings WHERE sensor_id = s.id ORDER BY ts DESC LIMIT 1), "
    "coalesce(a.n_open, 0), coalesce(a.n_ack, 0) "
    f"FROM sensors s LEFT JOIN ({_COUNTS}) AS a ON a.sensor_id = s.id ORDER BY s.name"
)


def sensor_summaries(conn: Connection) -> list[SensorSummary]:
    """Every sensor, by name: its latest reading and its open and acknowledged alerts."""
    _no_jit(conn)
    sql = _SUMMARY_SQLITE if conn.dialect.name == "sqlite" else _SUMMARY_PG
    params = {"open": AlertStatus.OPEN.value, "ack": AlertStatus.ACKNOWLEDGED.value}
    return [
        SensorSummary(
            int(sid),
            name,
            unit,
            round(float(interval_s) * 1_000_000),
            None if ts_us is None else int(ts_us),
            None if value is None else float(value),
            int(n_open),
            int(n_ack),
        )
        for sid, name, unit, interval_s, ts_us, value, n_open, n_ack in conn.execute(
            text(sql), params
        ).fetchall()
    ]


_SPARK_PG = (
    "SELECT s.id, g.b, g.mean FROM sensors AS s "
    "CROSS JOIN LATERAL (SELECT max(ts) AS last FROM readings WHERE sensor_id = s.id) AS m "
    "CROSS JOIN LATERAL (SELECT floor(extract(epoch from (m.last - ts)) * 1000000 / :width)::int "
    "AS b, avg(value) AS mean FROM readings WHERE sensor_id = s.id "
    "AND ts > m.last - :span_iv AND ts <= m.last GROUP BY 1) AS g "
    "WHERE s.id IN :ids"
)
_SPARK_SQLITE = (
    "SELECT r.sensor_id, (m.last - r.ts) / :width AS b, avg(r.value) "
    "FROM (SELECT id, (SELECT max(ts) FROM readings WHERE sensor_id = sensors.id) AS last "
    "FROM sensors WHERE id IN :ids) AS m "
    "JOIN readings AS r ON r.sensor_id = m.id AND r.ts > m.last - :span AND r.ts <= m.last "
    "GROUP BY r.sensor_id, b"
)


def sparklines(
    conn: Connection, sensor_ids: Iterable[int], span: pd.Timedelta, buckets: int
) -> dict[int, list[float | None]]:
    """Per sensor: the mean of each of ``buckets`` equal buckets over the ``span`` that ends at
    its latest reading, oldest first (None: no reading in that bucket). Sensors without
    readings are left out. One statement for all of them."""
    ids = [int(i) for i in dict.fromkeys(sensor_ids)]
    if not ids or buckets < 1:
        return {}
    span_us = int(span.value // 1_000)
    width = max(1, -(-span_us // buckets))
    _no_jit(conn)
    if conn.dialect.name == "sqlite":
        sql, params = _SPARK_SQLITE, {"span": span_us, "width": width}
    else:
        sql, params = _SPARK_PG, {"span_iv": span.to_pytimedelta(), "width": width}
    stmt = text(sql).bindparams(bindparam("ids", expanding=True))
    out: dict[int, list[float | None]] = {}
    for sid, back, mean in conn.execute(stmt, {"ids": ids, **params}):
        line = out.setdefault(int(sid), [None] * buckets)
        back = min(int(back), buckets - 1)  # the first reading of the span sits on its edge
        line[buckets - 1 - back] = float(mean)
    return out


@dataclass(frozen=True, slots=True)
class AssetSummary:
    """One asset as the overview lists it: its members and the unresolved alerts of the asset
    itself, and how many of its sensors have an open alert of their own."""

    asset_id: int
    name: str
    sensors: int
    open_alerts: int
    acknowledged_alerts: int
    alerting_sensors: int


_ASSETS = (
    "SELECT a.id, a.name, "
    "(SELECT count(*) FROM asset_sensors m WHERE m.asset_id = a.id), "
    "(SELECT count(*) FROM alerts x WHERE x.asset_id = a.id AND x.status = :open), "
    "(SELECT count(*) FROM alerts x WHERE x.asset_id = a.id AND x.status = :ack), "
    "(SELECT count(DISTINCT x.sensor_id) FROM alerts x "
    "JOIN asset_sensors m ON m.sensor_id = x.sensor_id "
    "WHERE m.asset_id = a.id AND x.status = :open) "
    "FROM assets a ORDER BY a.name"
)


def asset_summaries(conn: Connection) -> list[AssetSummary]:
    """Every asset, by name, in one statement (its counts are correlated subqueries)."""
    params = {"open": AlertStatus.OPEN.value, "ack": AlertStatus.ACKNOWLEDGED.value}
    return [
        AssetSummary(int(aid), name, int(n), int(n_open), int(n_ack), int(n_sensors))
        for aid, name, n, n_open, n_ack, n_sensors in conn.execute(text(_ASSETS), params).fetchall()
    ]
