"""Silences (maintenance windows), annotations and per-sensor limits: list and change them;
each change is audited under the request's actor (``plantcast.services``)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import pandas as pd
from fastapi import APIRouter, Path, Query, Request, Response

from plantcast.api.auth import READ, actor_of, require
from plantcast.api.models import (
    AnnotationIn,
    AnnotationOut,
    AnnotationPatch,
    LimitsIn,
    LimitsOut,
    Rfc3339,
    SilenceIn,
    SilenceOut,
    SilenceWindowOut,
)
from plantcast.api.problems import COMMON, CONFLICT, NOT_FOUND
from plantcast.api.routes.common import NO_NUL, SensorName, invalid, store_of, utc
from plantcast.core.timeutil import utcnow
from plantcast.services import limits, notes, silences

router = APIRouter(tags=["silences, annotations, limits"])
SILENCE = require("silence")
ANNOTATE = require("annotation")
LIMIT = require("limit")
Id = Annotated[int, Path(ge=1, le=2**31 - 1)]
AROUND = pd.Timedelta("7d")  # a sensor's silences without a range: a week either side of now


def _silence_out(s, now: pd.Timestamp) -> SilenceOut:
    return SilenceOut(
        id=s.id,
        scope=s.scope,
        target=s.target,
        starts_at=s.starts_at,
        ends_at=s.ends_at,
        recurrence=s.recurrence,
        reason=s.reason,
        author=s.author,
        created_at=s.created_at,
        ended_at=s.ended_at,
        active=s.covers(now),
    )


def _range(start: datetime | None, end: datetime | None) -> tuple[pd.Timestamp, pd.Timestamp]:
    now = utcnow()
    a = utc(start, "start") if start is not None else now - AROUND
    b = utc(end, "end") if end is not None else now + AROUND
    if b <= a:
        raise invalid("end must be after start", "end")
    return a, b


@router.get("/silences", response_model=list[SilenceOut], responses=COMMON, dependencies=[READ])
def list_silences(
    request: Request,
    include_past: Annotated[bool, Query(alias="all", description="Those over too")] = False,
) -> list[SilenceOut]:
    """Silences newest first: those current or to come (``?all=true``: every one)."""
    now = utcnow()
    found = silences.list_silences(store_of(request), include_past=include_past, at=now)
    return [_silence_out(s, now) for s in found]


@router.post(
    "/silences",
    response_model=SilenceOut,
    status_code=201,
    responses={**COMMON, **NOT_FOUND},
    dependencies=[SILENCE],
)
def add_silence(request: Request, body: SilenceIn) -> SilenceOut:
    """Silence a sensor, an asset or everything: alerts are recorded, marked silenced, and no
    notification leaves for them."""
    made = silences.add_silence(
        store_of(request),
        sensor=body.sensor,
        asset=body.asset,
        everything=body.all,
        reason=body.reason,
        author=actor_of(request),
        start=None if body.start is None else utc(body.start, "start"),
        end=None if body.end is None else utc(body.end, "end"),
        duration=body.duration,
        every=body.every,
    )
    return _silence_out(made, utcnow())


@router.get(
    "/silences/{silence_id}",
    response_model=SilenceOut,
    responses={**COMMON, **NOT_FOUND},
    dependencies=[READ],
)
def get_silence(request: Request, silence_id: Id) -> SilenceOut:
    return _silence_out(silences.get_silence(store_of(request), silence_id), utcnow())


@router.post(
    "/silences/{silence_id}/end",
    response_model=SilenceOut,
    responses={**COMMON, **NOT_FOUND, **CONFLICT},
    dependencies=[SILENCE],
)
def end_silence(request: Request, silence_id: Id) -> SilenceOut:
    """End a silence now (409 when it is already over)."""
    ended = silences.end_silence(store_of(request), silence_id, author=actor_of(request))
    return _silence_out(ended, utcnow())


@router.get(
    "/sensors/{name}/silences",
    response_model=list[SilenceWindowOut],
    responses={**COMMON, **NOT_FOUND},
    dependencies=[READ],
)
def sensor_silences(
    request: Request,
    name: SensorName,
    start: Annotated[Rfc3339 | None, Query(description="Default: a week ago")] = None,
    end: Annotated[Rfc3339 | None, Query(description="Default: a week ahead")] = None,
) -> list[SilenceWindowOut]:
    """The sensor's silenced spans in the range (its own silences, its assets', everyone's),
    clipped to it, in time order: what its chart shades."""
    a, b = _range(start, end)
    return [
        SilenceWindowOut(
            silence_id=w.silence.id,
            start=w.start,
            end=w.end,
            scope=w.silence.scope,
            reason=w.silence.reason,
        )
        for w in silences.sensor_silences(store_of(request), name, a, b)
    ]


# -- annotations ---------------------------------------------------------------------------
def _note_out(n) -> AnnotationOut:
    return AnnotationOut(
        id=n.id,
        sensor=n.sensor,
        starts_at=n.starts_at,
        ends_at=n.ends_at,
        text=n.text,
        author=n.author,
        created_at=n.created_at,
    )


@router.get(
    "/annotations",
    response_model=list[AnnotationOut],
    responses={**COMMON, **NOT_FOUND},
    dependencies=[READ],
)
def list_annotations(
    request: Request,
    sensor: Annotated[str | None, Query(min_length=1, max_length=200, pattern=NO_NUL)] = None,
    start: Rfc3339 | None = None,
    end: Rfc3339 | None = None,
) -> list[AnnotationOut]:
    """Annotations oldest first; of a sensor; overlapping ``start`` to ``end``."""
    found = notes.list_annotations(
        store_of(request),
        sensor=sensor,
        start=None if start is None else utc(start, "start"),
        end=None if end is None else utc(end, "end"),
    )
    return [_note_out(n) for n in found]


@router.post(
    "/annotations",
    response_model=AnnotationOut,
    status_code=201,
    responses={**COMMON, **NOT_FOUND},
    dependencies=[ANNOTATE],
)
def add_annotation(request: Request, body: AnnotationIn) -> AnnotationOut:
    """A note on a sensor at a time (default now) or over a range."""
    made = notes.annotate(
        store_of(request),
        body.sensor,
        body.text,
        author=actor_of(request),
        at=None if body.at is None else utc(body.at, "at"),
        end=None if body.end is None else utc(body.end, "end"),
    )
    return _note_out(made)


@router.patch(
    "/annotations/{annotation_id}",
    response_model=AnnotationOut,
    responses={**COMMON, **NOT_FOUND},
    dependencies=[ANNOTATE],
)
def edit_annotation(request: Request, annotation_id: Id, body: AnnotationPatch) -> AnnotationOut:
    """Change a note's text or time (what is not given stays)."""
    edited = notes.edit_annotation(
        store_of(request),
        annotation_id,
        author=actor_of(request),
        text=body.text,
        at=None if body.at is None else utc(body.at, "at"),
        end=None if body.end is None else utc(body.end, "end"),
    )
    return _note_out(edited)


