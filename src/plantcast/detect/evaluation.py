"""Event-level metrics of detections against labeled events: precision, recall, F1, delay.

Pure: episodes (or alerts) in, tables out. What is scored and how (the production detectors,
chunk by chunk, as ``plantcast detect`` runs them) is ``plantcast.services.detector_evaluation``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from plantcast.detect.base import Detector
from plantcast.detect.baselines import RandomDetector, RollingZDetector, ThresholdDetector

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
    clean twins of the scenarios, over their scored span (``clean_days``).
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
