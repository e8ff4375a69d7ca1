"""Event-level metrics of detections against labeled events: precision, recall, F1, delay,
lead time and a NAB score.

Pure: episodes (or alerts) in, tables out. What is scored and how (the production detectors,
chunk by chunk, as ``plantcast detect`` runs them) is ``plantcast.services.detector_evaluation``.

Each labelled event has a *failure window*: from its start to ``tolerance`` readings past its
end (``ends_at`` is exclusive). An alert that overlaps the window detects the event; its
*detection time* is the first ``detected_at`` of those alerts, held inside the window. The
*lead time* is how long before the window's end the event was detected (hours; the whole
window when found at its start, 0 at its end): early detection counts. The *NAB score*
follows the Numenta Anomaly Benchmark's standard profile: the first detection in a window
earns ``A_TP`` × the scaled sigmoid of its relative position (1 at the window's start, 0 at
its end), a missed window costs ``A_FN``, and an alert that overlaps no window costs ``A_FP``
(× the sigmoid of its distance past the previous window, in window lengths: next to a window
almost nothing, from three windows on, or before any window, in full). The sum is normalized
to 0 for the null detector (no alerts) and 100 for the perfect one (every window detected at
its start, no false alert), as NAB reports it; many false alerts take it below 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from plantcast.detect.base import Detector
from plantcast.detect.baselines import RandomDetector, RollingZDetector, ThresholdDetector
from plantcast.detect.discord import DiscordDetector

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
    "median_lead_h",
    "nab",
    "false_alerts_per_30d",
]


@dataclass(frozen=True)
class NabProfile:
    """NAB's application-profile weights; the default is its standard profile."""

    tp: float = 1.0
    fp: float = -0.11
    fn: float = -1.0


NAB_STANDARD = NabProfile()


BASELINES = ("rolling_z", "matrix_profile", "static_threshold", "random")


