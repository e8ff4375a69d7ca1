"""The simulated PLC's signal source: sensor models and injected events, ticking in real time.

``simulate-plc mqtt`` and ``simulate-plc opcua`` publish what this produces, so the demo's data
reaches the store through a real protocol and a real connector. The values are those the
streamer would write (the same :mod:`plantcast.signals` models and
:func:`plantcast.ingest.simulated.simulate` with the stored events), stamped in real time; with
``step`` longer than ``interval`` the clock is accelerated the way ``plantcast stream`` is.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import pandas as pd

from plantcast.core.errors import StoreUnavailable
from plantcast.core.timeutil import floor_to, utcnow
from plantcast.core.types import Event
from plantcast.ingest.simulated import simulate, stored_model
from plantcast.signals import SignalModel
from plantcast.signals.presets import DEMO_SENSORS, model_for
from plantcast.store import Store

log = logging.getLogger(__name__)

# (sensor names, start, end) -> the events of those sensors overlapping [start, end)
EventSource = Callable[[list[str], pd.Timestamp, pd.Timestamp], dict[str, list[Event]]]


@dataclass(frozen=True)
class PlcReading:
    sensor: str
    ts: pd.Timestamp
    value: float


@dataclass
class _Tag:
    name: str
    model: SignalModel
    last_value: float | None = None
    events: list[Event] = field(default_factory=list)


class StoredEvents:
    """Injected events read from a store (``plantcast inject`` writes them there).

    Best effort, like the streamer: while the database is away the last known events apply.
    Sensors missing from the store have none.
    """

    def __init__(self, store: Store) -> None:
        self.store = store
        self._ids: dict[str, int] = {}
        self._last: dict[str, list[Event]] = {}

    def __call__(self, names, start, end) -> dict[str, list[Event]]:
        try:
            if len(self._ids) < len(names):
                known = {s.name: s.id for s in self.store.list_sensors()}
                self._ids = {n: known[n] for n in names if n in known}
            found = self.store.events_of_sensors(list(self._ids.values()), start, end)
        except StoreUnavailable:
            return self._last
        by_id = {i: n for n, i in self._ids.items()}
        self._last = {by_id[i]: evs for i, evs in found.items() if i in by_id}
        return self._last

    def models(self, names: Iterable[str]) -> dict[str, SignalModel]:
        """Each sensor's stored model where the store has the sensor, else its preset."""
        known = {s.name: s for s in self.store.list_sensors()}
        return {
            n: stored_model(self.store, known[n]) if n in known else model_for(n) for n in names
        }

    def resume_after(self, names: Iterable[str]) -> pd.Timestamp | None:
        """The latest data time among the sensors (an accelerated clock resumes after it)."""
        known = {s.name: s for s in self.store.list_sensors()}
        times = [self.store.data_time(known[n].id) for n in names if n in known]
        times = [t for t in times if t is not None]
        return max(times) if times else None


