"""Read models for surfaces: a sensor's window, downsampled in SQL, with its smoothing; an
asset's window with its score, threshold and contributions."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from plantcast.core.types import Alert, Asset, Sensor
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


@dataclass(frozen=True)
class AssetView:
    """What the page's asset view draws over a window of an asset's grid: each sensor's
    trace normalized over the window (its own mean 0, σ 1, so sensors of any unit share one
    axis), the asset's score with its threshold, each sensor's share of the score, and the
    asset's alerts. ``score`` and ``shares`` are empty (``why`` says so) before any pass has
    fitted the asset."""

    asset: Asset
    start: pd.Timestamp | None
    end: pd.Timestamp | None
    normalized: pd.DataFrame  # grid times × sensors
    score: pd.Series
    threshold: float | None
    shares: pd.DataFrame  # grid times × sensors, summing to 1 where scored
    alerts: list[Alert]
    detector: str
    why: str | None = None


def asset_view(
    store: Store, name: str, window: pd.Timedelta, *, detector: str | None = None
) -> AssetView:
    """The last ``window`` of an asset on its grid (ending at its latest grid time), scored by
    its stored fit (what ``detect`` scores its new readings with); never fits on the page's
    refresh path. At most ``MAX_POINTS`` grid rows: a longer window is cut to its end."""
    from plantcast.detect.multivariate import SHARE
    from plantcast.services.asset_detection import (
        ASSET_DETECTORS,
        CONTEXT_ROWS,
        VERSION,
        asset_end,
        load_fit,
    )
    from plantcast.services.assets import aligned_readings

    asset = store.get_asset(name)
    det_name = detector or ASSET_DETECTORS[0]
    empty = pd.DataFrame(columns=list(asset.sensor_names), dtype=float)
    end = asset_end(store, asset)
    if end is None:
        return AssetView(
            asset,
            None,
            None,
            empty,
            pd.Series(dtype=float),
            None,
            empty,
            [],
            det_name,
            "no readings yet",
        )
    step = asset.grid_step
    span = min(window, step * MAX_POINTS)
    start = end - span + step
    frame = aligned_readings(store, asset, start - CONTEXT_ROWS * step, end + step)
    shown = frame[frame.index >= start]
    spread = shown.std().replace(0.0, 1.0)
    normalized = (shown - shown.mean()) / spread
    alerts = store.list_alerts(asset_id=asset.id, start=start, limit=500)
    with store.transaction(readonly=True) as tx:
        fit = tx.asset_fits_many([asset.id]).get((asset.id, det_name))
    det = None if fit is None or fit.version != VERSION else load_fit(fit)
    if det is None or fit is None or fit.sensors != asset.sensor_names:
        why = "not fitted yet: `plantcast detect` fits and stores the asset's detector"
        return AssetView(
            asset,
            start,
            end,
            normalized,
            pd.Series(dtype=float),
            None,
            empty,
            alerts,
            det_name,
            why,
        )
    scored = det.detect(frame)
    scored = scored[scored.index >= start]
    shares = scored[[f"{SHARE}{s}" for s in asset.sensor_names]]
    shares.columns = list(asset.sensor_names)
    return AssetView(
        asset,
        start,
        end,
        normalized,
        scored["score"],
        float(det.threshold_),
        shares,
        alerts,
        det_name,
    )
