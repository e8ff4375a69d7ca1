"""Fitted once, scored many times: an incremental detect pass with stored fits vs a full refit.

Run: ``.venv/bin/python benchmarks/detect_incremental.py [--sensors 1000] [--no-pg |
--no-sqlite] [--dask] [--modes bulk,bulk-refit,...] [--readings 1000000] [--profile MODE]``.
Per engine (SQLite and a scratch schema on PostgreSQL), SENSORS sensors at 30-min steps get a
week of history; a warm-up pass scores its last NEW readings (storing each sensor's fit, as any
pass does), then NEW more readings arrive. The timed pass scores those, each mode in a fresh
process after the resume points are put back where the warm-up left them: ``detect_sensor``
one sensor after another (serial) and ``detect_pass`` (bulk), each with the stored fits and
with ``--refit`` (every sensor refitted, as every pass did before fits were stored); with
``--dask``, ``detect_many`` on a LocalCluster too. Then a first pass over READINGS readings of
one 1-min sensor (``detect_history``), for its peak RSS. ``--profile MODE`` prints the top of
a cProfile of one mode instead (e.g. ``bulk``).
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import json
import os
import pstats
import resource
import subprocess
import sys
import time

import pandas as pd

from _common import (
    DEFAULT_PG_URL,
    pg_version,
    print_table,
    progress,
    scratch,
    write_sensors,
)
from plantcast.core.types import Source
from plantcast.services.detection import DETECTORS, DetectOptions, detect_sensor
from plantcast.services.detection_batch import detect_pass
from plantcast.signals import SignalModel, generate_readings
from plantcast.store import Store

STEP = pd.Timedelta("30min")
HISTORY = 7 * 48  # a week of readings
DAYS_2 = pd.Timedelta("2D")
NEW = 10  # readings per sensor the timed pass scores
START = pd.Timestamp("2026-01-01", tz="UTC")
GOAL = 5.0  # seconds for 1,000 sensors x 10 new readings on PostgreSQL
RSS_GOAL = 400.0  # MB, a first pass over 1M readings
MODES = ("serial", "serial-refit", "bulk", "bulk-refit")
DASK_MODES = ("dask", "dask-refit")


def _configure(step: str, history: int) -> None:
    global STEP, HISTORY
    STEP, HISTORY = pd.Timedelta(step), history


def _step() -> str:
    return str(STEP).removeprefix("0 days ")


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _names(n: int) -> list[str]:
    return [f"inc_{i:05d}" for i in range(n)]


def _write(store: Store, ids: list[int], lo: int, hi: int) -> None:
    """Readings lo..hi-1 of every sensor's signal, one bulk write per 500 sensors."""
    index = pd.date_range(START, periods=HISTORY + NEW, freq=STEP)[lo:hi]
    write_sensors(
        store,
        ids,
        index.asi8 // 1_000,
        lambda sid: generate_readings(
            SignalModel(seed=sid), START, periods=HISTORY + NEW, interval=STEP
        ).to_numpy()[lo:hi],
    )


def setup_case(url: str, n: int) -> dict:
    """A week of history, its last NEW readings scored by a warm-up pass (fits stored), then
    NEW readings more: the state a pass every NEW readings leaves."""
    index = pd.date_range(START, periods=HISTORY + NEW, freq=STEP)
    t0 = time.perf_counter()
    with Store.open(url) as store:
        store.init()
        ids = [
            store.ensure_sensor(name, source=Source.IMPORTED, interval=STEP).id
            for name in _names(n)
        ]
        for sid in ids:
            # a daily season where the history holds two days, else none (as season detection)
            store.update_sensor_params(sid, {"periods": ["24h"] * (STEP * HISTORY >= DAYS_2)})
        _write(store, ids, 0, HISTORY)
        with store.transaction() as tx:
            tx.set_scored_until_many(
                {(sid, d): index[HISTORY - NEW - 1] for sid in ids for d in DETECTORS}
            )
        warm = detect_pass(store, _names(n))
        failed = [r for r in warm.values() if isinstance(r, Exception)]
        if failed:
            raise RuntimeError(f"warm-up: {len(failed)} sensors failed, e.g. {failed[0]!r}")
        with store.transaction(readonly=True) as tx:
            stored = len(tx.fits_many(ids))
        _write(store, ids, HISTORY, HISTORY + NEW)
    return {"setup": time.perf_counter() - t0, "fits": stored}


