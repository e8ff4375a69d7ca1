"""Event-level evaluation on labeled scenarios: precision, recall, F1, delay, false alerts.

Scenarios are synthetic (:func:`plantcast.signals.scenarios.generate_scenario`) or real
backgrounds with injected events (:func:`plantcast.signals.recordings.real_scenario`);
:func:`clean_days` counts false alerts on whole real recordings.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from plantcast.detect.base import Detector
from plantcast.detect.baselines import RandomDetector, RollingZDetector, ThresholdDetector
from plantcast.detect.dropout import DropoutDetector
from plantcast.detect.residual import DETECT_HARMONICS, ResidualZDetector
from plantcast.detect.shift import LevelShiftDetector
from plantcast.detect.stuck import StuckDetector
from plantcast.signals.recordings import PERIODS, real_scenario
from plantcast.signals.scenarios import Scenario, generate_scenario

COMBINED = "combined"
# Which detector is meant to catch which kind (the others may still catch it, and count).
COVERS = {
    "residual_z": ("spike", "noise_burst", "level_shift"),
    "level_shift": ("level_shift", "drift"),
    "stuck": ("stuck",),
    "dropout": ("dropout",),
}
SUMMARY_COLUMNS = [
    "detector",
    "kind",
    "events",
    "detected",
    "false_positives",
    "precision",
    "recall",
    "f1",
    "median_delay",
    "false_alerts_per_30d",
]


def default_detectors(
    forecaster: Any = "fourier_linear", periods: tuple[str, ...] | None = None
) -> dict[str, Detector]:
    """The detectors the ``combined`` row unites: residual z, CUSUM, stuck, dropout.

    ``periods`` are the sensor's seasonal periods (the forecaster's default when None).
    """
    params = None if periods is None else {"periods": tuple(periods), "harmonics": DETECT_HARMONICS}
    return {
        "residual_z": ResidualZDetector(forecaster, params),
        "level_shift": LevelShiftDetector(forecaster, params),
        "stuck": StuckDetector(),
        "dropout": DropoutDetector(),
    }


def baseline_detectors() -> dict[str, Detector]:
    return {
        "static_threshold": ThresholdDetector(),
        "rolling_z": RollingZDetector(),
        "random": RandomDetector(seed=0),
    }


def union_episodes(episodes: list[pd.DataFrame]) -> pd.DataFrame:
    """Overlapping episodes of several detectors merged into one (earliest detection kept)."""
    frames = [e[["start", "end", "detected_at"]] for e in episodes if len(e)]
    if not frames:
        return pd.DataFrame(columns=["start", "end", "detected_at"])
    rows = pd.concat(frames).sort_values("start").to_numpy()
    merged = [list(rows[0])]
    for start, end, det in rows[1:]:
        last = merged[-1]
        if start <= last[1]:
            last[1], last[2] = max(last[1], end), min(last[2], det)
        else:
            merged.append([start, end, det])
    return pd.DataFrame(merged, columns=["start", "end", "detected_at"])


def match_events(
    labels: pd.DataFrame, episodes: pd.DataFrame, interval: pd.Timedelta, tolerance: int = 3
) -> tuple[pd.DataFrame, int]:
    """Per event: detected (an episode overlaps [start, end + tolerance readings]) and delay.

    ``ends_at`` is exclusive, so the window reaches ``tolerance`` readings past the first reading
    after the event. Delay = first detection − start, in readings (≥ 0). Returns the events with
    ``detected`` and ``delay`` columns, and the number of episodes that overlap no event.
    """
    starts = labels["starts_at"].to_numpy(dtype="datetime64[ns]")
    stops = (labels["ends_at"] + tolerance * interval).to_numpy(dtype="datetime64[ns]")
    ep_start = episodes["start"].to_numpy(dtype="datetime64[ns]")
    ep_end = episodes["end"].to_numpy(dtype="datetime64[ns]")
    ep_det = episodes["detected_at"].to_numpy(dtype="datetime64[ns]")
    # overlap[i, j]: episode j touches the window of event i
    overlap = (ep_start[None, :] <= stops[:, None]) & (ep_end[None, :] >= starts[:, None])
    detected = overlap.any(axis=1)
    first = np.array(
        [ep_det[o].min() if o.any() else np.datetime64("NaT") for o in overlap], dtype="M8[ns]"
    )
    delay = np.maximum((first - starts) / interval.to_timedelta64(), 0.0)
    out = labels.assign(detected=detected, delay=np.where(detected, delay, np.nan))
    return out, int((~overlap.any(axis=0)).sum())


def score_scenario(
    scenario: Scenario, detectors: Mapping[str, Detector], tolerance: int = 3
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Fit each detector on the warm-up, score the series and its clean twin.

    Returns per-event rows (detector, kind, magnitude_sigma, detected, delay) and per-detector
    rows (false_positives, clean_alerts, clean_days), including the ``combined`` union of the
    non-baseline detectors.
    """
    events, stats, found, clean_found = [], [], {}, {}
    days = (scenario.clean.index[-1] - scenario.clean.index[0]) / pd.Timedelta(days=1)
    for name, det in detectors.items():
        det.fit(scenario.train)
        found[name] = det.episodes(scenario.series)
        clean_found[name] = det.episodes(scenario.clean)
    primary = [n for n in detectors if n in COVERS]
    if primary:
        found[COMBINED] = union_episodes([found[n] for n in primary])
        clean_found[COMBINED] = union_episodes([clean_found[n] for n in primary])
    for name, eps in found.items():
        matched, fps = match_events(scenario.labels, eps, scenario.interval, tolerance)
        events.append(matched.assign(detector=name))
        stats.append((name, fps, len(clean_found[name]), days))
    cols = ["detector", "false_positives", "clean_alerts", "clean_days"]
    return pd.concat(events, ignore_index=True), pd.DataFrame(stats, columns=cols)


