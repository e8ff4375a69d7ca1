"""Detect anomalies in stored readings and keep the alerts table in step, incrementally.

Each run scores what no run has scored yet (on a first run, the sensor's whole history, or
from ``since``), in chunks of bounded size: each chunk's detectors are fitted on the history
before it (a young sensor learns from what there is), calibrated to the alert budget, and
their episodes merged into alerts, so an ongoing anomaly stays one alert whose end moves on
and a run with no new data changes nothing. A detector that cannot fit yet is skipped for the
chunk and says why; the resume point advances all the same, so a sensor never stalls.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import pandas as pd

from plantcast.core.errors import PlantcastError
from plantcast.core.timeutil import parse_duration, to_utc
from plantcast.core.types import Sensor
from plantcast.detect import (
    Detector,
    DropoutDetector,
    LevelShiftDetector,
    ResidualZDetector,
    StuckDetector,
    merge_episodes,
)
from plantcast.detect.base import DEFAULT_BUDGET
from plantcast.detect.residual import DETECT_HARMONICS
from plantcast.services.context import sensor_periods
from plantcast.store import Store
from plantcast.store import alerts as alert_rows

DETECTORS = ("residual_z", "level_shift", "stuck", "dropout")
CONTEXT = pd.Timedelta("7d")  # history before a chunk, for the detectors' trailing statistics
TRAIN = pd.Timedelta("28d")  # history before a chunk that the detectors are fitted on
CHUNK_READINGS = 20_000  # readings scored per chunk at most: memory stays flat in history
CHUNK_SPAN = pd.Timedelta("7d")  # time scored per chunk at most: detectors refit weekly
DEFAULT_RESOLVE_AFTER = "2h"
DETECTOR_CLASSES: dict[str, type[Detector]] = {
    "residual_z": ResidualZDetector,
    "level_shift": LevelShiftDetector,
    "stuck": StuckDetector,
    "dropout": DropoutDetector,
}
COOLDOWN = {n: parse_duration(c.policy.cooldown) for n, c in DETECTOR_CLASSES.items()}

Progress = Callable[[int, int, str], None]


@dataclass(frozen=True)
class DetectOptions:
    """How alerts are raised: the budget (alerts per 30 days per detector kind on data like the
    sensor's recent history) and how long a signal stays normal before its alert resolves."""

    budget: float | None = DEFAULT_BUDGET
    resolve_after: str | pd.Timedelta = DEFAULT_RESOLVE_AFTER


@dataclass(frozen=True)
class DetectResult:
    sensor: str
    scored: int
    opened: int
    updated: int
    scored_from: pd.Timestamp | None
    scored_until: pd.Timestamp | None
    skipped: dict[str, str] = field(default_factory=dict)  # detector → why it could not fit


def make_detectors(
    sensor: Sensor,
    periods: tuple[str, ...],
    names: tuple[str, ...] = DETECTORS,
    options: DetectOptions = DetectOptions(),
) -> dict[str, Detector]:
    params = {"periods": tuple(periods), "harmonics": DETECT_HARMONICS}
    kw = {"budget": options.budget, "train_window": TRAIN}
    factories: dict[str, Callable[[], Detector]] = {
        "residual_z": lambda: ResidualZDetector("fourier_linear", params, **kw),
        "level_shift": lambda: LevelShiftDetector("fourier_linear", params, **kw),
        "stuck": lambda: StuckDetector(**kw),
        "dropout": lambda: DropoutDetector(interval=sensor.interval, **kw),
    }
    return {n: factories[n]() for n in names}


def _scoring_start(store: Store, sensor: Sensor, names, since) -> pd.Timestamp | None:
    """Where this run starts: ``since``, else the earliest resume point, else the first reading."""
    if since is not None:
        return to_utc(since)
    with store.read() as conn:
        marks = [alert_rows.get_scored_until(conn, sensor.id, n) for n in names]
    if any(m is None for m in marks):
        return store.first_timestamp(sensor.id)
    return to_utc(min(marks)) + pd.Timedelta("1us")


def _chunks(sensor: Sensor, start, last) -> list[tuple[pd.Timestamp, pd.Timestamp]]:
    """Time ranges [a, b] from start to last, each at most a week and ``CHUNK_READINGS``
    readings long, so a long history is scored as a weekly job would have scored it."""
    span = max(min(sensor.interval * CHUNK_READINGS, CHUNK_SPAN), sensor.interval)
    out, a = [], start
    while a <= last:
        b = min(a + span, last)
        out.append((a, b))
        a = b + pd.Timedelta("1us")
    return out


def _chunk_series(store: Store, sensor: Sensor, a, b) -> pd.Series:
    """The chunk's readings with the history before it (training and context); after a gap
    longer than that history, with the last reading before the gap, so the gap is seen."""
    start = a - max(CONTEXT, TRAIN)
    series = store.read_series(sensor.id, start, b + pd.Timedelta("1us"))
    if series.empty or series.index[0] >= a - CONTEXT:
        before = store.read_tail(sensor.id, 1, end=start)
        if len(before):
            series = pd.concat([before, series])
    return series


def _usable_periods(periods: tuple[str, ...], span: pd.Timedelta) -> tuple[str, ...]:
    """The seasons this much history can fit (two cycles each); at least the shortest, so a
    young sensor's detectors say how much they need rather than silently drop every season."""
    ordered = sorted(periods, key=parse_duration)
    fit = tuple(p for p in ordered if 2 * parse_duration(p) <= span)
    return fit or tuple(ordered[:1])


def _fit(det: Detector, train: pd.Series, everything: pd.Series) -> None:
    """Fit on the history before the chunk; without enough of it, on the chunk's first
    ``TRAIN`` of readings (in-sample: a young sensor learns from the earliest it has)."""
    try:
        det.fit(train)
    except PlantcastError:
        if len(everything) <= len(train):
            raise
        det.fit(everything)


def detect_sensor(
    store: Store,
    sensor_name: str,
    *,
    periods: tuple[str, ...] | None = None,
    detectors: tuple[str, ...] = DETECTORS,
    since=None,
    options: DetectOptions = DetectOptions(),
    on_progress: Progress | None = None,
) -> DetectResult:
    """Score the unscored readings of one sensor, chunk by chunk, and write or extend alerts."""
    sensor = store.get_sensor(sensor_name)
    periods = periods or sensor_periods(store, sensor.id)
    latest = store.last_reading(sensor.id)
    start = _scoring_start(store, sensor, detectors, since)
    if latest is None or start is None or start > latest[0]:
        return DetectResult(sensor.name, 0, 0, 0, None, None)
    last = latest[0]
    chunks = _chunks(sensor, start, last)
    resolve_after = parse_duration(options.resolve_after, field="resolve_after")
    scored = opened = updated = 0
    skipped: dict[str, str] = {}
    for i, (a, b) in enumerate(chunks):
        if on_progress:
            on_progress(i, len(chunks), sensor.name)
        series = _chunk_series(store, sensor, a, b)
        if not (series.index >= a).any():
            continue  # a week inside a long gap: nothing to score (the last chunk never is)
        found = {}
        usable = _usable_periods(periods, series.index[-1] - series.index[0])
        for name, det in make_detectors(sensor, usable, detectors, options).items():
            try:
                early = series[series.index <= min(b, a + TRAIN)]
                _fit(det, series[series.index < a], early)
            except PlantcastError as exc:
                skipped.setdefault(name, str(exc))
                continue
            # from the reading before the context, so a gap reaching into it is seen whole
            window = series.iloc[max(0, series.index.searchsorted(a - CONTEXT) - 1) :]
            episodes = det.episodes(window)
            # episodes still open at the last run's end are seen whole, so their alerts close
            found[name] = episodes[episodes["end"] >= a - resolve_after]
        n_new, n_changed = _write_alerts(store, sensor, detectors, found, a, b, resolve_after)
        opened, updated = opened + n_new, updated + n_changed
        scored += int((series.index >= a).sum())
    if on_progress:
        on_progress(len(chunks), len(chunks), sensor.name)
    return DetectResult(sensor.name, scored, opened, updated, start, last, skipped)


def _write_alerts(store, sensor, names, found, a, b, resolve_after) -> tuple[int, int]:
    """Merge one chunk's episodes into alerts and move every detector's resume point to ``b``."""
    opened = updated = 0
    with store.write() as conn:
        for name in names:
            existing = [
                {
                    "id": r.id,
                    "detector": r.detector,
                    "ts": r.ts,
                    "ends_at": r.ends_at,
                    "score": r.score,
                }
                for r in alert_rows.list_alerts(
                    conn, sensor_id=sensor.id, detector=name, start=a - CONTEXT, limit=10_000
                )
            ]
            if name in found:  # a skipped detector leaves its alerts as they are
                to_update, to_insert = merge_episodes(
                    existing,
                    found[name],
                    detector=name,
                    scored_until=b,
                    gap_tolerance=COOLDOWN[name],
                    resolve_after=resolve_after,
                    close_unmatched_at=a,
                )
                for change in to_update:
                    alert_rows.update_alert(conn, change.pop("id"), **change)
                for row in to_insert:
                    alert_rows.insert_alert(conn, sensor.id, **row)
                opened, updated = opened + len(to_insert), updated + len(to_update)
            alert_rows.set_scored_until(conn, sensor.id, name, b)
    return opened, updated


def explain_sensor(
    store: Store,
    sensor_name: str,
    *,
    periods: tuple[str, ...] | None = None,
    detectors: tuple[str, ...] = DETECTORS,
    options: DetectOptions = DetectOptions(),
) -> dict[str, dict | str]:
    """Each detector fitted on the sensor's latest training window: what it learned (the
    calibrated thresholds and their floors), or why it cannot fit yet."""
    sensor = store.get_sensor(sensor_name)
    periods = periods or sensor_periods(store, sensor.id)
    latest = store.last_reading(sensor.id)
    if latest is None:
        return dict.fromkeys(detectors, "no readings yet")
    series = store.read_series(sensor.id, latest[0] - TRAIN, latest[0] + pd.Timedelta("1us"))
    out: dict[str, dict | str] = {"periods": ",".join(periods)}
    for name, det in make_detectors(sensor, periods, detectors, options).items():
        try:
            out[name] = det.fit(series).explain()
        except PlantcastError as exc:
            out[name] = f"cannot fit yet: {exc}"
    return out