def _reset(store: Store, n: int) -> None:
    """Resume points back where the warm-up left them (the NEW readings unscored again)."""
    until = pd.date_range(START, periods=HISTORY + NEW, freq=STEP)[HISTORY - 1]
    with store.transaction() as tx:
        ids = [s.id for s, _ in tx.sensors_by_name(_names(n)).values()]
        tx.set_scored_until_many({(sid, d): until for sid in ids for d in DETECTORS})


def _pass(store: Store, n: int, mode: str, client=None) -> list:
    options = DetectOptions(refit=mode.endswith("-refit"))
    names = _names(n)
    if mode.startswith("serial"):
        return [detect_sensor(store, name, options=options) for name in names]
    if mode.startswith("bulk"):
        return list(detect_pass(store, names, options=options).values())
    from plantcast.scale import detect_many

    return list(detect_many(store, names, client=client, options=options).values())


@contextlib.contextmanager
def _cluster(mode: str):
    """A LocalCluster of one worker per CPU for the Dask modes (started before the clock)."""
    if not mode.startswith("dask"):
        yield None
        return
    from plantcast.scale import connect

    with connect(workers=os.cpu_count() or 1) as client:
        yield client


def detect_case(url: str, n: int, mode: str, profile: bool = False) -> dict:
    with Store.open(url) as store, _cluster(mode) as client:
        _reset(store, n)
        with store.transaction(readonly=True) as tx:
            ids = [s.id for s, _ in tx.sensors_by_name(_names(n)).values()]
            before = {sid: f.fitted_at for sid, f in tx.fits_many(ids).items()}
        prof = cProfile.Profile() if profile else None
        t0, c0 = time.perf_counter(), time.process_time()
        if prof:
            prof.enable()
        results = _pass(store, n, mode, client)
        if prof:
            prof.disable()
        seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
        with store.transaction(readonly=True) as tx:
            after = {sid: f.fitted_at for sid, f in tx.fits_many(ids).items()}
    if prof:
        pstats.Stats(prof, stream=sys.stderr).sort_stats("cumulative").print_stats(40)
    failed = [r for r in results if isinstance(r, Exception)]
    if failed:
        raise RuntimeError(f"{len(failed)} sensors failed, e.g. {failed[0]!r}")
    scored = sum(r.scored for r in results)
    if scored != n * NEW:
        raise RuntimeError(f"scored {scored}, want {n * NEW}")
    refitted = sum(after[sid] != before.get(sid) for sid in after)
    return {"seconds": seconds, "cpu": cpu, "peak": _peak_mb(), "refitted": refitted}


def history_case(url: str, readings: int) -> dict:
    from detect_history import run  # a first pass over one long history (its own figures)

    row = run(url, readings)
    return {"seconds": float(row[4]), "chunks": int(row[2]), "peak": _peak_mb()}


def _run(*args: str, profile: bool = False) -> dict:
    cmd = [sys.executable, __file__, "--case", *args, str(STEP), str(HISTORY)]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(args)}: {done.stderr.strip()[-3000:]}")
    if profile:
        print(done.stderr)
    return json.loads(done.stdout.strip().splitlines()[-1])


