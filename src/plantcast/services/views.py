"""Read models for surfaces: a sensor's window, downsampled in SQL, with its smoothing."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from plantcast.core.types import Sensor
from plantcast.forecast.preprocess import rolling_mean
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


def _smooth(series: pd.Series, interval: pd.Timedelta, readings: int) -> pd.Series:
    """Trailing mean over ``readings`` nominal intervals, as a time window so that gaps and
    buckets wider than one reading are weighed by time, not by row count."""
    if series.empty or readings <= 1:
        return series.rename("smoothed")
    # A window of k intervals must hold k readings, not k + 1 (time windows are closed right).
    window = interval * readings - pd.Timedelta(microseconds=1)
    return rolling_mean(series, window).rename("smoothed")


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
            smoothed = _smooth(raw, sensor.interval, smoothing)
            return WindowView(sensor, start, end, frame, smoothed, latest, False)
    frame = store.read_buckets(sensor.id, start, end, max_points)
    smoothed = _smooth(frame["mean"], sensor.interval, smoothing)
    return WindowView(sensor, start, end, frame, smoothed, latest, True)
