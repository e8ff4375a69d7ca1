"""The accelerated streamer: every tick, the next reading one step of simulated time later.

It survives database outages: readings wait in memory, writes are retried with exponential
backoff, and since writes are upserts each reading is stored exactly once when the database
returns. A stop request (SIGINT/SIGTERM) flushes what is pending before it exits.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from plantcast.core.errors import StoreUnavailable
from plantcast.core.timeutil import floor_to, utcnow
from plantcast.core.types import Event, Sensor, Source
from plantcast.ingest.simulated import ensure_simulated_sensor, simulate
from plantcast.signals import SignalModel
from plantcast.signals.model import model_from_dict
from plantcast.signals.presets import model_for
from plantcast.store import Store

log = logging.getLogger(__name__)

MAX_PENDING = 1_000_000  # readings held in memory during an outage before generation pauses


@dataclass
class _Lane:
    """One sensor's stream state."""

    sensor: Sensor
    model: SignalModel
    next_ts: pd.Timestamp
    last_value: float | None
    events: list[Event] = field(default_factory=list)
    pending: list[tuple[int, float]] = field(default_factory=list)  # (epoch µs, value)
    clock_dirty: bool = False  # generated past what the stored clock says


@dataclass
class StreamStats:
    generated: int = 0
    written: int = 0
    failures: int = 0
    outages: int = 0


