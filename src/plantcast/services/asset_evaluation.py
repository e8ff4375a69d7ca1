"""How well asset detection catches relationship faults, run as ``detect`` runs it.

Each scenario is a simulated pump (:mod:`plantcast.signals.pump`) with one fault of each kind,
every sensor inside its own normal range, and its clean twin. The asset's alerts are replayed
through the same steps as ``plantcast detect`` (:mod:`plantcast.services.asset_detection`:
weekly chunks on the grid, each detector fitted on the pinned known-good period — the
fault-free warm-up — or causally on the history before the chunk, its alerts left out; the
same episode merge), in memory. Reported per training mode: event precision, recall and F1,
point F1, false alerts per 30 days on the clean twins, the missed-alarm rate, the median
delay, and how often the faulty sensor was ranked first among the contributors.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from plantcast.core.timeutil import parse_duration
from plantcast.core.types import Alert, AlertStatus, Asset, Sensor, Source
from plantcast.detect.evaluation import match_events
from plantcast.services.asset_detection import (
    ASSET_DETECTORS,
    CONTEXT_ROWS,
    AssetDetectOptions,
    AssetPlan,
    _without_alerts,
    alert_changes,
    score_chunk,
    train_span,
)
from plantcast.signals.pump import generate_pump_scenario

MODES = ("pinned", "causal")
TOLERANCE = 3  # readings after a fault's end that still count as catching it
ALERT_COLUMNS = ["start", "end", "detected_at", "peak_score", "sensor", "detector"]


def _asset(frame: pd.DataFrame, interval: pd.Timedelta, pinned: tuple | None) -> Asset:
    at = frame.index[0]
    members = tuple(
        Sensor(j, str(c), "", "", Source.SIMULATED, interval, at) for j, c in enumerate(frame)
    )
    lo, hi = pinned if pinned is not None else (None, None)
    return Asset(0, "asset", "", interval, lo, hi, at, members)


def replay_asset(
    frame: pd.DataFrame,
    interval: pd.Timedelta,
    scored_from: pd.Timestamp,
    *,
    pinned: tuple[pd.Timestamp, pd.Timestamp] | None = None,
    detectors: tuple[str, ...] = ASSET_DETECTORS,
    options: AssetDetectOptions | None = None,
) -> pd.DataFrame:
    """The alerts ``detect`` would write for an asset whose aligned readings are ``frame``,
    scoring from ``scored_from``: one row each (``ALERT_COLUMNS``; ``sensor`` its first
    contributor, ``end`` the last scored time while it is ongoing)."""
    options = options or AssetDetectOptions()
    asset = _asset(frame, interval, pinned)
    plan = AssetPlan(asset, detectors, scored_from, frame.index[-1], dict.fromkeys(detectors))
    resolve_after = parse_duration(options.resolve_after, field="resolve_after")
    alerts: dict[int, Alert] = {}
    for a, b in plan.chunks():
        if pinned is not None:
            training = frame[(frame.index >= pinned[0]) & (frame.index < pinned[1])]
        else:
            past = frame[(frame.index >= a - train_span(asset)) & (frame.index < a)]
            training = _without_alerts(past, alerts.values())
        window = frame[(frame.index >= a - CONTEXT_ROWS * interval) & (frame.index < b)]
        score = score_chunk(plan, window, training, a, b, options)
        updates, inserts = alert_changes(list(alerts.values()), score, resolve_after, b - interval)
        for change in updates:
            old = alerts[change.pop("id")]
            fields = {**vars(old), **change}
            alerts[old.id] = Alert(**fields)
        for row in inserts:
            new_id = len(alerts) + 1
            alerts[new_id] = Alert(
                id=new_id,
                sensor_id=None,
                status=AlertStatus.OPEN,
                created_at=b,
                asset_id=0,
                **row,
            )
    last = frame.index[-1]
    rows = [
        (
            x.ts,
            x.ends_at if x.ends_at is not None else last,
            x.ts,
            x.score,
            next(iter(x.contributors), None),
            x.detector,
        )
        for x in alerts.values()
    ]
    return pd.DataFrame(rows, columns=ALERT_COLUMNS)


def _covered(index: pd.DatetimeIndex, spans: pd.DataFrame, a: str, b: str) -> np.ndarray:
    out = np.zeros(len(index), dtype=bool)
    for lo, hi in zip(spans[a], spans[b], strict=True):
        out |= (index >= lo) & (index <= hi) if b == "end" else (index >= lo) & (index < hi)
    return out


def _top(found: pd.DataFrame, event: pd.Series, interval: pd.Timedelta) -> str | None:
    """The first contributor of the strongest alert that caught ``event``."""
    hit = found[(found["start"] <= event["ends_at"] + TOLERANCE * interval)]
    hit = hit[hit["end"] >= event["starts_at"]]
    return None if hit.empty else str(hit.sort_values("peak_score")["sensor"].iloc[-1])


def _f1(p: float, r: float) -> float:
    return 2 * p * r / (p + r) if p + r > 0 else 0.0


def evaluate_assets(
    scenarios: int = 5,
    seed: int = 1000,
    *,
    modes: tuple[str, ...] = MODES,
    options: AssetDetectOptions | None = None,
    on_progress: Callable[[int, int, str], None] | None = None,
) -> pd.DataFrame:
    """One row per training mode over ``scenarios`` pumps (seeds ``seed``…): events, detected,
    false_pos, precision, recall, event_f1, point_f1, false_alerts_30d (clean twins),
    missed_rate, median_delay (readings), top_contributor (share of detected faults whose
    faulty sensor was ranked first)."""
    tallies: dict[str, dict] = {
        m: {"events": 0, "detected": 0, "fp": 0, "tp_p": 0, "fp_p": 0, "fn_p": 0, "clean": 0}
        | {"days": 0.0, "delays": [], "top": 0}
        for m in modes
    }
    for i in range(scenarios):
        sc = generate_pump_scenario(seed + i)
        idx = sc.frame.index
        scored_from = idx[0] + sc.warmup
        scored = idx >= scored_from
        truth = _covered(idx, sc.labels, "starts_at", "ends_at")[scored]
        for mode in modes:
            pinned = (idx[0], scored_from) if mode == "pinned" else None
            found = replay_asset(sc.frame, sc.interval, scored_from, pinned=pinned, options=options)
            clean = replay_asset(sc.clean, sc.interval, scored_from, pinned=pinned, options=options)
            matched, fps = match_events(sc.labels, found, sc.interval, TOLERANCE)
            t = tallies[mode]
            t["events"] += len(matched)
            t["detected"] += int(matched["detected"].sum())
            t["fp"] += fps
            t["clean"] += len(clean)
            t["days"] += (idx[-1] - scored_from) / pd.Timedelta(days=1)
            t["delays"] += [float(d) for d in matched["delay"].dropna()]
            for _, ev in matched[matched["detected"]].iterrows():
                t["top"] += _top(found, ev, sc.interval) == ev["sensor"]
            pred = _covered(idx, found, "start", "end")[scored]
            t["tp_p"] += int((pred & truth).sum())
            t["fp_p"] += int((pred & ~truth).sum())
            t["fn_p"] += int((~pred & truth).sum())
        if on_progress:
            on_progress(i + 1, scenarios, f"pump {seed + i}")
    rows = []
    for mode, t in tallies.items():
        tp, fp = t["detected"], t["fp"]
        precision = tp / (tp + fp) if tp + fp else float("nan")
        recall = tp / t["events"] if t["events"] else float("nan")
        pp = t["tp_p"] / (t["tp_p"] + t["fp_p"]) if t["tp_p"] + t["fp_p"] else 0.0
        pr = t["tp_p"] / (t["tp_p"] + t["fn_p"]) if t["tp_p"] + t["fn_p"] else 0.0
        rows.append(
            {
                "training": mode,
                "events": t["events"],
                "detected": tp,
                "false_pos": fp,
                "precision": precision,
                "recall": recall,
                "event_f1": _f1(precision, recall) if tp else 0.0,
                "point_f1": _f1(pp, pr),
                "false_alerts_30d": 30.0 * t["clean"] / t["days"] if t["days"] else float("nan"),
                "missed_rate": 1.0 - recall if t["events"] else float("nan"),
                "median_delay": float(np.median(t["delays"])) if t["delays"] else float("nan"),
                "top_contributor": t["top"] / tp if tp else float("nan"),
            }
        )
    return pd.DataFrame(rows)
