"""Read models for surfaces: a sensor's window, downsampled in SQL, with its smoothing."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from plantcast.core.types import Sensor
from plantcast.store import Store

MAX_POINTS = 2_000


@dataclass(frozen=True)
class WindowView:
    """What a chart of one sensor over a window needs, at bounded size."""

    sensor: Sensor
    start: pd.Timestamp
    end: pd.Timestamp
    buckets: pd.DataFrame  # mean, min, max, count per bucket (raw readings: one per bucket)
    smoothed: pd.Series
    latest: tuple[pd.Timestamp, float] | None
    downsampled: bool

    @property
    def empty(self) -> bool:
        return self.buckets.empty


def rolling_mean(series: pd.Series, window: pd.Timedelta) -> pd.Series:
    """Trailing rolling mean over a time window (robust to gaps and irregular sampling)."""
    if series.empty or window <= pd.Timedelta(0):
        return series.copy()
    return series.rolling(window, min_periods=1).mean().rename("smoothed")


def sensor_window(
    store: Store,
    sensor: Sensor,
    window: pd.Timedelta,
    *,
    smoothing: int = 1,
    max_points: int = MAX_POINTS,
) -> WindowView:
    """The last ``window`` of a sensor's data (ending at its latest reading), bounded in size.

    If the window holds at most ``max_points`` readings at the nominal interval they are read
    raw; otherwise SQL buckets them (mean/min/max kept, so spikes stay visible). Smoothing is a
    trailing mean over ``smoothing`` nominal intervals.
    """
    latest = store.last_reading(sensor.id)
    if latest is None:
        empty = pd.DataFrame(columns=["mean", "min", "max", "count"], dtype=float)
        return WindowView(sensor, pd.NaT, pd.NaT, empty, pd.Series(dtype=float), None, False)
    end = latest[0] + pd.Timedelta(microseconds=1)
    start = end - window
    expected_points = window / sensor.interval if sensor.interval > pd.Timedelta(0) else 0
    if expected_points <= max_points:
        raw = store.read_series(sensor.id, start, end)
        if len(raw) <= max_points:
            frame = pd.DataFrame({"mean": raw, "min": raw, "max": raw, "count": 1})
            smoothed = rolling_mean(raw, sensor.interval * max(1, smoothing) - _EPS)
            return WindowView(sensor, start, end, frame, smoothed, latest, False)
    frame = store.read_buckets(sensor.id, start, end, max_points)
    smoothed = rolling_mean(frame["mean"], sensor.interval * max(1, smoothing) - _EPS)
    return WindowView(sensor, start, end, frame, smoothed, latest, True)


# A window of k intervals must hold k readings, not k + 1 (rolling time windows are closed right).
_EPS = pd.Timedelta(microseconds=1)
