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

import pandas as pd

from plantcast.core.errors import StoreUnavailable
from plantcast.core.timeutil import floor_to, utcnow
from plantcast.core.types import Event, Sensor
from plantcast.ingest.simulated import ensure_simulated_sensor, simulate, stored_model
from plantcast.signals import SignalModel
from plantcast.store import Store
from plantcast.store.catalog import set_clock
from plantcast.store.readings import write_readings

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
    pending: list[tuple[pd.Timestamp, float]] = field(default_factory=list)
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
        self._retry_at = 0.0
        self._delay = self.backoff_min

    def stop(self) -> None:
        self.stop_event.set()

    # -- setup ----------------------------------------------------------------------------
    def _open_lanes(self) -> None:
        for name in self.names:
            sensor = ensure_simulated_sensor(self.store, name, self.step)
            last = self.store.last_reading(sensor.id)
            data_time = self.store.data_time(sensor.id)  # later than `last` after a dropout
            next_ts = floor_to(utcnow(), self.step) if data_time is None else data_time + self.step
            last_value = None if last is None else last[1]
            lane = _Lane(sensor, stored_model(self.store, sensor), next_ts, last_value)
            self._lanes.append(lane)

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
        """Stream until stopped or ``count`` readings per sensor are generated; then flush."""
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
        for lane in self._lanes:
            ts = lane.next_ts
            lane.next_ts = ts + self.step
            active = [e for e in lane.events if e.active_at(ts)]
            reading = simulate(lane.model, pd.DatetimeIndex([ts]), active, lane.last_value)
            self.stats.generated += 1
            lane.clock_dirty = True
            if len(reading):  # a dropout writes nothing
                lane.last_value = float(reading.iloc[0])
                lane.pending.append((ts, lane.last_value))

    def _flush(self, *, force: bool) -> bool:
        """Write every pending reading in one transaction; on failure keep them and back off."""
        if not force and time.monotonic() < self._retry_at:
            return False
        try:
            with self.store.write() as conn:
                for lane in self._lanes:
                    if lane.pending:
                        idx = pd.DatetimeIndex([t for t, _ in lane.pending])
                        series = pd.Series([v for _, v in lane.pending], index=idx)
                        write_readings(conn, lane.sensor.id, series)
                    if lane.clock_dirty:
                        set_clock(conn, lane.sensor.id, lane.next_ts - self.step)
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

    def _refresh_events(self) -> None:
        """Fetch events covering the next reading, so an injection shows on the next tick.

        Best effort: while the database is away (or in backoff) the last known events apply.
        """
        if time.monotonic() < self._retry_at:
            return
        try:
            for lane in self._lanes:
                horizon = lane.next_ts + self.step
                lane.events = self.store.events_overlapping(lane.sensor.id, lane.next_ts, horizon)
        except StoreUnavailable:
            pass

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