class SimulatedPlc:
    """Produces each sensor's next reading every ``interval`` real seconds.

    ``step`` is how far the data clock advances a tick (default: ``interval``, real time);
    ``start`` is the first timestamp (default: now, floored to ``step``).
    """

    def __init__(
        self,
        models: dict[str, SignalModel] | None = None,
        *,
        interval: pd.Timedelta = pd.Timedelta("1s"),
        step: pd.Timedelta | None = None,
        start: pd.Timestamp | None = None,
        events: EventSource | None = None,
    ) -> None:
        models = models if models is not None else {n: model_for(n) for n in DEMO_SENSORS}
        self.tags = [_Tag(name, model) for name, model in models.items()]
        self.interval = pd.Timedelta(interval)
        self.step = pd.Timedelta(step) if step is not None else self.interval
        # Real time (no start, step = interval): each tick happens at its reading's timestamp,
        # on the step's grid, like a PLC's scan; otherwise ticks are paced every interval.
        self.realtime = start is None and self.step == self.interval
        if self.realtime:
            self.next_ts = floor_to(utcnow(), self.step) + self.step
        else:
            self.next_ts = floor_to(start if start is not None else utcnow(), self.step)
        self._paced_since: float | None = None
        self._ticks = 0
        self.events = events
        self.stop_event = threading.Event()

    @property
    def names(self) -> list[str]:
        return [t.name for t in self.tags]

    def stop(self) -> None:
        self.stop_event.set()

    def tick(self) -> list[PlcReading]:
        """The next reading of every sensor (none for a sensor in a dropout)."""
        if self.realtime and self.next_ts + self.step <= utcnow():
            self.next_ts = floor_to(utcnow(), self.step)  # late (start-up, a stall): skip ahead
        if self._paced_since is None:
            self._paced_since = time.monotonic()
        self._ticks += 1
        ts = self.next_ts
        self.next_ts = ts + self.step
        if self.events is not None:
            found = self.events(self.names, ts, ts + self.step)
            for tag in self.tags:
                tag.events = [e for e in found.get(tag.name, ()) if e.active_at(ts)]
        index = pd.DatetimeIndex([ts])
        readings = []
        plain: dict[SignalModel, float] = {}  # equal models without events: computed once
        for tag in self.tags:
            if tag.events:
                s = simulate(tag.model, index, tag.events, tag.last_value)
                if not len(s):  # a dropout publishes nothing
                    continue
                value = float(s.iloc[0])
            else:
                value = plain.get(tag.model)
                if value is None:
                    value = plain[tag.model] = float(tag.model.values(index)[0])
            tag.last_value = value
            readings.append(PlcReading(tag.name, ts, value))
        return readings

    def pause(self) -> float:
        """Seconds to wait before the next tick."""
        if self.realtime:
            return max(0.0, (self.next_ts - utcnow()).total_seconds())
        if self._paced_since is None:
            return 0.0
        due = self._paced_since + self._ticks * self.interval.total_seconds()
        return max(0.0, due - time.monotonic())

    def run(self, emit: Callable[[list[PlcReading]], None], count: int | None = None) -> int:
        """Call ``emit`` with each tick's readings, on time, until stopped or after ``count``
        ticks; returns the number of ticks."""
        ticks = 0
        while count is None or ticks < count:
            if self.stop_event.wait(self.pause()):
                break
            emit(self.tick())
            ticks += 1
        return ticks


def demo_plc(
    store: Store | None = None,
    *,
    sensors: Iterable[str] = DEMO_SENSORS,
    interval: pd.Timedelta = pd.Timedelta("1s"),
    step: pd.Timedelta | None = None,
) -> SimulatedPlc:
    """A PLC serving ``sensors``; with a store, their stored models and injected events apply
    and an accelerated clock (``step`` > ``interval``) resumes after their stored data."""
    names = list(sensors)
    if store is None:
        return SimulatedPlc({n: model_for(n) for n in names}, interval=interval, step=step)
    events = StoredEvents(store)
    start = None
    step_td = pd.Timedelta(step) if step is not None else pd.Timedelta(interval)
    if step_td > pd.Timedelta(interval):
        last = events.resume_after(names)
        start = None if last is None else last + step_td
    return SimulatedPlc(
        events.models(names), interval=interval, step=step, start=start, events=events
    )


def plc_database(database_url: str | None) -> str | None:
    """Where a simulated PLC reads injected events: the option, else the environment's
    database if one is set (``plantcast demo`` sets it); else none (presets, no events)."""
    env = os.environ.get("PLANTCAST_DATABASE_URL") or os.environ.get("DATABASE_URL")
    return database_url or env or None


@contextmanager
def open_demo_plc(
    database_url: str | None,
    sensors: Iterable[str] = (),
    *,
    interval: pd.Timedelta = pd.Timedelta("1s"),
    step: pd.Timedelta | None = None,
) -> Iterator[SimulatedPlc]:
    """:func:`demo_plc` on the store at ``database_url`` (none: presets, no events)."""
    names = list(sensors) or list(DEMO_SENSORS)
    if not database_url:
        yield demo_plc(None, sensors=names, interval=interval, step=step)
        return
    store = Store.open(database_url)
    try:
        store.init()
        yield demo_plc(store, sensors=names, interval=interval, step=step)
    finally:
        store.close()
