"""Backfill: write a simulated sensor's history in bulk, in chunks, idempotently."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd

from plantcast.core.errors import InputError
from plantcast.core.timeutil import floor_to, to_utc, utcnow
from plantcast.ingest.simulated import ensure_simulated_sensor, simulate, stored_model
from plantcast.store import Store

CHUNK = 50_000


@dataclass(frozen=True)
class BackfillResult:
    sensor: str
    rows: int
    start: pd.Timestamp
    end: pd.Timestamp
    seconds: float

    @property
    def rate(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else float("inf")


def backfill(
    store: Store,
    sensor: str,
    *,
    days: float,
    interval: pd.Timedelta,
    end=None,
    on_progress: Callable[[int, int], None] | None = None,
) -> BackfillResult:
    """Write ``days`` of readings at ``interval`` ending at ``end`` (default: now, on the grid).

    The grid is aligned to multiples of ``interval`` since the epoch and values are a pure
    function of time, so running it again rewrites identical rows and adds none.
    """
    if days <= 0:
        raise InputError(f"days must be positive, got {days}", field="days")
    if interval <= pd.Timedelta(0):
        raise InputError("interval must be positive", field="interval")
    s = ensure_simulated_sensor(store, sensor, interval)
    model = stored_model(store, s)
    end = floor_to(utcnow() if end is None else to_utc(end), interval)
    start = floor_to(end - pd.Timedelta(days=days), interval)
    index = pd.date_range(start, end, freq=interval, name="ts")
    events = store.events_overlapping(s.id, start, end + interval)
    t0 = time.perf_counter()
    written = 0
    with store.transaction() as tx:
        for lo in range(0, len(index), CHUNK):
            chunk = index[lo : lo + CHUNK]
            written += tx.write_readings(s.id, simulate(model, chunk, events))
            if on_progress:
                on_progress(min(lo + CHUNK, len(index)), len(index))
    return BackfillResult(sensor, written, start, end, time.perf_counter() - t0)
