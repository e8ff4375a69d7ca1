"""Annotations: notes people put on a sensor's chart, at a time or over a range."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd
from sqlalchemy import Connection, Row, Select, func, select

from plantcast.core.errors import NotFound
from plantcast.core.timeutil import TimeLike, to_utc
from plantcast.store.schema import notes, sensors


@dataclass(frozen=True)
class Annotation:
    id: int
    sensor_id: int
    sensor: str
    starts_at: pd.Timestamp
    ends_at: pd.Timestamp | None  # None: a note at one time
    text: str
    author: str
    created_at: pd.Timestamp


_COLUMNS = (*notes.c, sensors.c.name.label("sensor"))


def _to_note(row: Row[Any]) -> Annotation:
    return Annotation(
        id=row.id,
        sensor_id=row.sensor_id,
        sensor=row.sensor,
        starts_at=row.starts_at,
        ends_at=row.ends_at,
        text=row.text,
        author=row.author,
        created_at=row.created_at,
    )


def _select() -> Select[Any]:
    return select(*_COLUMNS).join(sensors, sensors.c.id == notes.c.sensor_id)


def insert_annotation(
    conn: Connection,
    sensor_id: int,
    starts_at: TimeLike,
    ends_at: TimeLike | None,
    text: str,
    author: str,
) -> Annotation:
    values = {
        "sensor_id": sensor_id,
        "starts_at": to_utc(starts_at),
        "ends_at": None if ends_at is None else to_utc(ends_at),
        "text": text,
        "author": author,
    }
    new_id = conn.execute(notes.insert().values(**values)).inserted_primary_key[0]  # type: ignore[index]  # never None after an INSERT
    return get_annotation(conn, int(new_id))


def get_annotation(conn: Connection, annotation_id: int) -> Annotation:
    row = conn.execute(_select().where(notes.c.id == int(annotation_id))).first()
    if row is None:
        raise NotFound(f"no annotation with id {annotation_id}")
    return _to_note(row)


def update_annotation(conn: Connection, /, annotation_id: int, **fields: Any) -> Annotation:
    for key in ("starts_at", "ends_at"):
        if fields.get(key) is not None:
            fields[key] = to_utc(fields[key])
    conn.execute(notes.update().where(notes.c.id == int(annotation_id)).values(**fields))
    return get_annotation(conn, annotation_id)


def delete_annotation(conn: Connection, annotation_id: int) -> None:
    conn.execute(notes.delete().where(notes.c.id == int(annotation_id)))


def list_annotations(
    conn: Connection,
    *,
    sensor_id: int | None = None,
    start: TimeLike | None = None,
    end: TimeLike | None = None,
    limit: int = 500,
) -> list[Annotation]:
    """Oldest first; with ``start``/``end``, those overlapping ``[start, end)``."""
    q = _select()
    if sensor_id is not None:
        q = q.where(notes.c.sensor_id == sensor_id)
    if start is not None:
        ends = func.coalesce(notes.c.ends_at, notes.c.starts_at)
        q = q.where(ends >= to_utc(start))
    if end is not None:
        q = q.where(notes.c.starts_at < to_utc(end))
    q = q.order_by(notes.c.starts_at, notes.c.id).limit(limit)
    return [_to_note(r) for r in conn.execute(q)]