class Streamer:
    """Writes simulated readings for some sensors on an accelerated clock."""

    def __init__(
        self,
        store: Store,
        sensors: list[str],
        *,
        tick: float = 2.0,
        step: pd.Timedelta = pd.Timedelta("30min"),
        count: int | None = None,
        backoff: tuple[float, float] = (0.2, 10.0),
        on_write: Callable[[StreamStats], None] | None = None,
    ) -> None:
        self.store, self.names, self.tick, self.step, self.count = store, sensors, tick, step, count
        self.backoff_min, self.backoff_max = backoff
        self.on_write = on_write
        self.stats = StreamStats()
        self.stop_event = threading.Event()
        self._lanes: list[_Lane] = []
        self._models: dict[SignalModel, SignalModel] = {}
        self._retry_at = 0.0
        self._delay = self.backoff_min

    def stop(self) -> None:
        self.stop_event.set()

    # -- setup ----------------------------------------------------------------------------
    def _open_lanes(self) -> None:
        """A lane per sensor, in a few statements however many sensors (a missing sensor is
        created from its preset first, one at a time: that happens once)."""
        with self.store.transaction(readonly=True) as tx:
            found = tx.sensors_by_name(self.names)
        for name in self.names:
            if name not in found or found[name][0].source is not Source.SIMULATED:
                ensure_simulated_sensor(self.store, name, self.step)  # creates, or refuses
        with self.store.transaction(readonly=True) as tx:
            found = tx.sensors_by_name(self.names)
            ids = [found[n][0].id for n in self.names]
            last = tx.edge_readings([(i, None) for i in ids], last=True)
            clocks = tx.clocks_many(ids)
        for name in self.names:
            sensor, params = found[name]
            # the sensor's 'now': its last reading or its clock (later after a dropout)
            times = [
                t for t in (last.get(sensor.id, (None,))[0], clocks.get(sensor.id)) if t is not None
            ]
            data_time = max(times) if times else None
            next_ts = floor_to(utcnow(), self.step) if data_time is None else data_time + self.step
            last_value = last[sensor.id][1] if sensor.id in last else None
            model = model_from_dict(params) if params else model_for(sensor.name)
            model = self._models.setdefault(model, model)  # equal models: one shared object
            self._lanes.append(_Lane(sensor, model, next_ts, last_value))

    def _connect_with_retry(self) -> None:
        while not self.stop_event.is_set():
            try:
                self._open_lanes()
                return
            except StoreUnavailable as exc:
                log.warning("database unavailable at start: %s; retrying", exc)
                self._lanes.clear()
                self.stop_event.wait(self._next_delay())

    # -- loop -----------------------------------------------------------------------------
    def run(self) -> StreamStats:
        """Stream until stopped or after ``count`` ticks (one reading per sensor each); flush."""
        self._connect_with_retry()
        started = time.monotonic()
        ticks = 0
        while not self.stop_event.is_set():
            if self.count is not None and ticks >= self.count:
                break
            if self._pending_total() < MAX_PENDING:
                self._refresh_events()
                self._generate()
                ticks += 1
            self._flush(force=False)
            if self.tick > 0:
                # Sleep to the next tick boundary so the pace does not drift with write time.
                self.stop_event.wait(max(0.0, started + ticks * self.tick - time.monotonic()))
        self._drain()
        return self.stats

    def _pending_total(self) -> int:
        """Readings generated but not yet written."""
        return sum(len(lane.pending) for lane in self._lanes)

    def _unflushed(self) -> bool:
        """Anything the store has not seen yet: readings, or a clock moved by a dropout."""
        return any(lane.pending or lane.clock_dirty for lane in self._lanes)

    def _generate(self) -> None:
        """The next reading of every lane. Lanes with no active event are computed together,
        one model evaluation per distinct (model, time); the others one by one."""
        plain: dict[tuple[int, int], tuple[SignalModel, pd.Timestamp, list[_Lane]]] = {}
        later: dict[int, pd.Timestamp] = {}  # ts + step, computed once per distinct ts
        for lane in self._lanes:
            ts = lane.next_ts
            nxt = later.get(ts.value)
            if nxt is None:
                nxt = later[ts.value] = ts + self.step
            lane.next_ts = nxt
            lane.clock_dirty = True
            active = [e for e in lane.events if e.active_at(ts)] if lane.events else None
            if not active:
                plain.setdefault((id(lane.model), ts.value), (lane.model, ts, []))[2].append(lane)
                continue
            reading = simulate(lane.model, pd.DatetimeIndex([ts]), active, lane.last_value)
            if len(reading):  # a dropout writes nothing
                lane.last_value = float(reading.iloc[0])
                lane.pending.append((ts.value // 1_000, lane.last_value))
        self.stats.generated += len(self._lanes)
        for model, ts, lanes in plain.values():
            value = float(simulate(model, pd.DatetimeIndex([ts]), []).iloc[0])
            reading = (ts.value // 1_000, value)
            for lane in lanes:
                lane.last_value = value
                lane.pending.append(reading)

    def _flush(self, *, force: bool) -> bool:
        """Write every pending reading of every lane as one batch, and the lanes' clocks, in one
        transaction; on failure keep them and back off."""
        if not force and time.monotonic() < self._retry_at:
            return False
        with_data = [lane for lane in self._lanes if lane.pending]
        try:
            with self.store.transaction() as tx:
                if with_data:
                    tx.write_batch_arrays(*self._batch(with_data))
                step_us = self.step.value // 1_000
                tx.set_clocks(
                    [lane.sensor.id for lane in self._lanes if lane.clock_dirty],
                    [
                        lane.next_ts.value // 1_000 - step_us
                        for lane in self._lanes
                        if lane.clock_dirty
                    ],
                )
        except StoreUnavailable:
            self.stats.failures += 1
            if self._delay == self.backoff_min:
                self.stats.outages += 1
                log.warning("database unavailable, holding %d readings", self._pending_total())
            self._retry_at = time.monotonic() + self._next_delay()
            return False
        for lane in self._lanes:
            self.stats.written += len(lane.pending)
            lane.pending.clear()
            lane.clock_dirty = False
        self._delay = self.backoff_min
        self._retry_at = 0.0
        if self.on_write:
            self.on_write(self.stats)
        return True

    @staticmethod
    def _batch(lanes: list[_Lane]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(sensor ids, epoch µs, values) of the lanes' pending readings."""
        counts = [len(lane.pending) for lane in lanes]
        sid = np.repeat(np.array([lane.sensor.id for lane in lanes], dtype=np.int64), counts)
        rows = [r for lane in lanes for r in lane.pending]
        us = np.fromiter((t for t, _ in rows), np.int64, len(rows))
        values = np.fromiter((v for _, v in rows), np.float64, len(rows))
        return sid, us, values

    def _refresh_events(self) -> None:
        """Fetch events covering every lane's next reading (one query), so an injection shows
        on the next tick.

        Best effort: while the database is away (or in backoff) the last known events apply.
        """
        if time.monotonic() < self._retry_at or not self._lanes:
            return
        start = min({lane.next_ts for lane in self._lanes})
        end = max({lane.next_ts for lane in self._lanes}) + self.step
        try:
            found = self.store.events_of_sensors([ln.sensor.id for ln in self._lanes], start, end)
        except StoreUnavailable:
            return
        for lane in self._lanes:
            mine = found.get(lane.sensor.id)
            if not mine:
                lane.events = []
                continue
            lo, hi = lane.next_ts, lane.next_ts + self.step
            lane.events = [
                e for e in mine if e.starts_at < hi and (e.ends_at is None or e.ends_at > lo)
            ]

    def _next_delay(self) -> float:
        delay = self._delay
        self._delay = min(self.backoff_max, self._delay * 2)
        return delay

    def _drain(self, timeout: float = 60.0) -> None:
        """Flush what is pending at stop, retrying for up to ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while self._unflushed() and time.monotonic() < deadline:
            if self._flush(force=True):
                return
            time.sleep(min(self._delay, max(0.0, deadline - time.monotonic())))
        if self._unflushed():
            log.error("gave up with %d readings unwritten", self._pending_total())
