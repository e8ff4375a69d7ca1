"""Following a plant: the steady passes of ``detect --follow``, with and without its memory.

Run: ``.venv/bin/python benchmarks/detect_follow.py [--sensors 1000] [--history 3600]
[--new 5] [--passes 6] [--pg-url URL] [--young MINUTES | --dropout AGE ...]``.
On a scratch PostgreSQL schema, SENSORS sensors at 1 s get HISTORY readings each and a
warm-up pass (fits stored). Then, per mode, PASSES passes as ``detect --follow`` makes them,
NEW new readings per sensor written before each: ``memory`` keeps a
``detection_batch.PassMemory`` across its passes (the fits it loaded, each sensor's context as
read: a pass reads only the new readings), ``none`` reads every context and loads every fit
at each pass (as before the memory). Both modes run in this one process, one after the other,
on the same sensors; the first pass of ``memory`` reads everything (its memory is empty) and is
shown apart. Printed: per mode the median and the slowest of the steady passes, wall and CPU
(this process's: the database server's is not counted), and how many readings were scored.
The detection lag a follower keeps is about a pass and a batch long (each batch of 200 is
planned as the pass reaches it, and scores what was stored by then), plus any rest before the
next pass: under 5 s a pass keeps the ≤ 10 s lag goal of a 1,000-tag plant at 1 s.

``--young MINUTES``: instead, a plant whose tags are all new (as when a connector first
subscribes): SENSORS sensors with HISTORY readings each and nothing scored, followed with a
memory for MINUTES of its own clock, which runs as fast as the passes do: before each pass the
plant gains as many readings a sensor as the last pass took seconds (at least one), so a pass
finds what a real 1 s plant would have stored meanwhile. Printed: the passes' wall times
(median, p95, slowest), the share of their time spent refitting (``detection.fit_chunk``,
timed around the call), and the lag at the end of each pass (the plant's newest reading
minus the least-scored sensor's mark, in seconds of the plant's clock) as p50/p95/max.
``--dropout AGE [AGE ...]``: instead, a plant-wide dropout. After HISTORY readings and a
warm-up, PASSES steady passes (NEW readings a sensor before each), then every sensor falls
silent for ``--gap`` seconds (a pass opens a dropout alert on each, ongoing for
``resolve_after``, 2 h), and at each AGE (seconds since the gap) PASSES passes again. Printed
side by side: the steady passes and those with every alert ongoing, wall median and slowest,
and the ratio of the medians.
``--memory-report EVERY`` (with ``--young``): also, every EVERY minutes of the plant's clock
and at the end, this process's RSS and what the memory holds: the contexts kept (sensors,
readings in all, the longest) and the fits (sensors, pickled size), with how many sensors have
an alert ongoing (their contexts are the longest: ``detection.CONTEXT_READINGS``).
"""

from __future__ import annotations

import argparse
import pickle
import statistics
import sys
import time

import numpy as np
import pandas as pd

from _common import (
    DEFAULT_PG_URL,
    pg_version,
    print_table,
    progress,
    rss_mb,
    scratch,
    write_sensors,
)
from plantcast.core.types import Source
from plantcast.services.detection import DETECTORS
from plantcast.services.detection_batch import PassMemory, detect_pass
from plantcast.signals import SignalModel, generate_readings
from plantcast.store import Store

STEP = pd.Timedelta("1s")
START = pd.Timestamp("2026-01-01", tz="UTC")
LAG_GOAL = 10.0  # seconds: a 1,000-tag plant at 1 s followed with a lag of seconds


def _names(n: int) -> list[str]:
    return [f"follow_{i:05d}" for i in range(n)]


