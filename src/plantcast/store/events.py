"""Events: operator-injected anomalies, stored so every process sees the same data."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pandas as pd
from sqlalchemy import Connection, Row, and_, or_, select

from plantcast.core.timeutil import TimeLike, to_utc
from plantcast.core.types import Event, EventKind
from plantcast.store.schema import events


def _to_event(row: Row[Any]) -> Event:
    return Event(
        id=row.id,
        sensor_id=row.sensor_id,
        kind=EventKind(row.kind),
        starts_at=row.starts_at,
        ends_at=row.ends_at,
        magnitude=row.magnitude,
        note=row.note,
    )


def add_event(
    conn: Connection,
    sensor_id: int,
    kind: EventKind,
    starts_at: TimeLike,
    ends_at: TimeLike | None = None,
    magnitude: float = 0.0,
    note: str = "",
) -> Event:
    result = conn.execute(
        events.insert().values(
            sensor_id=sensor_id,
            kind=str(kind),
            starts_at=to_utc(starts_at),
            ends_at=None if ends_at is None else to_utc(ends_at),
            magnitude=float(magnitude),
            note=note,
        )
    )
    row = conn.execute(select(events).where(events.c.id == result.inserted_primary_key[0])).one()  # type: ignore[index]  # never None after an INSERT
    return _to_event(row)


def events_overlapping(
    conn: Connection, sensor_id: int, start: TimeLike, end: TimeLike
) -> list[Event]:
    """Events active at any time in ``[start, end)`` (open-ended ones included)."""
    start, end = to_utc(start), to_utc(end)
    q = (
        select(events)
        .where(
            and_(
                events.c.sensor_id == sensor_id,
                events.c.starts_at < end,
                or_(events.c.ends_at.is_(None), events.c.ends_at > start),
            )
        )
        .order_by(events.c.starts_at, events.c.id)
    )
    return [_to_event(r) for r in conn.execute(q)]


def events_of_sensors(
    conn: Connection, sensor_ids: Iterable[int], start: TimeLike, end: TimeLike
) -> dict[int, list[Event]]:
    """Events of the given sensors active at any time in ``[start, end)``, by sensor id.

    One query over the window; the sensor filter is applied here, not as thousands of bind
    parameters (events are few; a window holds few of them).
    """
    start, end = to_utc(start), to_utc(end)
    wanted = {int(s) for s in sensor_ids}
    q = (
        select(events)
        .where(
            and_(
                events.c.starts_at < end,
                or_(events.c.ends_at.is_(None), events.c.ends_at > start),
            )
        )
        .order_by(events.c.starts_at, events.c.id)
    )
    found: dict[int, list[Event]] = {}
    for row in conn.execute(q):
        if row.sensor_id in wanted:
            found.setdefault(row.sensor_id, []).append(_to_event(row))
    return found


def end_open_events(conn: Connection, sensor_id: int, at: pd.Timestamp) -> int:
    """Close every event of the sensor still active at ``at`` (ends_at NULL or later)."""
    at = to_utc(at)
    q = events.update().where(
        and_(
            events.c.sensor_id == sensor_id,
            events.c.starts_at <= at,
            or_(events.c.ends_at.is_(None), events.c.ends_at > at),
        )
    )
    return conn.execute(q.values(ends_at=at)).rowcount
