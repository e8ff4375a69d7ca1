"""Benchmark the pattern-change detectors: recall on planted changes, false flags on clean series,
and the time per call on a 10k-reading series.

Run: ``.venv/bin/python benchmarks/detect_patterns.py [--scenarios 20 --seed 100]``.
Each scenario is 10 days at 15 min (daily cycle, or none: AR noise), fitted on the first 7 days
at the default budget and scored on the last 3; a change is caught when a flag falls within a
day of its onset, a clean series is falsely flagged when any reading of the last 3 days is.
A 1 s sensor with 15 minutes of history (a repeated 30 s motif, no season given) is scored the
same way over the next 5 minutes.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd

from _common import print_table, progress
from plantcast.detect import (
    DiscordDetector,
    DriftDetector,
    ProfileChangeDetector,
    ScaleChangeDetector,
)
from plantcast.detect.discord import stumpy_module

DETECTORS = {
    "discord": DiscordDetector,
    "scale_change": ScaleChangeDetector,
    "profile_change": ProfileChangeDetector,
    "drift": DriftDetector,
}
KINDS = ("flat", "frequency", "scale", "drift")  # the planted changes
TRAIN_END = pd.Timestamp("2026-01-08", tz="UTC")
ONSET = pd.Timestamp("2026-01-08 12:00", tz="UTC")


def scenario(kind: str, seed: int, *, seasonal: bool = True) -> pd.Series:
    """10 days at 15 min with a change planted from ONSET (a drift: 4 σ over the day from
    TRAIN_END). ``flat``: the daily cycle shrinks to 30 %; ``frequency``: it is replaced by a
    4-hour one; ``scale``: the noise variance triples."""
    rng = np.random.default_rng(seed)
    idx = pd.date_range("2026-01-01", periods=960, freq="15min", tz="UTC")
    t = np.asarray((idx - idx[0]) / pd.Timedelta("1d"), dtype=float)
    cycle = 10 * np.sin(2 * np.pi * t) + 4 * np.sin(4 * np.pi * t + 1) if seasonal else 0 * t
    white = rng.normal(0, 1, len(t))
    noise = white if seasonal else pd.Series(white).ewm(alpha=0.5).mean().to_numpy() * 1.7
    on = idx >= ONSET
    if kind == "flat":
        cycle = np.where(on, 0.3 * cycle, cycle)
    elif kind == "frequency":
        cycle = np.where(on, 10 * np.sin(2 * np.pi * 6 * t), cycle)
    elif kind == "scale":
        noise = np.where(on, noise * np.sqrt(3), noise)
    x = 50 + cycle + noise
    if kind == "drift":
        x = x + 4.0 * np.clip(t - 7.0, 0.0, 1.0)
    return pd.Series(x, index=idx)


def one_second(kind: str, seed: int) -> pd.Series:
    """20 min at 1 s: a 30 s motif in AR noise; a change from minute 15 (``clean``: none)."""
    rng = np.random.default_rng(seed)
    idx = pd.date_range("2026-03-01", periods=1200, freq="1s", tz="UTC")
    noise = pd.Series(rng.normal(0, 0.5, 1200)).ewm(alpha=0.5).mean().to_numpy()
    stroke = 2.0 * ((np.arange(1200) % 30) / 30.0) ** 2
    x = 20 + stroke + noise
    k = np.arange(300)
    if kind in ("flat", "frequency"):
        x[900:] += np.sin(2 * np.pi * k / 7) - stroke[900:]
    elif kind == "scale":
        x[900:] += 2 * noise[900:]
    elif kind == "drift":
        x[900:] += np.minimum(k / 120, 1.0) * 1.5
    return pd.Series(x, index=idx)


def caught(name: str, series: pd.Series, train_end, onset, periods) -> bool:
    det = DETECTORS[name](periods).fit(series[series.index < train_end])
    out = det.detect(series[series.index >= train_end])
    hits = out.flag[(out.index >= onset) & (out.index < onset + pd.Timedelta("1d"))]
    return bool(hits.any()) and not bool(out.flag[out.index < onset].any())


def flagged(name: str, series: pd.Series, train_end, periods) -> bool:
    det = DETECTORS[name](periods).fit(series[series.index < train_end])
    return bool(det.detect(series[series.index >= train_end]).flag.any())


def quality(n: int, seed: int) -> list[list]:
    rows = []
    seeds = range(seed, seed + n)
    one_s_end = pd.Timestamp("2026-03-01 00:15", tz="UTC")
    for name in DETECTORS:
        progress(f"{name}: {n} scenarios per kind")
        row: list = [name]
        for kind in KINDS:
            onset = TRAIN_END if kind == "drift" else ONSET
            hits = sum(caught(name, scenario(kind, s), TRAIN_END, onset, ("24h",)) for s in seeds)
            row.append(f"{hits}/{n}")
        false_s = sum(flagged(name, scenario("clean", s), TRAIN_END, ("24h",)) for s in seeds)
        false_n = sum(
            flagged(name, scenario("clean", s, seasonal=False), TRAIN_END, ()) for s in seeds
        )
        own = {"discord": "frequency", "profile_change": "frequency"}.get(name, name)
        own = {"scale_change": "scale"}.get(own, own)
        hits_1s = sum(caught(name, one_second(own, s), one_s_end, one_s_end, ()) for s in seeds)
        false_1s = sum(flagged(name, one_second("clean", s), one_s_end, ()) for s in seeds)
        row += [f"{false_s}/{n}", f"{false_n}/{n}", f"{hits_1s}/{n} ({own})", f"{false_1s}/{n}"]
        rows.append(row)
    return rows


def speed(n: int = 10_000) -> list[list]:
    """Seconds per fit and per detect on ``n`` readings at 15 min (season 24h)."""
    series = pd.concat([scenario("clean", s) for s in range(n // 960 + 1)]).iloc[:n]
    series.index = pd.date_range("2026-01-01", periods=len(series), freq="15min", tz="UTC")
    train = series.iloc[: 14 * 96]
    rows = []
    for name, cls in DETECTORS.items():
        t0 = time.perf_counter()
        det = cls(("24h",)).fit(train)
        fit14 = time.perf_counter() - t0
        t0 = time.perf_counter()
        det.detect(series)
        detect = time.perf_counter() - t0
        t0 = time.perf_counter()
        big = cls(("24h",), train_window="200d").fit(series)
        fit_n = time.perf_counter() - t0
        t0 = time.perf_counter()
        big.detect(series)
        detect_n = time.perf_counter() - t0
        rows.append([name, f"{fit14:.3f}", f"{detect:.3f}", f"{fit_n:.3f}", f"{detect_n:.3f}"])
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenarios", type=int, default=20, help="scenarios per kind")
    parser.add_argument("--seed", type=int, default=100, help="first seed")
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    stumpy_module().stump(np.random.default_rng(0).normal(size=64), 8)
    print(
        f"stumpy import + first call (numba compile, or its on-disk cache): "
        f"{time.perf_counter() - t0:.1f} s"
    )
    n = args.scenarios
    print_table(
        f"caught within a day of onset (of {n}); falsely flagged clean series (of {n})",
        [
            "detector",
            *KINDS,
            "false seasonal",
            "false no season",
            "1 s: caught",
            "1 s: false",
        ],
        quality(n, args.seed),
    )
    print_table(
        "seconds per call, 10,000 readings at 15 min (shared busy machine)",
        ["detector", "fit 14 d", "detect 10k", "fit 10k", "detect 10k vs 10k history"],
        speed(),
    )


if __name__ == "__main__":
    main()