class Plant:
    """The sensors' signals, written a slice of readings at a time."""

    def __init__(self, store: Store, n: int, total: int) -> None:
        self.store, self.total = store, total
        self.ids = [
            store.ensure_sensor(name, source=Source.IMPORTED, interval=STEP).id
            for name in _names(n)
        ]
        self.values = {
            sid: generate_readings(
                SignalModel(seed=sid), START, periods=total, interval=STEP
            ).to_numpy()
            for sid in self.ids
        }
        self.written = 0

    def write(self, count: int) -> None:
        lo, hi = self.written, self.written + count
        if hi > self.total:
            raise RuntimeError(f"the plant has only {self.total:,} readings a sensor")
        us = (pd.date_range(START, periods=self.total, freq=STEP).asi8 // 1_000)[lo:hi]
        write_sensors(self.store, self.ids, us, lambda sid: self.values[sid][lo:hi])
        self.written = hi


def _pass(store: Store, names: list[str], memory: PassMemory | None) -> dict:
    t0, c0 = time.perf_counter(), time.process_time()
    results = detect_pass(store, names, memory=memory)
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    failed = [r for r in results.values() if isinstance(r, Exception)]
    if failed:
        raise RuntimeError(f"{len(failed)} sensors failed, e.g. {failed[0]!r}")
    scored = sum(r.scored for r in results.values())  # type: ignore[union-attr]
    return {"seconds": seconds, "cpu": cpu, "scored": scored}


def _warm_plant(store: Store, names: list[str], history: int, new: int, total: int) -> Plant:
    """The sensors with ``history`` readings each, scored up to their last ``new`` by a
    warm-up pass (their fits stored)."""
    store.init()
    progress(f"{len(names):,} sensors at 1 s, {history:,} readings each")
    plant = Plant(store, len(names), total)
    plant.write(history)
    with store.transaction() as tx:  # resume near the end: only the last readings are new
        until = START + STEP * (history - new - 1)
        tx.set_scored_until_many({(sid, d): until for sid in plant.ids for d in DETECTORS})
    progress("warm-up pass (fits stored)")
    _pass(store, names, None)
    return plant


def run(url: str, n: int, history: int, new: int, passes: int) -> list[list]:
    names = _names(n)
    total = history + new * (2 * passes + 1)
    rows = []
    with Store.open(url) as store:
        plant = _warm_plant(store, names, history, new, total)
        for mode in ("memory", "none"):
            memory = PassMemory() if mode == "memory" else None
            times = []
            for i in range(passes):
                plant.write(new)
                times.append(_pass(store, names, memory))
                progress(f"{mode} pass {i + 1}: {times[-1]['seconds']:.1f} s")
            steady = times[1:] if mode == "memory" else times
            walls = [t["seconds"] for t in steady]
            cpus = [t["cpu"] for t in steady]
            rows.append(
                [
                    mode,
                    f"{times[0]['seconds']:.1f} ({times[0]['cpu']:.1f})"
                    if mode == "memory"
                    else "-",
                    f"{statistics.median(walls):.2f} ({statistics.median(cpus):.2f})",
                    f"{max(walls):.2f} ({max(cpus):.2f})",
                    f"{sum(t['scored'] for t in steady):,}",
                ]
            )
    return rows


class _Timed:
    """Seconds spent inside a function, timed around each call (the benchmark wraps
    ``detection.fit_chunk`` with it; the pass calls it through the module)."""

    def __init__(self, fn) -> None:
        self.fn, self.seconds, self.calls = fn, 0.0, 0

    def __call__(self, *args, **kwargs):
        t0 = time.perf_counter()
        try:
            return self.fn(*args, **kwargs)
        finally:
            self.seconds += time.perf_counter() - t0
            self.calls += 1


def memory_row(store: Store, ids: list[int], memory: PassMemory, minutes: float, passes: int):
    """A ``--memory-report`` row: the process's RSS and what ``memory`` holds."""
    sizes = [len(c.series) for c in memory.contexts.values()]
    pickled = sum(len(pickle.dumps(f)) for _, f in memory.fits.values() if f is not None)
    with store.transaction(readonly=True) as tx:
        ongoing = len(tx.ongoing_alerts(ids))
    return [
        f"{minutes:.1f}",
        passes,
        f"{rss_mb() or float('nan'):.0f}",
        f"{len(sizes):,} / {sum(sizes):,} / {max(sizes, default=0):,}",
        f"{len(memory.fits):,} / {pickled / 2**20:.1f}",
        ongoing,
    ]


MEMORY_HEADERS = [
    "plant min",
    "passes",
    "RSS MB",
    "contexts: sensors / readings / longest",
    "fits: sensors / MB pickled",
    "alerts ongoing",
]


def run_young(
    url: str, n: int, history: int, minutes: float, report: float | None = None
) -> tuple[list[list], list[list]]:
    """A young plant followed for ``minutes`` of its own clock (module docstring); with
    ``report`` (minutes), also the memory rows (``memory_row``) every ``report`` minutes."""
    from plantcast.services import detection

    names = _names(n)
    total = history + int(minutes * 60) + 600
    timed = _Timed(detection.fit_chunk)
    detection.fit_chunk = timed  # type: ignore[assignment]
    rows = []
    try:
        with Store.open(url) as store:
            store.init()
            progress(f"{n:,} new sensors at 1 s, {history:,} readings each")
            plant = Plant(store, n, total)
            plant.write(history)
            memory = PassMemory()
            walls, fits, lags = [], [], []
            memory_rows, next_report = [], 0.0
            while plant.written - history < minutes * 60:
                fit0 = timed.seconds
                t = _pass(store, names, memory)
                walls.append(t["seconds"])
                fits.append(timed.seconds - fit0)
                with store.transaction(readonly=True) as tx:
                    marks = tx.scored_until_many(plant.ids)
                newest = START + STEP * (plant.written - 1)
                least = min(marks.values()) if marks else START
                lags.append((newest - least).total_seconds() + t["seconds"])
                progress(
                    f"young pass {len(walls)}: {t['seconds']:.1f} s ({fits[-1]:.1f} s refitting),"
                    f" plant at {(plant.written - history) / 60:.1f} min, lag {lags[-1]:.0f} s"
                )
                plant.write(min(max(1, round(t["seconds"])), total - plant.written))
                at = (plant.written - history) / 60
                if report and (at >= next_report or at >= minutes):
                    memory_rows.append(memory_row(store, plant.ids, memory, at, len(walls)))
                    progress("memory: " + ", ".join(map(str, memory_rows[-1])))
                    next_report = at + report
    finally:
        detection.fit_chunk = timed.fn  # type: ignore[assignment]
    q = np.percentile
    rows.append(
        [
            f"{len(walls)} passes",
            f"{statistics.median(walls):.1f} / {q(walls, 95):.1f} / {max(walls):.1f}",
            f"{sum(fits) / max(sum(walls), 1e-9):.0%} ({timed.calls:,} fits)",
            f"{q(lags, 50):.0f} / {q(lags, 95):.0f} / {max(lags):.0f}",
        ]
    )
    return rows, memory_rows


def run_dropout(
    url: str, n: int, history: int, new: int, passes: int, gap: int, ages: list[int]
) -> list[list]:
    """Steady passes, then passes with every sensor's dropout alert ongoing at each of
    ``ages`` seconds after a ``gap`` (module docstring): one row each."""
    names, ages = _names(n), sorted(ages)
    total = history + gap + max(ages) + new * passes * (len(ages) + 2) + 2 * new
    rows: list[list] = []
    with Store.open(url) as store:
        plant = _warm_plant(store, names, history, new, total)
        memory = PassMemory()
        plant.write(new)
        _pass(store, names, memory)  # the memory's first pass reads everything

        def timed(label: str) -> list[float]:
            walls = []
            for i in range(passes):
                plant.write(new)
                walls.append(_pass(store, names, memory)["seconds"])
                progress(f"{label} pass {i + 1}: {walls[-1]:.2f} s")
            return walls

        steady = timed("steady")
        rows.append(["steady (no alert ongoing)", 0, *_pass_figures(steady, steady)])
        plant.written += gap  # every sensor silent
        silent_until = plant.written
        plant.write(new)
        _pass(store, names, memory)
        for age in ages:
            behind = silent_until + age - plant.written
            if behind > 0:
                plant.write(behind)
                _pass(store, names, memory)  # catch up (untimed)
            walls = timed(f"dropout {age} s old")
            with store.transaction(readonly=True) as tx:
                ongoing = len(tx.ongoing_alerts(plant.ids))
            label = f"all in a dropout, {age} s after it"
            rows.append([label, ongoing, *_pass_figures(walls, steady)])
    return rows


def _pass_figures(walls: list[float], steady: list[float]) -> list[str]:
    mid = statistics.median(walls)
    return [f"{mid:.2f}", f"{max(walls):.2f}", f"{mid / statistics.median(steady):.2f}x"]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sensors", type=int, default=1_000)
    ap.add_argument("--history", type=int, default=3_600, help="readings each before following")
    ap.add_argument("--new", type=int, default=5, help="new readings per sensor between passes")
    ap.add_argument("--passes", type=int, default=6, help="per mode")
    ap.add_argument("--pg-url", default=DEFAULT_PG_URL)
    ap.add_argument(
        "--young", type=float, metavar="MINUTES", help="follow a new plant for MINUTES instead"
    )
    ap.add_argument(
        "--memory-report",
        type=float,
        metavar="EVERY",
        help="with --young: RSS and the pass memory's sizes every EVERY minutes of the plant",
    )
    ap.add_argument(
        "--dropout",
        type=int,
        nargs="+",
        metavar="AGE",
        help="passes with every sensor in a dropout, AGE seconds after it, beside steady ones",
    )
    ap.add_argument("--gap", type=int, default=30, help="with --dropout: seconds silent")
    args = ap.parse_args(argv)
    if pg_version(args.pg_url) is None:
        print(f"no PostgreSQL server at {args.pg_url}: nothing to measure", file=sys.stderr)
        return 1
    if args.dropout:
        with scratch(args.pg_url) as (_, schemas):
            assert schemas is not None
            rows = run_dropout(
                schemas.create("dropout"),
                args.sensors,
                args.history,
                args.new,
                args.passes,
                args.gap,
                args.dropout,
            )
        print_table(
            f"Detect --follow on PostgreSQL — {args.sensors:,} sensors at 1 s after"
            f" {args.history:,} readings each, {args.new} new readings a sensor before each"
            f" pass, steady and after all fell silent for {args.gap} s (each a dropout alert"
            " ongoing):\n   seconds a pass (wall), with the pass memory",
            ["passes", "alerts ongoing", "median s", "slowest s", "median / steady"],
            rows,
            left=1,
        )
        return 0
    if args.young is not None:
        with scratch(args.pg_url) as (_, schemas):
            assert schemas is not None
            url = schemas.create("young")
            rows, memory_rows = run_young(
                url, args.sensors, args.history, args.young, args.memory_report
            )
        print_table(
            f"Detect --follow on PostgreSQL — {args.sensors:,} new sensors at 1 s with"
            f" {args.history:,} readings each, followed for {args.young:g} minutes of the"
            " plant's clock (it gains a reading a sensor for each second a pass takes):",
            ["passes", "pass s median / p95 / max", "refitting", "lag s p50 / p95 / max"],
            rows,
            left=1,
        )
        if memory_rows:
            print_table(
                "\nThis process's RSS and the pass memory over the plant's clock:",
                MEMORY_HEADERS,
                memory_rows,
                left=1,
            )
        return 0
    with scratch(args.pg_url) as (_, schemas):
        assert schemas is not None
        rows = run(schemas.create("follow"), args.sensors, args.history, args.new, args.passes)
    print_table(
        f"Detect --follow on PostgreSQL — {args.sensors:,} sensors at 1 s after"
        f" {args.history:,} readings each, {args.new} new readings a sensor before each pass:\n"
        "   seconds a pass, wall (CPU of this process), with the pass memory (kept fits and"
        " contexts) and without.\n"
        "   A follower's lag is about a pass and a batch (each batch is planned as the pass"
        f" reaches it): under {LAG_GOAL / 2:.0f} s a pass keeps the ≤ {LAG_GOAL:.0f} s goal.",
        ["mode", "first pass", "steady median", "steady slowest", "readings scored"],
        rows,
        left=1,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