def baseline_detectors(
    periods: tuple[str, ...] = (),
    *,
    budget: float | None = None,
    train_window: str | pd.Timedelta = "14d",
) -> dict[str, Detector]:
    """What the production detectors are measured against, by name: a rolling z-score and a
    matrix profile alone (discords, ``periods`` picking its window), both calibrated to
    ``budget`` as the production detectors are; a static mean ± 3σ band and random flags as
    floors. ``matrix_profile`` is not ``discord``, so it can stand beside a production one."""
    return {
        "rolling_z": RollingZDetector(budget=budget, train_window=train_window),
        "matrix_profile": DiscordDetector(periods, budget=budget, train_window=train_window),
        "static_threshold": ThresholdDetector(train_window=train_window),
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


def _ns(values: Any) -> np.ndarray:
    out: np.ndarray = pd.to_datetime(pd.Series(values), utc=True).to_numpy(dtype="datetime64[ns]")
    return out


def failure_windows(
    labels: pd.DataFrame, interval: pd.Timedelta, tolerance: int = 3
) -> tuple[np.ndarray, np.ndarray]:
    """Each event's failure window [start, stop]: its start to ``tolerance`` readings past the
    first reading after it (``ends_at`` is exclusive), as ``datetime64[ns]`` arrays."""
    starts = _ns(labels["starts_at"])
    stops = _ns(labels["ends_at"]) + (tolerance * interval).to_timedelta64()
    return starts, stops


def scaled_sigmoid(y: np.ndarray | float) -> np.ndarray:
    """NAB's reward curve of a relative position ``y`` (−1 window start, 0 window end, > 0
    past it in window lengths): 2 / (1 + e^(5y)) − 1, and −1 beyond three window lengths."""
    y = np.asarray(y, dtype=np.float64)
    return np.where(y > 3.0, -1.0, 2.0 / (1.0 + np.exp(5.0 * np.minimum(y, 3.0))) - 1.0)


def _overlaps(starts: np.ndarray, stops: np.ndarray, episodes: pd.DataFrame) -> np.ndarray:
    """overlap[i, j]: episode j touches the failure window of event i."""
    ep_start, ep_end = _ns(episodes["start"]), _ns(episodes["end"])
    out: np.ndarray = (ep_start[None, :] <= stops[:, None]) & (ep_end[None, :] >= starts[:, None])
    return out


def match_events(
    labels: pd.DataFrame,
    episodes: pd.DataFrame,
    interval: pd.Timedelta,
    tolerance: int = 3,
    profile: NabProfile = NAB_STANDARD,
) -> tuple[pd.DataFrame, int]:
    """Per event: detected (an episode overlaps its failure window), delay, lead and NAB reward.

    Delay = first detection − start, in readings (≥ 0). Lead = failure window's end − first
    detection (held inside the window), in hours. ``nab`` = the event's NAB term: ``profile.tp``
    × the scaled sigmoid of the detection's place in the window (1 at its start, 0 at its end),
    or ``profile.fn`` when missed. Returns the events with ``detected``, ``delay``, ``lead_h``
    and ``nab`` columns, and the number of episodes that overlap no event.
    """
    starts, stops = failure_windows(labels, interval, tolerance)
    ep_det = _ns(episodes["detected_at"])
    overlap = _overlaps(starts, stops, episodes)
    detected = overlap.any(axis=1)
    first = np.array(
        [ep_det[o].min() if o.any() else np.datetime64("NaT") for o in overlap], dtype="M8[ns]"
    )
    delay = np.maximum((first - starts) / interval.to_timedelta64(), 0.0)
    at = np.minimum(np.maximum(first, starts), stops)
    width = np.maximum((stops - starts).astype(np.float64), 1.0)
    y = (at - stops).astype(np.float64) / width  # −1 at the window's start, 0 at its end
    reward = profile.tp * scaled_sigmoid(y) / scaled_sigmoid(-1.0)
    out = labels.assign(
        detected=detected,
        delay=np.where(detected, delay, np.nan),
        lead_h=np.where(detected, (stops - at) / np.timedelta64(1, "h"), np.nan),
        nab=np.where(detected, reward, profile.fn),
    )
    return out, int((~overlap.any(axis=0)).sum())


def false_alert_weights(
    labels: pd.DataFrame, episodes: pd.DataFrame, interval: pd.Timedelta, tolerance: int = 3
) -> np.ndarray:
    """NAB's weight (0–1) of each episode that overlaps no failure window: by its detection's
    distance past the previous window's end, in that window's lengths (−scaled sigmoid: about 0
    right after a window, 1 from three lengths on), and 1 before any window."""
    starts, stops = failure_windows(labels, interval, tolerance)
    false = ~_overlaps(starts, stops, episodes).any(axis=0)
    at = _ns(episodes["detected_at"])[false]
    order = np.argsort(stops)
    stops_sorted, widths = stops[order], (stops - starts)[order].astype(np.float64)
    prev = np.searchsorted(stops_sorted, at, side="left") - 1  # last window ended before
    weights = np.ones(len(at))
    has = prev >= 0
    if has.any():
        past = (at[has] - stops_sorted[prev[has]]).astype(np.float64)
        y = past / np.maximum(widths[prev[has]], 1.0)
        weights[has] = -scaled_sigmoid(y)
    return weights


def nab_score(
    rewards: np.ndarray | pd.Series, fp_weight: float, profile: NabProfile = NAB_STANDARD
) -> float:
    """NAB's normalized score, 0 for the null detector and 100 for the perfect one:
    100 × (raw − null) / (perfect − null), where raw = Σ event terms (``match_events``'s
    ``nab``) + ``profile.fp`` × ``fp_weight`` (Σ ``false_alert_weights``), null = n × ``fn``
    and perfect = n × ``tp`` over the n events. NaN without events."""
    n = len(rewards)
    if n == 0:
        return float("nan")
    raw = float(np.sum(rewards)) + profile.fp * fp_weight
    null, perfect = n * profile.fn, n * profile.tp
    return 100.0 * (raw - null) / (perfect - null)


def labelled_scores(
    labels: pd.DataFrame, alerts: pd.DataFrame, interval: pd.Timedelta, tolerance: int = 3
) -> dict[str, float]:
    """One sensor's alerts (start, end, detected_at) against its labelled events: events,
    detected, alerts, false_alerts, recall, precision (alerts touching an event / alerts), f1,
    median_lead_h and nab — the figures a labelled replay reports."""
    eps = alerts[["start", "end", "detected_at"]]
    matched, false = match_events(labels, eps, interval, tolerance)
    hit = int(matched["detected"].sum())
    precision = (len(eps) - false) / len(eps) if len(eps) else float("nan")
    recall = hit / len(labels) if len(labels) else float("nan")
    fp_weight = float(false_alert_weights(labels, eps, interval, tolerance).sum())
    good = precision + recall > 0  # NaN compares False
    return {
        "events": len(labels),
        "detected": hit,
        "alerts": len(eps),
        "false_alerts": false,
        "recall": recall,
        "precision": precision,
        "f1": 2 * precision * recall / (precision + recall) if good else 0.0,
        "median_lead_h": float(matched["lead_h"].median()) if hit else float("nan"),
        "nab": nab_score(matched["nab"].to_numpy(), fp_weight),
    }


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
    "f1",
    "median_lead_h",
    "nab",
]


def _row(
    detector: str, kind: str, ev: pd.DataFrame, fps: int, fp_weight: float, alerts_30d: float
) -> dict[str, Any]:
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
                float(ev["lead_h"].median()) if tp else float("nan"),
                nab_score(ev["nab"].to_numpy(), fp_weight),
                alerts_30d,
            ],
            strict=True,
        )
    )


def summarize(events: pd.DataFrame, stats: pd.DataFrame) -> pd.DataFrame:
    """Rows detector × kind plus kind ``all``: event-level precision, recall, F1, delay, lead
    time and NAB score.

    TP counts detected events; FP counts episodes that overlap no event (a detector's false
    positives count against each of its kind rows, in precision and in NAB, whose penalty is
    ``fp_weight``). ``false_alerts_per_30d`` is measured on the
    clean twins of the scenarios, over their scored span (``clean_days``).
    """
    rows = []
    for det, ev in events.groupby("detector", sort=False):
        st = stats[stats["detector"] == det]
        fps, fp_weight = int(st["false_positives"].sum()), float(st["fp_weight"].sum())
        alerts_30d = 30.0 * st["clean_alerts"].sum() / st["clean_days"].sum()
        for kind, kev in ev.groupby("kind", sort=True):
            rows.append(_row(det, kind, kev, fps, fp_weight, alerts_30d))
        rows.append(_row(det, "all", ev, fps, fp_weight, alerts_30d))
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS)
