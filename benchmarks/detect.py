"""Benchmark the detectors on labeled scenarios (event-level F1, delay, false alerts) and speed.

Run: ``.venv/bin/python benchmarks/detect.py [--scenarios 50 --seed 0] [--tune]``.
``--tune`` sweeps thresholds on seeds 1000+ (never the reported seeds) and prints the grid.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
import pandas as pd

from plantcast.detect import (
    DropoutDetector,
    LevelShiftDetector,
    ResidualZDetector,
    StuckDetector,
    ThresholdDetector,
)
from plantcast.detect.evaluation import run_evaluation, summarize
from plantcast.signals import SignalModel, generate_readings

GOALS = "goals: F1 ≥ 0.95 spikes/level shifts ≥ 5σ, ≥ 0.9 all kinds; delay ≤ 1 (spike), ≤ 6 (shift)"


def _progress(done: int, total: int) -> None:
    print(f"\r  scenario {done}/{total}", end="", file=sys.stderr, flush=True)
    if done == total:
        print(file=sys.stderr)


def speed(n: int = 1_000_000) -> dict[str, float]:
    """Seconds to score ``n`` readings with each detector (fitted on the first 14 days)."""
    series = generate_readings(SignalModel(), "2000-01-01", periods=n, interval="30min")
    train = series.iloc[: 14 * 48]
    dets = [
        ResidualZDetector(),
        LevelShiftDetector(),
        StuckDetector(),
        DropoutDetector(),
        ThresholdDetector(),
    ]
    times = {}
    for det in dets:
        det.fit(train)
        t0 = time.perf_counter()
        det.detect(series)
        times[det.name] = time.perf_counter() - t0
    times["total"] = sum(times.values())
    return times


def tune(n: int, noise_kind: str = "uniform") -> None:
    """Sweep the residual-z threshold and the CUSUM h on seeds 1000.. (not the report seeds)."""
    rows = []
    for thr in (2.5, 3.0, 3.5, 4.0):
        for h in (5.0, 8.0, 12.0):
            dets = {
                "residual_z": ResidualZDetector(threshold=thr),
                "level_shift": LevelShiftDetector(h=h),
                "stuck": StuckDetector(),
                "dropout": DropoutDetector(),
            }
            ev, st = run_evaluation(n, 1000, detectors=dets, baselines=False, noise_kind=noise_kind)
            table = summarize(ev, st)
            comb = table[table["detector"] == "combined"].set_index("kind")
            big = summarize(ev[ev["magnitude_sigma"].abs().fillna(99) >= 5], st)
            big = big[big["detector"] == "combined"].set_index("kind")
            rows.append(
                dict(
                    threshold=thr,
                    h=h,
                    f1_all=comb.loc["all", "f1"],
                    f1_spike_5=big.loc["spike", "f1"],
                    f1_shift_5=big.loc["level_shift", "f1"],
                    fa_30d=comb.loc["all", "false_alerts_per_30d"],
                )
            )
    print(pd.DataFrame(rows).round(3).to_string(index=False))


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--scenarios", type=int, default=50)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--tune", action="store_true", help="sweep thresholds on seeds 1000+")
    ap.add_argument("--readings", type=int, default=1_000_000)
    ap.add_argument(
        "--noise",
        choices=["uniform", "gaussian"],
        default="uniform",
        help="noise of the scenarios: the demo's uniform ±2, or Gaussian of the same σ",
    )
    args = ap.parse_args(argv)
    pd.set_option("display.width", 200)
    if args.tune:
        tune(args.scenarios, args.noise)
        return
    t0 = time.perf_counter()
    ev, st = run_evaluation(args.scenarios, args.seed, on_progress=_progress, noise_kind=args.noise)
    took = time.perf_counter() - t0
    table = summarize(ev, st)
    print(
        f"{args.scenarios} scenarios (seeds {args.seed}..{args.seed + args.scenarios - 1}), "
        f"events 3σ–10σ, demo signal with {args.noise} noise, 30-min step; {took:.1f} s"
    )
    print(table.round(3).to_string(index=False))
    print("\nevents of ≥ 5σ (spikes, level shifts, drifts, noise bursts), all detectors:")
    big = summarize(ev[ev["magnitude_sigma"].abs().fillna(np.inf) >= 5], st)
    keep = big["kind"].isin(["spike", "level_shift", "all"])
    print(big[keep].round(3).to_string(index=False))
    print("\n" + GOALS)
    times = speed(args.readings)
    print(
        f"\nscoring {args.readings:,} readings (s): "
        + ", ".join(f"{k} {v:.2f}" for k, v in times.items())
    )


if __name__ == "__main__":
    main()