@router.delete(
    "/annotations/{annotation_id}",
    status_code=204,
    responses={**COMMON, **NOT_FOUND},
    dependencies=[ANNOTATE],
)
def delete_annotation(request: Request, annotation_id: Id) -> Response:
    notes.delete_annotation(store_of(request), annotation_id, author=actor_of(request))
    return Response(status_code=204)


# -- limits --------------------------------------------------------------------------------
def _limits_out(name: str, lim) -> LimitsOut:
    if lim is None:
        return LimitsOut(sensor=name)
    return LimitsOut(
        sensor=name, **lim.fields(), updated_at=lim.updated_at, updated_by=lim.updated_by
    )


@router.get(
    "/sensors/{name}/limits",
    response_model=LimitsOut,
    responses={**COMMON, **NOT_FOUND},
    dependencies=[READ],
)
def get_limits(request: Request, name: SensorName) -> LimitsOut:
    """The sensor's limits (every level null: none set)."""
    return _limits_out(name, limits.sensor_limits(store_of(request), name))


@router.put(
    "/sensors/{name}/limits",
    response_model=LimitsOut,
    responses={**COMMON, **NOT_FOUND},
    dependencies=[LIMIT],
)
def put_limits(request: Request, name: SensorName, body: LimitsIn) -> LimitsOut:
    """Set the sensor's limits, all of them (a null level is not set)."""
    levels = {k: getattr(body, k) for k in limits.LEVELS}
    made = limits.set_limits(
        store_of(request), name, author=actor_of(request), levels=levels, deadband=body.deadband
    )
    return _limits_out(name, made)


@router.delete(
    "/sensors/{name}/limits",
    status_code=204,
    responses={**COMMON, **NOT_FOUND},
    dependencies=[LIMIT],
)
def clear_limits(request: Request, name: SensorName) -> Response:
    limits.clear_limits(store_of(request), name, author=actor_of(request))
    return Response(status_code=204)
