"""Assets: named groups of sensors (``assets``) and their members (``asset_sensors``).

Row functions only; the rules (a known sensor, never an asset without sensors, a valid name)
are ``plantcast.services.assets``'s, which calls these inside one transaction.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pandas as pd
from sqlalchemy import Connection, Row, func, select

from plantcast.core.errors import NotFound, Refused
from plantcast.core.timeutil import TimeLike, to_utc
from plantcast.core.types import Asset, Sensor
from plantcast.store.catalog import _to_sensor
from plantcast.store.schema import asset_sensors, assets, sensors


def _members(conn: Connection, asset_ids: list[int]) -> dict[int, list[Sensor]]:
    """Each asset's sensors in the order they joined: one statement per 500 assets."""
    out: dict[int, list[Sensor]] = {i: [] for i in asset_ids}
    for lo in range(0, len(asset_ids), 500):
        q = (
            select(asset_sensors.c.asset_id, sensors)
            .join(sensors, sensors.c.id == asset_sensors.c.sensor_id)
            .where(asset_sensors.c.asset_id.in_(asset_ids[lo : lo + 500]))
            .order_by(asset_sensors.c.asset_id, asset_sensors.c.position)
        )
        for r in conn.execute(q):
            out[r.asset_id].append(_to_sensor(r))
    return out


def _to_asset(row: Row[Any], members: list[Sensor]) -> Asset:
    return Asset(
        id=row.id,
        name=row.name,
        description=row.description,
        step=None if row.step_s is None else pd.Timedelta(seconds=row.step_s),
        train_from=row.train_from,
        train_to=row.train_to,
        created_at=row.created_at,
        sensors=tuple(members),
    )


def find_asset(conn: Connection, name: str) -> Asset | None:
    row = conn.execute(select(assets).where(assets.c.name == name)).first()
    if row is None:
        return None
    return _to_asset(row, _members(conn, [row.id])[row.id])


def get_asset(conn: Connection, name: str) -> Asset:
    found = find_asset(conn, name)
    if found is None:
        known = [r.name for r in conn.execute(select(assets.c.name).order_by(assets.c.name))]
        hint = f"; known assets: {', '.join(known)}" if known else "; the store has no assets"
        raise NotFound(f"no asset named {name!r}{hint}")
    return found


def list_assets(conn: Connection) -> list[Asset]:
    rows = conn.execute(select(assets).order_by(assets.c.name)).all()
    members = _members(conn, [r.id for r in rows])
    return [_to_asset(r, members[r.id]) for r in rows]


def assets_of_sensor(conn: Connection, sensor_id: int) -> list[str]:
    """The names of the assets a sensor belongs to, sorted."""
    q = (
        select(assets.c.name)
        .join(asset_sensors, asset_sensors.c.asset_id == assets.c.id)
        .where(asset_sensors.c.sensor_id == sensor_id)
        .order_by(assets.c.name)
    )
    return list(conn.execute(q).scalars())


def insert_asset(
    conn: Connection,
    name: str,
    sensor_ids: Iterable[int],
    *,
    step: pd.Timedelta | None = None,
    description: str = "",
) -> Asset:
    """A new asset with these members; an asset of that name already there is refused."""
    if find_asset(conn, name) is not None:
        raise Refused(f"asset {name!r} already exists")
    step_s = None if step is None else step.total_seconds()
    result = conn.execute(assets.insert().values(name=name, description=description, step_s=step_s))
    asset_id = int(result.inserted_primary_key[0])  # type: ignore[index]  # never None after an INSERT
    add_members(conn, asset_id, sensor_ids)
    return get_asset(conn, name)


def add_members(conn: Connection, asset_id: int, sensor_ids: Iterable[int]) -> int:
    """Add sensors after the asset's last one (members already there are skipped); returns
    how many joined."""
    have = {
        int(i)
        for i in conn.execute(
            select(asset_sensors.c.sensor_id).where(asset_sensors.c.asset_id == asset_id)
        ).scalars()
    }
    new = [int(i) for i in dict.fromkeys(sensor_ids) if int(i) not in have]
    if not new:
        return 0
    last = conn.execute(
        select(func.max(asset_sensors.c.position)).where(asset_sensors.c.asset_id == asset_id)
    ).scalar()
    start = -1 if last is None else int(last)
    rows = [
        {"asset_id": asset_id, "sensor_id": sid, "position": start + 1 + k}
        for k, sid in enumerate(new)
    ]
    conn.execute(asset_sensors.insert(), rows)
    return len(rows)


def remove_members(conn: Connection, asset_id: int, sensor_ids: Iterable[int]) -> int:
    """Take sensors out of an asset; returns how many were members."""
    ids = [int(i) for i in dict.fromkeys(sensor_ids)]
    if not ids:
        return 0
    gone = conn.execute(
        asset_sensors.delete().where(
            asset_sensors.c.asset_id == asset_id, asset_sensors.c.sensor_id.in_(ids)
        )
    )
    return int(gone.rowcount)


def delete_asset(conn: Connection, asset_id: int) -> None:
    """An asset and its memberships (its sensors and their readings stay)."""
    conn.execute(asset_sensors.delete().where(asset_sensors.c.asset_id == asset_id))
    conn.execute(assets.delete().where(assets.c.id == asset_id))


def set_training(
    conn: Connection, asset_id: int, start: TimeLike | None, end: TimeLike | None
) -> None:
    """Pin (or, with None and None, clear) an asset's known-good training period."""
    conn.execute(
        assets.update()
        .where(assets.c.id == asset_id)
        .values(
            train_from=None if start is None else to_utc(start),
            train_to=None if end is None else to_utc(end),
        )
    )


def set_step(conn: Connection, asset_id: int, step: pd.Timedelta | None) -> None:
    """Set an asset's grid step (None: follow the slowest member's interval)."""
    step_s = None if step is None else step.total_seconds()
    conn.execute(assets.update().where(assets.c.id == asset_id).values(step_s=step_s))
