"""Benchmark the asset (multivariate) detectors on simulated pumps with relationship faults.

Run: ``.venv/bin/python benchmarks/assets.py [--scenarios 30 --seed 1000] [--no-union]``.
Each scenario is a pump (``plantcast.signals.pump``) with one fault of each kind, every sensor
inside its own normal range, ≥ 5σ of the broken relation. Each asset detector is fitted on the
fault-free warm-up (14 days) and scores the rest; its clean twin counts false alerts. Beside
them, the union of today's per-sensor detectors, run on each sensor as ``plantcast detect``
runs them (``replay_alerts``: weekly chunks, refitted, calibrated) and their alerts merged.
Seeds 1000+ are held out: the detectors' settings were chosen on seeds 100-107.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable

import numpy as np
import pandas as pd

from _common import print_table, progress
from plantcast.detect.evaluation import COMBINED, match_events, union_episodes
from plantcast.detect.multivariate import (
    MultivariateDetector,
    NormalBehaviourDetector,
    PCADetector,
)
from plantcast.services.detector_evaluation import replay_alerts
from plantcast.signals.pump import PumpScenario, generate_pump_scenario

UNION = "per_sensor_union"
DETECTORS: dict[str, Callable[[], MultivariateDetector]] = {
    "normal_behaviour": lambda: NormalBehaviourDetector("ridge"),
    "normal_behaviour_gbm": lambda: NormalBehaviourDetector("gbm"),
    "pca_t2q": lambda: PCADetector(),
}
GOALS = (
    "goals: asset event F1 ≥ 0.9 where the per-sensor union scores ≤ 0.3; faulty sensor ranked"
    " first in ≥ 80 % of detected faults; ≤ 2 false alerts per 30 days per asset (clean twins)"
)
TOLERANCE = 3  # readings after a fault's end that still count as catching it


def _scored(eps: pd.DataFrame, scored_from: pd.Timestamp) -> pd.DataFrame:
    return eps[eps["end"] >= scored_from].reset_index(drop=True) if len(eps) else eps


def _covered(index: pd.DatetimeIndex, eps: pd.DataFrame) -> np.ndarray:
    """Rows inside any episode [start, end]."""
    out = np.zeros(len(index), dtype=bool)
    for start, end in zip(eps["start"], eps["end"], strict=True):
        out |= (index >= start) & (index <= end)
    return out


def _in_events(index: pd.DatetimeIndex, labels: pd.DataFrame) -> np.ndarray:
    out = np.zeros(len(index), dtype=bool)
    for start, end in zip(labels["starts_at"], labels["ends_at"], strict=True):
        out |= (index >= start) & (index < end)
    return out


def _top_sensor(eps: pd.DataFrame, event: pd.Series, interval: pd.Timedelta) -> str | None:
    """The first-ranked contributor of the strongest episode that caught ``event``."""
    if "sensor" not in eps:
        return None
    hit = eps[(eps["start"] <= event["ends_at"] + TOLERANCE * interval)]
    hit = hit[hit["end"] >= event["starts_at"]]
    return None if hit.empty else str(hit.sort_values("peak_score")["sensor"].iloc[-1])


def asset_found(
    name: str, scenario: PumpScenario, frame: pd.DataFrame
) -> tuple[pd.DataFrame, np.ndarray]:
    """Episodes and per-row flags of one detector on ``frame`` (the faulty or clean asset)."""
    scored_from = frame.index[0] + scenario.warmup
    if name == UNION:
        found = [
            replay_alerts(frame[s], periods=("24h",), scored_from=scored_from)[COMBINED]
            for s in frame.columns
        ]
        eps = _scored(union_episodes(found), scored_from)
        return eps, _covered(frame.index, eps)
    det = DETECTORS[name]().fit(scenario.train)
    scores = det.detect(frame)
    eps = _scored(det.episodes(frame), scored_from)
    return eps, scores["flag"].to_numpy()


def score_scenario(scenario: PumpScenario, names: list[str]) -> tuple[list[dict], list[dict]]:
    """Per-event rows and per-detector rows (point counts, false positives, clean alerts)."""
    idx = scenario.frame.index
    scored = idx >= idx[0] + scenario.warmup
    truth = _in_events(idx, scenario.labels)[scored]
    days = (idx[-1] - idx[scored][0]) / pd.Timedelta(days=1)
    events, stats = [], []
    for name in names:
        t0 = time.perf_counter()
        eps, flags = asset_found(name, scenario, scenario.frame)
        clean_eps, _ = asset_found(name, scenario, scenario.clean)
        seconds = time.perf_counter() - t0
        matched, fps = match_events(scenario.labels, eps, scenario.interval, TOLERANCE)
        for _, ev in matched.iterrows():
            top = _top_sensor(eps, ev, scenario.interval) if ev["detected"] else None
            events.append({**ev.to_dict(), "detector": name, "top": top})
        pred = flags[scored]
        stats.append(
            {
                "detector": name,
                "false_positives": fps,
                "clean_alerts": len(clean_eps),
                "days": days,
                "tp_points": int((pred & truth).sum()),
                "fp_points": int((pred & ~truth).sum()),
                "fn_points": int((~pred & truth).sum()),
                "seconds": seconds,
            }
        )
    return events, stats


def _f1(p: float, r: float) -> float:
    return 2 * p * r / (p + r) if p + r > 0 else 0.0


def summary(events: pd.DataFrame, stats: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for name, ev in events.groupby("detector", sort=False):
        st = stats[stats["detector"] == name]
        tp, fp = int(ev["detected"].sum()), int(st["false_positives"].sum())
        precision = tp / (tp + fp) if tp + fp else float("nan")
        recall = tp / len(ev)
        tpp, fpp, fnp = (int(st[c].sum()) for c in ("tp_points", "fp_points", "fn_points"))
        pp = tpp / (tpp + fpp) if tpp + fpp else 0.0
        pr = tpp / (tpp + fnp) if tpp + fnp else 0.0
        caught = ev[ev["detected"]]
        rows.append(
            {
                "detector": name,
                "events": len(ev),
                "detected": tp,
                "false_pos": fp,
                "precision": precision,
                "recall": recall,
                "event_f1": _f1(precision, recall) if tp else 0.0,
                "point_f1": _f1(pp, pr),
                "false_alerts_30d": 30.0 * st["clean_alerts"].sum() / st["days"].sum(),
                "missed_rate": 1.0 - recall,
                "median_delay": float(caught["delay"].median()) if tp else float("nan"),
                "contributor_acc": float((caught["top"] == caught["sensor"]).mean())
                if tp and caught["top"].notna().any()
                else float("nan"),
                "s_per_asset": float(st["seconds"].mean()),
            }
        )
    return pd.DataFrame(rows)


def _fmt(v: object) -> str:
    if isinstance(v, float):
        return "-" if np.isnan(v) else f"{v:.2f}"
    return str(v)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenarios", type=int, default=30)
    parser.add_argument("--seed", type=int, default=1000, help="first held-out seed")
    parser.add_argument(
        "--detectors", default=",".join(DETECTORS), help=f"comma-separated: {', '.join(DETECTORS)}"
    )
    parser.add_argument("--no-union", action="store_true", help="skip the per-sensor union")
    args = parser.parse_args(argv)
    names = [n for n in args.detectors.split(",") if n]
    unknown = [n for n in names if n not in DETECTORS]
    if unknown:
        parser.error(f"unknown detectors: {', '.join(unknown)}")
    if not args.no_union:
        names.append(UNION)
    all_events, all_stats = [], []
    for i, seed in enumerate(range(args.seed, args.seed + args.scenarios)):
        ev, st = score_scenario(generate_pump_scenario(seed), names)
        all_events += ev
        all_stats += st
        progress(f"scenario {i + 1}/{args.scenarios} (seed {seed})")
    events, stats = pd.DataFrame(all_events), pd.DataFrame(all_stats)
    table = summary(events, stats)
    print_table(
        f"Asset detectors on {args.scenarios} pumps (seeds {args.seed}..."
        f"{args.seed + args.scenarios - 1}), faults 5-10σ of the broken relation, in range",
        list(table.columns),
        [[_fmt(v) for v in row] for row in table.itertuples(index=False)],
        left=1,
    )
    by_kind = events.groupby(["detector", "kind"], sort=False)
    kinds = by_kind.agg(
        events=("detected", "size"),
        recall=("detected", "mean"),
        delay=("delay", "median"),
        top_ok=("top", lambda s: float((s == events.loc[s.index, "sensor"]).mean())),
    ).reset_index()
    print_table(
        "Per fault kind (top_ok: share of all events whose faulty sensor was ranked first)",
        list(kinds.columns),
        [[_fmt(v) for v in row] for row in kinds.itertuples(index=False)],
    )
    print(f"\n{GOALS}")
    union = table[table["detector"] == UNION]
    union_f1 = float(union["event_f1"].iloc[0]) if len(union) else float("nan")
    for row in table[table["detector"] != UNION].itertuples(index=False):
        ok = (
            row.event_f1 >= 0.9
            and (np.isnan(union_f1) or union_f1 <= 0.3)
            and row.contributor_acc >= 0.8
            and row.false_alerts_30d <= 2.0
        )
        print(
            f"  {row.detector}: event F1 {row.event_f1:.2f} (per-sensor union {union_f1:.2f}),"
            f" contributor {row.contributor_acc:.2f}, false alerts/30d"
            f" {row.false_alerts_30d:.2f}: {'PASS' if ok else 'FAIL'}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
