"""Injected anomalies on simulated sensors: list the active ones, inject, normalize."""

from __future__ import annotations

import pandas as pd
from fastapi import APIRouter, Request

from plantcast.api.auth import READ, WRITE, actor_of
from plantcast.api.models import EventIn, EventOut, NormalizeOut
from plantcast.api.problems import COMMON, CONFLICT, NOT_FOUND
from plantcast.api.routes.common import SensorName, invalid, store_of
from plantcast.core.timeutil import parse_duration
from plantcast.services.injection import active_events, inject, normalize

router = APIRouter(tags=["events"])
MAX_EVENT = pd.Timedelta("366d")


def _event_out(name: str, e) -> EventOut:
    return EventOut(
        id=e.id,
        sensor=name,
        kind=e.kind,
        starts_at=e.starts_at,
        ends_at=e.ends_at,
        magnitude=e.magnitude,
        note=e.note,
    )


@router.get(
    "/sensors/{name}/events",
    response_model=list[EventOut],
    responses={**COMMON, **NOT_FOUND},
    dependencies=[READ],
)
def list_active_events(request: Request, name: SensorName) -> list[EventOut]:
    """The sensor's injected events active at its next reading."""
    store = store_of(request)
    return [_event_out(name, e) for e in active_events(store, store.get_sensor(name))]


@router.post(
    "/sensors/{name}/events",
    response_model=EventOut,
    status_code=201,
    responses={**COMMON, **NOT_FOUND, **CONFLICT},
    dependencies=[WRITE],
)
def inject_event(request: Request, name: SensorName, body: EventIn) -> EventOut:
    """Inject an anomaly into a simulated sensor from its next reading on (like `inject`)."""
    duration = None if body.duration is None else parse_duration(body.duration, field="duration")
    if duration is not None and duration > MAX_EVENT:
        raise invalid(
            f"duration is longer than the limit of {MAX_EVENT.days} days",
            "duration",
            limit=MAX_EVENT.days,
        )
    event = inject(
        store_of(request),
        name,
        body.kind,
        magnitude=body.magnitude,
        duration=duration,
        note=body.note,
        actor=actor_of(request),
    )
    return _event_out(name, event)


@router.post(
    "/sensors/{name}/normalize",
    response_model=NormalizeOut,
    responses={**COMMON, **NOT_FOUND, **CONFLICT},
    dependencies=[WRITE],
)
def normalize_sensor(request: Request, name: SensorName) -> NormalizeOut:
    """End every active injected event of a simulated sensor (like `normalize`)."""
    ended = normalize(store_of(request), name, actor=actor_of(request))
    return NormalizeOut(sensor=name, ended=ended)
