"""Sensors: create-if-missing, look up by name, list, and their JSON params."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import pandas as pd
from sqlalchemy import Connection, Row, func, select, update

from plantcast.core.errors import NotFound
from plantcast.core.types import Sensor, Source
from plantcast.store.schema import asset_sensors, readings, sensors


def _to_sensor(row: Row[Any]) -> Sensor:
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


def sensor_params(conn: Connection, sensor_id: int) -> dict[str, Any]:
    raw = conn.execute(select(sensors.c.params).where(sensors.c.id == sensor_id)).scalar_one()
    params: dict[str, Any] = json.loads(raw or "{}")
    return params


def update_params(conn: Connection, sensor_id: int, changes: dict[str, Any]) -> dict[str, Any]:
    """Merge ``changes`` into a sensor's params (other keys kept); returns the new params."""
    query = select(sensors.c.params).where(sensors.c.id == sensor_id).with_for_update()
    raw = conn.execute(query).scalar_one_or_none()
    if raw is None:
        raise NotFound(f"no sensor with id {sensor_id}")
    params = {**json.loads(raw or "{}"), **changes}
    conn.execute(update(sensors).where(sensors.c.id == sensor_id).values(params=json.dumps(params)))
    return params


def params_and_last_ts(
    conn: Connection, sensor_id: int
) -> tuple[dict[str, Any], pd.Timestamp | None]:
    """A sensor's params and its last reading's time, in one query (an index lookup)."""
    last = select(func.max(readings.c.ts)).where(readings.c.sensor_id == sensor_id)
    query = select(sensors.c.params, last.scalar_subquery().label("last_ts")).where(
        sensors.c.id == sensor_id
    )
    row = conn.execute(query).first()
    if row is None:
        raise NotFound(f"no sensor with id {sensor_id}")
    return json.loads(row.params or "{}"), row.last_ts


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
    params: dict[str, Any] | None = None,
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


def set_interval(conn: Connection, sensor_id: int, interval: pd.Timedelta) -> None:
    """Set a sensor's nominal interval (an import learns it from the file it writes)."""
    conn.execute(
        update(sensors).where(sensors.c.id == sensor_id).values(interval_s=interval.total_seconds())
    )


def drop_sensor_if_empty(conn: Connection, sensor_id: int) -> bool:
    """Delete a sensor that holds no reading (an import that made it and then failed) and
    belongs to no asset (an asset named it meanwhile: it stays, empty)."""
    no_readings = ~select(readings.c.sensor_id).where(readings.c.sensor_id == sensor_id).exists()
    no_asset = (
        ~select(asset_sensors.c.sensor_id).where(asset_sensors.c.sensor_id == sensor_id).exists()
    )
    gone = conn.execute(sensors.delete().where(sensors.c.id == sensor_id, no_readings, no_asset))
    return bool(gone.rowcount)


def set_clock(conn: Connection, sensor_id: int, ts: pd.Timestamp) -> None:
    """Record how far a streamer's simulated clock has run for this sensor."""
    conn.execute(update(sensors).where(sensors.c.id == sensor_id).values(clock=ts))


def get_clock(conn: Connection, sensor_id: int) -> pd.Timestamp | None:
    return conn.execute(select(sensors.c.clock).where(sensors.c.id == sensor_id)).scalar()


def set_clocks(conn: Connection, sensor_ids: list[int], clocks_us: list[int]) -> None:
    """:func:`set_clock` for many sensors in one statement (a streamer's tick); epoch µs."""
    if not sensor_ids:
        return
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql(
            "UPDATE sensors SET clock = ? WHERE id = ?",
            list(zip(clocks_us, sensor_ids, strict=True)),
        )
    else:
        conn.exec_driver_sql(
            "UPDATE sensors SET clock = timestamptz 'epoch' + c.us * interval '1 microsecond' "
            "FROM unnest(%s::integer[], %s::bigint[]) AS c(id, us) WHERE sensors.id = c.id",
            (list(sensor_ids), list(clocks_us)),
        )


def sensors_by_name(
    conn: Connection, names: Iterable[str]
) -> dict[str, tuple[Sensor, dict[str, Any]]]:
    """The named sensors that exist, with their params: ``{name: (sensor, params)}``."""
    names = list(dict.fromkeys(names))
    out: dict[str, tuple[Sensor, dict[str, Any]]] = {}
    for lo in range(0, len(names), 500):
        q = select(sensors).where(sensors.c.name.in_(names[lo : lo + 500]))
        for r in conn.execute(q):
            out[r.name] = (_to_sensor(r), json.loads(r.params or "{}"))
    return out


def clocks_many(conn: Connection, sensor_ids: Iterable[int]) -> dict[int, pd.Timestamp]:
    """The streamer clocks that are set, of these sensors: ``{sensor_id: clock}``."""
    ids = [int(i) for i in dict.fromkeys(sensor_ids)]
    out: dict[int, pd.Timestamp] = {}
    for lo in range(0, len(ids), 500):
        q = select(sensors.c.id, sensors.c.clock).where(sensors.c.id.in_(ids[lo : lo + 500]))
        out.update({r.id: r.clock for r in conn.execute(q) if r.clock is not None})
    return out
