"""Annotations: notes on a sensor at a time or over a range ("seal replaced on pump 3"), drawn
on its charts; every change with its audit entry."""

from __future__ import annotations

from typing import Any

import pandas as pd

from plantcast.core.errors import InputError
from plantcast.core.timeutil import TimeLike, to_utc, utcnow
from plantcast.services.audit import jsonable
from plantcast.store import Store
from plantcast.store.notes import Annotation

__all__ = ["Annotation", "annotate", "delete_annotation", "edit_annotation", "sensor_annotations"]
MAX_TEXT = 2000


def _text(text: str) -> str:
    text = (text or "").strip()
    if not text:
        raise InputError("an annotation needs a text", field="text")
    if len(text) > MAX_TEXT:
        raise InputError(f"the text is longer than {MAX_TEXT} characters", field="text")
    return text


def _fields(n: Annotation) -> dict:
    return (
        jsonable(
            {"sensor": n.sensor, "starts_at": n.starts_at, "ends_at": n.ends_at, "text": n.text}
        )
        or {}
    )


def _span(at: TimeLike | None, end: TimeLike | None) -> tuple[pd.Timestamp, pd.Timestamp | None]:
    starts = utcnow().floor("s") if at is None else to_utc(at)
    ends = None if end is None else to_utc(end)
    if ends is not None and ends < starts:
        raise InputError(f"the end {ends} is before the start {starts}", field="end")
    return starts, ends


def annotate(
    store: Store,
    sensor_name: str,
    text: str,
    *,
    author: str,
    at: TimeLike | None = None,
    end: TimeLike | None = None,
) -> Annotation:
    """A note on the sensor at ``at`` (now by default), or over ``at`` to ``end``."""
    text = _text(text)
    starts, ends = _span(at, end)
    with store.transaction() as tx:
        sensor = tx.get_sensor(sensor_name)
        made = tx.insert_annotation(sensor.id, starts, ends, text, author)
        tx.audit(author, "annotation.add", f"annotation:{made.id}", None, _fields(made))
    return made


def edit_annotation(
    store: Store,
    annotation_id: int,
    *,
    author: str,
    text: str | None = None,
    at: TimeLike | None = None,
    end: TimeLike | None = None,
) -> Annotation:
    """Change a note's text or time (what is not given stays)."""
    with store.transaction() as tx:
        before = tx.get_annotation(annotation_id)
        starts = before.starts_at if at is None else to_utc(at)
        ends = before.ends_at if end is None else to_utc(end)
        if ends is not None and ends < starts:
            raise InputError(f"the end {ends} is before the start {starts}", field="end")
        changes: dict[str, Any] = {"text": before.text if text is None else _text(text)}
        changes |= {"starts_at": starts, "ends_at": ends}
        after = tx.update_annotation(annotation_id, **changes)
        old, new = _fields(before), _fields(after)
        keys = [k for k in new if old.get(k) != new.get(k)]
        tx.audit(
            author,
            "annotation.edit",
            f"annotation:{annotation_id}",
            {k: old.get(k) for k in keys},
            {k: new[k] for k in keys},
        )
    return after


def delete_annotation(store: Store, annotation_id: int, *, author: str) -> Annotation:
    with store.transaction() as tx:
        gone = tx.get_annotation(annotation_id)
        tx.delete_annotation(annotation_id)
        tx.audit(author, "annotation.delete", f"annotation:{annotation_id}", _fields(gone), None)
    return gone


def get_annotation(store: Store, annotation_id: int) -> Annotation:
    with store.transaction(readonly=True) as tx:
        return tx.get_annotation(annotation_id)


def list_annotations(
    store: Store,
    *,
    sensor: str | None = None,
    start: TimeLike | None = None,
    end: TimeLike | None = None,
    limit: int = 500,
) -> list[Annotation]:
    """Oldest first; with a sensor, its notes; with ``start``/``end``, those overlapping."""
    with store.transaction(readonly=True) as tx:
        sensor_id = None if sensor is None else tx.get_sensor(sensor).id
        return tx.list_annotations(sensor_id=sensor_id, start=start, end=end, limit=limit)


def sensor_annotations(
    store: Store, sensor_name: str, start: TimeLike, end: TimeLike
) -> list[Annotation]:
    """A sensor's notes overlapping ``[start, end)``, oldest first: what a chart draws."""
    return list_annotations(store, sensor=sensor_name, start=start, end=end)