def run_case(argv: list[str]) -> int:
    _configure(argv[-2], int(argv[-1]))  # the plant's cadence and history
    argv = argv[:-2]
    kind, url = argv[0], argv[1]
    if kind == "setup":
        result = setup_case(url, int(argv[2]))
    elif kind == "detect":
        result = detect_case(url, int(argv[2]), argv[3], profile=argv[4:] == ["profile"])
    else:
        result = history_case(url, int(argv[2]))
    print(json.dumps(result))
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--case"]:
        return run_case(argv[1:])
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sensors", type=int, default=1_000)
    ap.add_argument("--readings", type=int, default=1_000_000, help="0: no first-pass RSS")
    ap.add_argument("--dask", action="store_true", help="time detect_many on a LocalCluster too")
    ap.add_argument("--profile", choices=MODES + DASK_MODES, help="cProfile one mode only")
    ap.add_argument("--modes", help=f"comma-separated, of {','.join(MODES + DASK_MODES)}")
    ap.add_argument("--pg-url", default=DEFAULT_PG_URL)
    ap.add_argument("--no-pg", action="store_true")
    ap.add_argument("--no-sqlite", action="store_true")
    ap.add_argument("--step", default="30min", help="the sensors' interval (e.g. 1s: a fast plant)")
    ap.add_argument("--history", type=int, default=7 * 48, help="readings each (default a week)")
    args = ap.parse_args(argv)
    _configure(args.step, args.history)
    n = args.sensors
    modes = (args.profile,) if args.profile else MODES + (DASK_MODES if args.dask else ())
    if args.modes and not args.profile:
        modes = tuple(m for m in args.modes.split(",") if m)
        unknown = [m for m in modes if m not in MODES + DASK_MODES]
        if unknown:
            ap.error(f"unknown mode(s) {', '.join(unknown)}: choose from {MODES + DASK_MODES}")
    server = None if args.no_pg else pg_version(args.pg_url)
    rows, firsts = [], []
    with scratch(args.pg_url if server else None) as (tmpdir, schemas):
        targets = [] if args.no_sqlite else [("sqlite", f"sqlite:///{tmpdir}/incremental.db")]
        if schemas is not None:
            targets.append(("postgresql", schemas.create("incremental")))
        for engine, url in targets:
            progress(f"{engine}: {n:,} sensors, {HISTORY:,} readings each, warm-up (fits stored)")
            setup = _run("setup", url, str(n))
            row = {"engine": engine, **setup}
            for mode in modes:
                progress(f"{engine}: {n:,} sensors x {NEW} new readings, {mode}")
                row[mode] = _run(
                    "detect",
                    url,
                    str(n),
                    mode,
                    *(["profile"] * bool(args.profile)),
                    profile=bool(args.profile),
                )
                row[mode]["profile"] = args.profile is not None
            rows.append(row)
        if args.readings and not args.profile:
            for engine, _ in targets:
                url = (
                    f"sqlite:///{tmpdir}/history.db"
                    if engine == "sqlite"
                    else schemas.create("history")  # type: ignore[union-attr]  # PostgreSQL: schemas exist
                )
                progress(f"{engine}: first pass over {args.readings:,} readings (1 sensor, 1 min)")
                firsts.append((engine, _run("history", url, str(args.readings))))
    report(rows, modes, n, firsts, args.readings)
    return 0


def report(rows, modes, n, firsts, readings) -> None:
    headers = ["engine", "fits stored"] + [f"{m} s (cpu)" for m in modes] + ["refitted"]
    table = []
    for r in rows:
        refits = ", ".join(f"{m} {r[m]['refitted']:,}" for m in modes)
        times = [f"{r[m]['seconds']:,.1f} ({r[m]['cpu']:,.1f})" for m in modes]
        table.append([r["engine"], f"{r['fits']:,}", *times, refits])
    print_table(
        f"Detect — an incremental pass, {n:,} sensors x {NEW} new readings ({_step()}) after"
        f" {HISTORY:,} readings of history:\n   with the stored fits vs `--refit` (every sensor"
        " refitted), serial (detect_sensor per sensor) and bulk (detect_pass).\n"
        f"   Goal: ≤ {GOAL:.0f} s"
        " on PostgreSQL for 1,000 sensors. (cpu): this process's CPU seconds (the client's;"
        " not the server's nor\n   Dask workers'), steadier than wall time on a shared machine."
        " 'refitted': sensors whose stored fit the pass replaced.",
        headers,
        table,
        left=1,
    )
    pg = [r for r in rows if r["engine"] == "postgresql"]
    if pg and n == 1_000 and "bulk" in modes:
        best = min(pg[0][m]["seconds"] for m in modes if not m.endswith("-refit"))
        print(f"   goal {GOAL:.0f} s on PostgreSQL: {'met' if best <= GOAL else 'short'}")
    if firsts:
        print_table(
            f"Detect — a first pass over {readings:,} readings of one 1-min sensor"
            f" (detect_sensor, weekly chunks). Goal: peak RSS ≤ {RSS_GOAL:.0f} MB.",
            ["engine", "chunks", "seconds", "peak RSS MB", "goal"],
            [
                [
                    e,
                    str(f["chunks"]),
                    f"{f['seconds']:,.1f}",
                    f"{f['peak']:,.0f}",
                    "met" if f["peak"] <= RSS_GOAL else "short",
                ]
                for e, f in firsts
            ],
            left=1,
        )


if __name__ == "__main__":
    sys.exit(main())
