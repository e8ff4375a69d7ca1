"""Operator-injected anomalies: write an event for the streamer to apply; normalize ends them."""

from __future__ import annotations

import pandas as pd

from plantcast.core.errors import InputError, Refused
from plantcast.core.timeutil import utcnow
from plantcast.core.types import Event, EventKind, Sensor, Source
from plantcast.services.audit import SYSTEM, jsonable
from plantcast.store import Store

# The demo's buttons: "Simulate Pressure Spike" adds this offset until "Normalize Pressure".
DEMO_SPIKE_MAGNITUDE = 20.0
_NEEDS_DURATION = {EventKind.DRIFT}
_NEEDS_MAGNITUDE = {
    EventKind.LEVEL_SHIFT,
    EventKind.SPIKE,
    EventKind.DRIFT,
    EventKind.NOISE_BURST,
}
_EPS = pd.Timedelta(microseconds=1)


def _simulated(store: Store, name: str) -> Sensor:
    sensor = store.get_sensor(name)
    if sensor.source is not Source.SIMULATED:
        raise Refused(
            f"sensor {name!r} holds {sensor.source.value} data; injection is allowed on "
            "simulated sensors only (imported and live data are never altered)"
        )
    return sensor


def _next_reading_time(store: Store, sensor: Sensor) -> pd.Timestamp:
    """Just after the sensor's data time: the event applies from the next reading on."""
    last = store.data_time(sensor.id)
    return (last if last is not None else utcnow()) + _EPS


def inject(
    store: Store,
    sensor_name: str,
    kind: EventKind | str,
    *,
    magnitude: float = 0.0,
    duration: pd.Timedelta | None = None,
    note: str = "",
    actor: str = SYSTEM,
) -> Event:
    """Store an event on a simulated sensor, starting at its next reading.

    ``duration`` is simulated time; without one, the event lasts until :func:`normalize`
    (a ``spike`` lasts one reading, a ``drift`` needs a duration).
    """
    try:
        kind = EventKind(kind)
    except ValueError:
        choices = ", ".join(k.value for k in EventKind)
        raise InputError(f"unknown kind {kind!r}; choose one of {choices}", field="kind") from None
    sensor = _simulated(store, sensor_name)
    if kind in _NEEDS_DURATION and duration is None:
        raise InputError(f"a {kind.value} needs --duration (e.g. 6h)", field="duration")
    if kind in _NEEDS_MAGNITUDE and magnitude == 0:
        raise InputError(f"a {kind.value} needs a non-zero --magnitude", field="magnitude")
    if duration is not None and duration <= pd.Timedelta(0):
        raise InputError("duration must be positive", field="duration")
    if kind is EventKind.SPIKE and duration is None:
        duration = sensor.interval
    starts = _next_reading_time(store, sensor)
    ends = None if duration is None else starts + duration
    with store.transaction() as tx:
        event = tx.add_event(
            sensor.id, kind, starts, ends_at=ends, magnitude=float(magnitude), note=note
        )
        made = {"kind": kind.value, "starts_at": starts, "ends_at": ends}
        made |= {"magnitude": float(magnitude), "note": note}
        tx.audit(actor, "event.inject", f"sensor:{sensor.name}", None, jsonable(made))
    return event


def normalize(store: Store, sensor_name: str, *, actor: str = SYSTEM) -> int:
    """End every event of the sensor still active; returns how many were ended."""
    sensor = _simulated(store, sensor_name)
    at = _next_reading_time(store, sensor)
    with store.transaction() as tx:
        ended = tx.end_open_events(sensor.id, at)
        after = jsonable({"ended": ended, "at": at})
        tx.audit(actor, "event.normalize", f"sensor:{sensor.name}", None, after)
    return ended


def active_events(store: Store, sensor: Sensor) -> list[Event]:
    at = _next_reading_time(store, sensor)
    return [e for e in store.events_overlapping(sensor.id, at, at + _EPS) if e.active_at(at)]