def run_evaluation(
    n_scenarios: int = 50,
    seed: int = 0,
    *,
    source: str = "synthetic",
    backgrounds: Mapping[str, pd.Series] | None = None,
    detectors: Mapping[str, Detector] | None = None,
    baselines: bool = True,
    tolerance: int = 3,
    on_progress: Callable[[int, int], None] | None = None,
    **scenario_kwargs: Any,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Score ``n_scenarios`` scenarios (seeds ``seed .. seed + n − 1``); raw rows to summarize.

    ``source="real"`` builds each scenario on a real series of ``backgrounds`` (``{name:
    series}``, taken in turn) with :func:`real_scenario`; without ``detectors``, each gets the
    production set configured with the recording's seasonal periods. Rows carry the
    ``scenario`` seed and the ``background`` ("synthetic" for generated ones).
    """
    if source not in ("synthetic", "real"):
        raise ValueError(f"source must be 'synthetic' or 'real', got {source!r}")
    names = list(backgrounds or {})
    if source == "real" and not names:
        raise ValueError("a real evaluation needs backgrounds: {name: series}")
    events, stats = [], []
    for i in range(n_scenarios):
        name = names[i % len(names)] if source == "real" else "synthetic"
        periods = PERIODS.get(name, ("24h",))
        if source == "real":
            background = (backgrounds or {})[name]
            scenario = real_scenario(background, seed + i, periods=periods, **scenario_kwargs)
        else:
            scenario = generate_scenario(seed + i, **scenario_kwargs)
        dets = _detector_set(detectors, baselines, periods if source == "real" else None)
        ev, st = score_scenario(scenario, dets, tolerance)
        events.append(ev.assign(scenario=seed + i, background=name))
        stats.append(st.assign(scenario=seed + i, background=name))
        if on_progress is not None:
            on_progress(i + 1, n_scenarios)
    return pd.concat(events, ignore_index=True), pd.concat(stats, ignore_index=True)


def _detector_set(
    detectors: Mapping[str, Detector] | None, baselines: bool, periods: tuple[str, ...] | None
) -> dict[str, Detector]:
    dets = dict(default_detectors(periods=periods) if detectors is None else detectors)
    if baselines:
        dets.update(baseline_detectors())
    return dets


CLEAN_COLUMNS = [
    "sensor",
    "detector",
    "days",
    "alerts",
    "false_alerts",
    "false_alerts_per_30d",
    "events",
    "detected",
    "recall",
    "precision",
]


def clean_days(
    recordings: Mapping[str, pd.Series],
    *,
    labels: Mapping[str, pd.DataFrame] | None = None,
    detectors: Mapping[str, Detector] | None = None,
    baselines: bool = True,
    fit_days: float = 14,
    tolerance: int = 3,
) -> pd.DataFrame:
    """False alerts per 30 days on whole real recordings: fit on the first ``fit_days``, score
    the rest (the series is scored whole, so trailing statistics have their context; episodes
    ending in the fit period are not counted).

    ``labels`` (``{name: frame with kind, starts_at, ends_at}``) name known real anomalies:
    an episode that touches one is not false, and their recall and event precision are
    reported (NaN without labels). One row per recording × detector, ``combined`` included.
    """
    rows = []
    for name, series in recordings.items():
        periods = PERIODS.get(name, ("24h",))
        dets = _detector_set(detectors, baselines, periods)
        fit_end = series.index[0] + pd.Timedelta(days=fit_days)
        days = (series.index[-1] - fit_end) / pd.Timedelta(days=1)
        step = pd.Timedelta(int(np.median(np.diff(series.index.asi8))), unit="ns")
        known = (labels or {}).get(name)
        if known is None:
            known = pd.DataFrame(columns=["kind", "starts_at", "ends_at"])
        known = known[known["starts_at"] >= fit_end]
        found = {}
        for det_name, det in dets.items():
            det.fit(series[series.index < fit_end])
            eps = det.episodes(series)
            found[det_name] = eps[eps["end"] >= fit_end] if len(eps) else eps
        primary = [n for n in dets if n in COVERS]
        if primary:
            found[COMBINED] = union_episodes([found[n] for n in primary])
        for det_name, eps in found.items():
            matched, false = match_events(known, eps, step, tolerance)
            hit = int(matched["detected"].sum())
            true_eps = len(eps) - false
            rows.append(
                (
                    name,
                    det_name,
                    days,
                    len(eps),
                    false,
                    30.0 * false / days,
                    len(known),
                    hit,
                    hit / len(known) if len(known) else float("nan"),
                    true_eps / len(eps) if len(known) and len(eps) else float("nan"),
                )
            )
    return pd.DataFrame(rows, columns=CLEAN_COLUMNS)


def _row(detector: str, kind: str, ev: pd.DataFrame, fps: int, alerts_30d: float) -> dict[str, Any]:
    tp = int(ev["detected"].sum())
    precision = tp / (tp + fps) if tp + fps else float("nan")
    recall = tp / len(ev) if len(ev) else float("nan")
    f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    return dict(
        zip(
            SUMMARY_COLUMNS,
            [
                detector,
                kind,
                len(ev),
                tp,
                fps,
                precision,
                recall,
                f1,
                float(ev["delay"].median()) if tp else float("nan"),
                alerts_30d,
            ],
            strict=True,
        )
    )


def summarize(events: pd.DataFrame, stats: pd.DataFrame) -> pd.DataFrame:
    """Rows detector × kind plus kind ``all``: event-level precision, recall, F1, delay.

    TP counts detected events; FP counts episodes that overlap no event (a detector's false
    positives count against each of its kind rows). ``false_alerts_per_30d`` is measured on the
    clean twins of the scenarios.
    """
    rows = []
    for det, ev in events.groupby("detector", sort=False):
        st = stats[stats["detector"] == det]
        fps = int(st["false_positives"].sum())
        alerts_30d = 30.0 * st["clean_alerts"].sum() / st["clean_days"].sum()
        for kind, kev in ev.groupby("kind", sort=True):
            rows.append(_row(det, kind, kev, fps, alerts_30d))
        rows.append(_row(det, "all", ev, fps, alerts_30d))
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS)


def evaluate_detectors(n_scenarios: int = 50, seed: int = 0, **options: Any) -> pd.DataFrame:
    """The evaluation table: detector × kind (+ ``all``), with ``combined`` and the baselines.

    ``options`` are those of :func:`run_evaluation` (detectors, baselines, tolerance,
    on_progress, and scenario settings such as ``noise_kind``).
    """
    return summarize(*run_evaluation(n_scenarios, seed, **options))
