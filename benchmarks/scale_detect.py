"""The detect section of ``benchmarks/scale.py``: one detect pass, serial vs a Dask LocalCluster.

Run: ``.venv/bin/python benchmarks/scale.py --section detect [--quick] [--no-pg]`` (or this file
directly, same options). Each size is set up once per engine in its own process (sensors with
HISTORY of readings, resume points set as a previous pass would have left them, then NEW readings
each), copied, and then scored by ``detect_sensor`` one sensor after another, by
``detect_pass`` (bulk reads and writes, scoring in the same process) and by
``plantcast.scale.detect_many`` on a LocalCluster of one worker process per CPU, each in a
fresh process so its peak RSS is its own. The cluster's start-up is timed apart from the pass.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
import time

import numpy as np
import pandas as pd

from _common import extremes_by_engine, print_table, progress
from plantcast.core.types import Source
from plantcast.services.detection import DETECTORS, detect_sensor
from plantcast.services.detection_batch import detect_pass
from plantcast.signals import SignalModel, generate_readings
from plantcast.store import Store
from plantcast.store import alerts as alert_rows
from plantcast.store.readings import write_batch

STEP = pd.Timedelta("30min")
HISTORY = 7 * 48  # readings per sensor already scored (a week, as in issue 10's figures)
NEW = 10  # readings per sensor the timed pass scores
START = pd.Timestamp("2026-01-01", tz="UTC")
GOAL = 30.0  # seconds for one pass over 10,000 sensors on the LocalCluster


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def setup_case(url: str, sensors: int) -> dict:
    """Sensors with HISTORY + NEW readings, resume points at the end of HISTORY."""
    index = pd.date_range(START, periods=HISTORY + NEW, freq=STEP)
    us = (index.asi8 // 1_000).astype(np.int64)
    scored_until = index[HISTORY - 1]
    t0 = time.perf_counter()
    with Store.open(url) as store:
        store.init()
        for lo in range(0, sensors, 500):
            ids, values = [], []
            for i in range(lo, min(lo + 500, sensors)):
                s = store.ensure_sensor(f"det_{i:05d}", source=Source.IMPORTED, interval=STEP)
                model = SignalModel(seed=i)
                ids.append(s.id)
                values.append(
                    generate_readings(model, START, periods=HISTORY + NEW, interval=STEP).to_numpy()
                )
            with store.write() as conn:
                write_batch(
                    conn,
                    {
                        "sensor_id": np.repeat(np.array(ids, np.int64), len(us)),
                        "ts": np.tile(us, len(ids)),
                        "value": np.concatenate(values),
                    },
                )
                for sid in ids:
                    for name in DETECTORS:
                        alert_rows.set_scored_until(conn, sid, name, scored_until)
    return {"setup": time.perf_counter() - t0}


def detect_case(url: str, sensors: int, mode: str) -> dict:
    """One pass over every sensor: ``serial`` or ``cluster`` (one worker process per CPU)."""
    names = [f"det_{i:05d}" for i in range(sensors)]
    with Store.open(url) as store:
        start_up, workers_peak = 0.0, 0.0
        if mode == "serial":
            t0 = time.perf_counter()
            results = [detect_sensor(store, n) for n in names]
            seconds = time.perf_counter() - t0
        elif mode == "bulk":
            t0 = time.perf_counter()
            results = list(detect_pass(store, names).values())
            seconds = time.perf_counter() - t0
        else:
            from plantcast.scale import connect, detect_many

            t0 = time.perf_counter()
            with connect(workers=os.cpu_count() or 1) as client:
                start_up = time.perf_counter() - t0
                t0 = time.perf_counter()
                results = list(detect_many(store, names, client=client).values())
                seconds = time.perf_counter() - t0
                peaks = client.run(_peak_mb)
                workers_peak = max(peaks.values())
    failed = [r for r in results if isinstance(r, Exception)]
    if failed:
        raise RuntimeError(f"{len(failed)} sensors failed, e.g. {failed[0]!r}")
    scored = sum(r.scored for r in results)
    if scored != sensors * NEW:
        raise RuntimeError(f"scored {scored}, want {sensors * NEW}")
    return {
        "seconds": seconds,
        "start_up": start_up,
        "peak": _peak_mb(),
        "workers_peak": workers_peak,
    }


def _run(*args: str) -> dict:
    cmd = [sys.executable, __file__, "--case", *args]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(args)}: {done.stderr.strip()[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def section_detect(targets, sizes: tuple[int, ...], serial_up_to: int | None = None) -> list[dict]:
    """``targets``: (engine, make_url(tag) -> fresh URL, copy(src_url, tag) -> URL or None)."""
    results = []
    for engine, make_url, copy in targets:
        for n in sizes:
            first = make_url(f"detect{n}")
            progress(f"{engine}: detect, {n:,} sensors: setting up ({HISTORY} + {NEW} readings)")
            setup = _run("detect-setup", first, str(n))["setup"]
            serial = serial_up_to is None or n <= serial_up_to
            urls = {"serial": first} if serial else {}
            for mode in ("bulk", "cluster"):
                urls[mode] = copy(first, f"detect{n}{mode}") if urls else first
                if urls[mode] is None:  # no cheap copy (PostgreSQL): set up again
                    urls[mode] = make_url(f"detect{n}{mode}")
                    _run("detect-setup", urls[mode], str(n))
            row = {"engine": engine, "sensors": n, "setup": setup}
            for mode, url in urls.items():
                progress(f"{engine}: detect, {n:,} sensors, {mode}")
                row[mode] = _run("detect", url, str(n), mode)
            results.append(row)
    report_detect(results)
    return results


def report_detect(results: list[dict]) -> None:
    workers = os.cpu_count() or 1
    untimed = {"seconds": float("nan"), "peak": float("nan")}  # serial not run at this size
    results = [{"serial": untimed, **r} for r in results]
    rows = [
        [
            r["engine"],
            f"{r['sensors']:,}",
            f"{r['serial']['seconds']:,.1f}",
            f"{r['serial']['seconds'] / r['sensors'] * 1e3:,.1f}",
            f"{r['bulk']['seconds']:,.1f}",
            f"{r['bulk']['seconds'] / r['sensors'] * 1e3:,.1f}",
            f"{r['cluster']['seconds']:,.1f}",
            f"{r['cluster']['start_up']:,.1f}",
            f"{r['serial']['seconds'] / r['cluster']['seconds']:,.2f}×",
            f"{r['bulk']['seconds'] / r['cluster']['seconds']:,.2f}×",
            f"{r['serial']['peak']:,.0f}",
            f"{r['cluster']['peak']:,.0f} + {r['cluster']['workers_peak']:,.0f}",
        ]
        for r in results
    ]
    rows = [[c.replace("nan", "-").replace("-×", "-") for c in row] for row in rows]
    print_table(
        f"Detect — one pass, {NEW} new readings per sensor after {HISTORY} scored ones (30 min):"
        " `detect_sensor` one sensor\n   after another (serial), `detect_pass` (bulk: batched"
        " reads and writes, scoring here) and `detect_many` on a LocalCluster\n"
        f"   of {workers} worker process(es) (start-up apart). Peak RSS: the client's process"
        f" (+ the largest worker's).\n   Goal: 10,000 sensors ≤ {GOAL:.0f} s on the LocalCluster.",
        [
            "engine",
            "sensors",
            "serial s",
            "ms/sensor",
            "bulk s",
            "ms/sensor",
            "cluster s",
            "start-up s",
            "vs serial",
            "vs bulk",
            "serial peak MB",
            "cluster peak MB",
        ],
        rows,
        left=1,
    )
    growth = []
    for engine, lo, hi in extremes_by_engine(results):
        verdict = "-"
        if hi["sensors"] == 10_000:
            verdict = "met" if hi["cluster"]["seconds"] <= GOAL else "short"
        growth.append(
            [
                engine,
                f"{hi['sensors']:,} / {lo['sensors']:,} = {hi['sensors'] / lo['sensors']:,.0f}×",
                f"{hi['serial']['seconds'] / lo['serial']['seconds']:,.1f}×",
                f"{hi['cluster']['seconds'] / lo['cluster']['seconds']:,.1f}×",
                f"{hi['serial']['peak'] / lo['serial']['peak']:,.2f}×",
                f"{hi['cluster']['peak'] / lo['cluster']['peak']:,.2f}×",
                f"{GOAL:.0f} s: {verdict}",
            ]
        )
    growth = [[c.replace("nan×", "-").replace("-×", "-") for c in row] for row in growth]
    if not growth:  # one size per engine: no growth to show
        return
    print_table(
        "   growth factor, largest / smallest sensor count",
        ["engine", "sensors", "serial", "cluster", "serial RSS", "cluster RSS", "goal"],
        growth,
        left=1,
    )


def sqlite_target(tmpdir: str):
    def make_url(tag: str) -> str:
        return f"sqlite:///{os.path.join(tmpdir, tag + '.db')}"

    def copy(url: str, tag: str) -> str:
        shutil.copy(url.removeprefix("sqlite:///"), os.path.join(tmpdir, tag + ".db"))
        return make_url(tag)

    return ("sqlite", make_url, copy)


def pg_target(schemas):
    return ("postgresql", schemas.create, lambda url, tag: None)


def run_case(argv: list[str]) -> int:
    """A child process: ``detect-setup URL N`` or ``detect URL N MODE``."""
    kind, url, n = argv[0], argv[1], int(argv[2])
    result = setup_case(url, n) if kind == "detect-setup" else detect_case(url, n, argv[3])
    print(json.dumps(result))
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--case"]:
        return run_case(argv[1:])
    from _common import parse_size_args, pg_version, scratch

    def extra(parser) -> None:
        parser.add_argument("--sizes", help="sensor counts, e.g. 100,1000,10000")
        parser.add_argument(
            "--serial-up-to",
            type=int,
            default=None,
            help="time the one-sensor-at-a-time path only up to this many sensors",
        )

    args = parse_size_args(__doc__, argv, "100 and 1,000 sensors only", extra)
    sizes = (100, 1_000) if args.quick else (100, 1_000, 10_000)
    if args.sizes:
        sizes = tuple(int(n) for n in args.sizes.split(","))
    server = None if args.no_pg else pg_version(args.pg_url)
    with scratch(args.pg_url if server else None) as (tmpdir, schemas):
        targets = [sqlite_target(tmpdir)]
        if schemas is not None:
            targets.append(pg_target(schemas))
        section_detect(targets, sizes, args.serial_up_to)
    return 0


if __name__ == "__main__":
    sys.exit(main())
