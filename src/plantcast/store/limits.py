"""Per-sensor alarm limits (low-low, low, high, high-high and a deadband): their rows."""

from __future__ import annotations

import weakref
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

import pandas as pd
from sqlalchemy import Connection, Engine, Row, inspect, select

from plantcast.core.timeutil import to_utc, utcnow
from plantcast.store.schema import sensor_limits

LEVELS = ("low_low", "low", "high", "high_high")


@dataclass(frozen=True)
class Limits:
    sensor_id: int
    low_low: float | None = None
    low: float | None = None
    high: float | None = None
    high_high: float | None = None
    deadband: float = 0.0
    updated_at: pd.Timestamp | None = None
    updated_by: str = ""

    def levels(self) -> dict[str, float]:
        """The limits that are set, ``{level: value}``, low-low first."""
        return {k: v for k in LEVELS if (v := getattr(self, k)) is not None}

    def fields(self) -> dict[str, Any]:
        """What a change of limits changes (for the audit log)."""
        return {k: v for k, v in asdict(self).items() if k in (*LEVELS, "deadband")}


def _to_limits(row: Row[Any]) -> Limits:
    return Limits(
        sensor_id=row.sensor_id,
        low_low=row.low_low,
        low=row.low,
        high=row.high,
        high_high=row.high_high,
        deadband=row.deadband,
        updated_at=row.updated_at,
        updated_by=row.updated_by,
    )


def get_limits(conn: Connection, sensor_id: int) -> Limits | None:
    row = conn.execute(select(sensor_limits).where(sensor_limits.c.sensor_id == sensor_id)).first()
    return None if row is None else _to_limits(row)


_HAS_TABLE: weakref.WeakSet[Engine] = weakref.WeakSet()


def _has_table(conn: Connection) -> bool:
    """A database made before limits existed has none until `plantcast init`."""
    if conn.engine not in _HAS_TABLE:
        if not inspect(conn).has_table(sensor_limits.name):
            return False
        _HAS_TABLE.add(conn.engine)
    return True


def limits_many(conn: Connection, sensor_ids: Iterable[int] | None = None) -> dict[int, Limits]:
    """The limits of these sensors (all sensors with limits when None), by sensor id; none
    in a database without the table yet."""
    if not _has_table(conn):
        return {}
    q = select(sensor_limits)
    if sensor_ids is None:
        return {r.sensor_id: _to_limits(r) for r in conn.execute(q)}
    ids = [int(i) for i in dict.fromkeys(sensor_ids)]
    out: dict[int, Limits] = {}
    for lo in range(0, len(ids), 500):
        part = q.where(sensor_limits.c.sensor_id.in_(ids[lo : lo + 500]))
        out.update({r.sensor_id: _to_limits(r) for r in conn.execute(part)})
    return out


def put_limits(conn: Connection, limits: Limits, author: str) -> Limits:
    values = {**limits.fields(), "updated_at": to_utc(utcnow()), "updated_by": author}
    where = sensor_limits.c.sensor_id == limits.sensor_id
    if conn.execute(sensor_limits.update().where(where).values(**values)).rowcount == 0:
        conn.execute(sensor_limits.insert().values(sensor_id=limits.sensor_id, **values))
    found = get_limits(conn, limits.sensor_id)
    assert found is not None
    return found


def delete_limits(conn: Connection, sensor_id: int) -> None:
    conn.execute(sensor_limits.delete().where(sensor_limits.c.sensor_id == sensor_id))
