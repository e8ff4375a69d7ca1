"""Detect anomalies in stored readings and keep the alerts table in step, incrementally.

Each run scores what is new since the last run (plus context for the detectors' trailing
statistics), groups flags into episodes and merges them into alerts: an ongoing anomaly stays
one alert whose end moves on, and a run with no new data changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd

from plantcast.core.errors import NotEnoughData
from plantcast.core.timeutil import to_utc
from plantcast.core.types import Sensor
from plantcast.detect import (
    Detector,
    DropoutDetector,
    LevelShiftDetector,
    ResidualZDetector,
    StuckDetector,
    merge_episodes,
)
from plantcast.services.context import sensor_periods
from plantcast.store import Store
from plantcast.store import alerts as alert_rows

DETECTORS = ("residual_z", "level_shift", "stuck", "dropout")
CONTEXT = pd.Timedelta("7d")  # history before the new data, for trailing statistics
TRAIN = pd.Timedelta("14d")
FIRST_LOOKBACK = pd.Timedelta("7d")  # on a first run, how far back to score
MIN_TRAIN_POINTS = 48


@dataclass(frozen=True)
class DetectResult:
    sensor: str
    scored: int
    opened: int
    updated: int
    scored_from: pd.Timestamp | None
    scored_until: pd.Timestamp | None


def make_detectors(
    sensor: Sensor, periods: tuple[str, ...], names: tuple[str, ...] = DETECTORS
) -> dict[str, Detector]:
    params = {"periods": tuple(periods), "harmonics": 3}
    factories: dict[str, Callable[[], Detector]] = {
        "residual_z": lambda: ResidualZDetector("fourier_linear", params),
        "level_shift": lambda: LevelShiftDetector("fourier_linear", params),
        "stuck": StuckDetector,
        "dropout": lambda: DropoutDetector(interval=sensor.interval),
    }
    return {n: factories[n]() for n in names}


def _scoring_start(store: Store, sensor: Sensor, names, last: pd.Timestamp) -> pd.Timestamp:
    """Where this run starts scoring: the earliest detector's resume point or ongoing alert."""
    with store.read() as conn:
        marks = [alert_rows.get_scored_until(conn, sensor.id, n) for n in names]
        ongoing = [
            a.ts
            for a in alert_rows.list_alerts(conn, sensor_id=sensor.id, ongoing=True, limit=10_000)
        ]
    start = last - FIRST_LOOKBACK if any(m is None for m in marks) else min(marks)
    return min([start, *ongoing])


def detect_sensor(
    store: Store,
    sensor_name: str,
    *,
    periods: tuple[str, ...] | None = None,
    detectors: tuple[str, ...] = DETECTORS,
) -> DetectResult:
    """Score the new readings of one sensor and write or extend its alerts."""
    sensor = store.get_sensor(sensor_name)
    periods = periods or sensor_periods(store, sensor.id)
    latest = store.last_reading(sensor.id)
    if latest is None:
        return DetectResult(sensor.name, 0, 0, 0, None, None)
    last = latest[0]
    start = _scoring_start(store, sensor, detectors, last)
    series = store.read_series(sensor.id, start - max(CONTEXT, TRAIN), last + pd.Timedelta("1us"))
    train = series[series.index < start]
    if len(train) < MIN_TRAIN_POINTS:
        train = series  # young sensor: learn from what there is (in-sample)
    if len(train) < MIN_TRAIN_POINTS:
        raise NotEnoughData(
            f"detection needs at least {MIN_TRAIN_POINTS} readings of {sensor.name}, "
            f"have {len(train)}"
        )
    window = series[series.index >= start - CONTEXT]
    opened = updated = 0
    found = {}
    for name, det in make_detectors(sensor, periods, detectors).items():
        det.fit(train)
        episodes = det.episodes(window)
        found[name] = episodes[episodes["end"] >= start] if len(episodes) else episodes
    with store.write() as conn:
        for name, episodes in found.items():
            existing = [
                {
                    "id": a.id,
                    "detector": a.detector,
                    "ts": a.ts,
                    "ends_at": a.ends_at,
                    "score": a.score,
                }
                for a in alert_rows.list_alerts(
                    conn, sensor_id=sensor.id, detector=name, start=start - CONTEXT, limit=10_000
                )
            ]
            to_update, to_insert = merge(existing, episodes, name, last)
            for change in to_update:
                alert_rows.update_alert(conn, change.pop("id"), **change)
            for row in to_insert:
                alert_rows.insert_alert(conn, sensor.id, **row)
            opened, updated = opened + len(to_insert), updated + len(to_update)
            alert_rows.set_scored_until(conn, sensor.id, name, last)
    scored = int((series.index >= start).sum())
    return DetectResult(sensor.name, scored, opened, updated, to_utc(start), last)


def merge(existing, episodes, detector: str, last: pd.Timestamp):
    if len(episodes) == 0:
        return [], []
    return merge_episodes(existing, episodes, detector=detector, scored_until=last)
