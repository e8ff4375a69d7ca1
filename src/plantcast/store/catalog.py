"""Sensors: create-if-missing, look up by name, list."""

from __future__ import annotations

import json

import pandas as pd
from sqlalchemy import Connection, select, update

from plantcast.core.errors import NotFound
from plantcast.core.types import Sensor, Source
from plantcast.store.schema import sensors


def _to_sensor(row) -> Sensor:
    return Sensor(
        id=row.id,
        name=row.name,
        unit=row.unit,
        description=row.description,
        source=Source(row.source),
        interval=pd.Timedelta(seconds=row.interval_s),
        created_at=row.created_at,
    )


def get_sensor(conn: Connection, name: str) -> Sensor:
    row = conn.execute(select(sensors).where(sensors.c.name == name)).first()
    if row is None:
        known = [r.name for r in conn.execute(select(sensors.c.name).order_by(sensors.c.name))]
        hint = f"; known sensors: {', '.join(known)}" if known else "; the store has no sensors"
        raise NotFound(f"no sensor named {name!r}{hint}")
    return _to_sensor(row)


def sensor_params(conn: Connection, sensor_id: int) -> dict:
    raw = conn.execute(select(sensors.c.params).where(sensors.c.id == sensor_id)).scalar_one()
    return json.loads(raw or "{}")


def list_sensors(conn: Connection) -> list[Sensor]:
    return [_to_sensor(r) for r in conn.execute(select(sensors).order_by(sensors.c.name))]


def ensure_sensor(
    conn: Connection,
    name: str,
    *,
    source: Source,
    interval: pd.Timedelta,
    unit: str = "",
    description: str = "",
    params: dict | None = None,
) -> Sensor:
    """Return the sensor named ``name``, creating it with these attributes if it is missing."""
    row = conn.execute(select(sensors).where(sensors.c.name == name)).first()
    if row is None:
        conn.execute(
            sensors.insert().values(
                name=name,
                unit=unit,
                description=description,
                source=str(source),
                interval_s=interval.total_seconds(),
                params=json.dumps(params or {}),
            )
        )
        row = conn.execute(select(sensors).where(sensors.c.name == name)).one()
    return _to_sensor(row)


def set_clock(conn: Connection, sensor_id: int, ts: pd.Timestamp) -> None:
    """Record how far a streamer's simulated clock has run for this sensor."""
    conn.execute(update(sensors).where(sensors.c.id == sensor_id).values(clock=ts))


def get_clock(conn: Connection, sensor_id: int) -> pd.Timestamp | None:
    return conn.execute(select(sensors.c.clock).where(sensors.c.id == sensor_id)).scalar()
