"""Benchmark forecasts kept ready: a stored forecast read through the API beside an on-demand one.

Run: ``.venv/bin/python benchmarks/forecast_store.py [--sensors 100] [--days 14]
[--interval 30min] [--horizon 24h] [--model auto] [--reads 300] [--on-demand 2]
[--workers 2] [--no-dask] [--pg-url URL | --no-pg]``.

Per engine (SQLite in a temporary file; PostgreSQL in a scratch schema ``bench_…`` of
``--pg-url``, dropped at the end): ``--sensors`` imported sensors get ``--days`` of readings (a
daily cycle, a trend and noise, different per sensor). Then, timed:

1. ``refresh_forecasts`` of every sensor with ``--model`` in this process (``auto``: each
   sensor's model chosen by backtests of every candidate), fitted, its bands calibrated, stored;
2. for ``auto``, the same again with every forecast due (``max_age`` 0): the kept choices
   refitted, what an hourly refresh costs between choices;
3. (unless ``--no-dask``) the first again on a local Dask cluster of ``--workers`` processes,
   choosing anew (``reselect_every`` 0).

Last, a real ``plantcast api`` (uvicorn) serves the database: one client asks ``--reads`` times
for a random sensor's stored forecast (``GET /v1/sensors/{name}/forecast/stored``), each time
followed by a reference request to the same server (``GET /v1/sensors/{name}``: the same key
check and a one-row read, the API's floor on this machine at that moment); then
``--on-demand`` sensors' ``auto`` forecast the way it was served before
(``GET /v1/sensors/{name}/forecast?model=auto``: the first call fits, a second one hits the
server's cache). The goal: the stored read's p95 ≤ 20 ms. Tables to stdout, progress to stderr.
"""

from __future__ import annotations

import argparse
import os
import random
import socket
import subprocess
import sys
import time

import httpx
import numpy as np
import pandas as pd

from _common import DEFAULT_PG_URL, pg_version, print_table, progress, scratch
from plantcast.core.types import Source
from plantcast.services.apikeys import create_key
from plantcast.services.forecast_store import refresh_forecasts
from plantcast.store import Store

END = pd.Timestamp.now(tz="UTC").floor("D")
GOAL_P95_MS = 20.0


def _args(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sensors", type=int, default=100)
    p.add_argument("--days", type=float, default=14, help="history of each sensor")
    p.add_argument("--interval", default="30min", help="between a sensor's readings")
    p.add_argument("--horizon", default="24h")
    p.add_argument(
        "--model", default="auto", help="what refresh stores (seasonal_naive: a quick fill)"
    )
    p.add_argument("--reads", type=int, default=300, help="stored-forecast requests")
    p.add_argument("--on-demand", type=int, default=2, help="sensors forecast on demand")
    p.add_argument("--workers", type=int, default=2, help="Dask worker processes")
    p.add_argument("--no-dask", action="store_true", help="skip the Dask refresh")
    pg = p.add_mutually_exclusive_group()
    pg.add_argument("--pg-url", default=DEFAULT_PG_URL)
    pg.add_argument("--no-pg", action="store_true", help="SQLite only")
    return p.parse_args(argv)


def build(store: Store, sensors: int, days: float, interval: pd.Timedelta) -> list[str]:
    """``sensors`` imported sensors, each a daily cycle of its own size and phase, a slow
    trend and noise, ``days`` long ending at END."""
    rng = np.random.default_rng(0)
    n = int(pd.Timedelta(days=days) / interval)
    index = pd.date_range(end=END, periods=n, freq=interval)
    day = 2 * np.pi * (index.hour * 3600 + index.minute * 60 + index.second) / 86_400
    names = []
    for i in range(sensors):
        name = f"bench_fs_{i:04d}"
        s = store.ensure_sensor(name, source=Source.IMPORTED, interval=interval)
        amp, phase, trend = rng.uniform(2, 20), rng.uniform(0, 2 * np.pi), rng.uniform(-1, 1)
        values = (
            100
            + amp * np.sin(day + phase)
            + trend * np.arange(n) / n
            + rng.normal(0, rng.uniform(0.2, 3), n)
        )
        store.write_readings(s.id, pd.Series(values, index=index))
        names.append(name)
    progress(f"stored {n * sensors:,} readings of {sensors} sensors")
    return names


def timed_refresh(store: Store, label: str, **kw) -> list:
    progress(f"refresh: {label}")
    done = []

    def bar(i, total, _name):
        if i % max(1, total // 10) == 0 or i == total:
            progress(f"  {i}/{total}")

    t = time.perf_counter()
    summary = refresh_forecasts(store, on_progress=bar, **kw)
    wall = time.perf_counter() - t
    done = summary.as_dict()
    if summary.failed:
        progress(f"  failed: {summary.failed}")
    return [
        label,
        done["sensors"],
        done["refitted"],
        done["reselected"],
        f"{wall:.1f}",
        f"{wall / max(1, done['refitted']):.2f}",
    ]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve(url: str) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    cmd = [sys.executable, "-m", "plantcast", "api", "--port", str(port), "--workers", "1"]
    proc = subprocess.Popen(
        cmd, env={**os.environ, "PLANTCAST_DATABASE_URL": url}, stderr=subprocess.DEVNULL
    )
    base = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                return proc, base
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.terminate()
    raise SystemExit("plantcast api did not start")


def _ms(latencies: list[float]) -> list[str]:
    q = np.percentile(np.array(latencies) * 1000, [50, 95, 99])
    return [len(latencies), f"{q[0]:.1f}", f"{q[1]:.1f}", f"{q[2]:.1f}"]


def measure_reads(url: str, token: str, names: list[str], args) -> tuple[list[list], float]:
    """Rows of the reads table (stored reads, on-demand first and cached) and the p95 (ms)."""
    proc, base = serve(url)
    rows = []
    try:
        with httpx.Client(
            base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=600
        ) as client:
            rng = random.Random(0)

            def get(path: str) -> float:
                t = time.perf_counter()
                r = client.get(path)
                took = time.perf_counter() - t
                r.raise_for_status()
                return took

            def stored() -> float:
                return get(f"/v1/sensors/{rng.choice(names)}/forecast/stored")

            def reference() -> float:  # the same key check and a one-row read of the sensor
                return get(f"/v1/sensors/{rng.choice(names)}")

            for _ in range(20):  # warm: the server's first requests load its modules
                stored()
                reference()
            progress(f"{args.reads} stored-forecast reads through the API, a sensor read between")
            lat, ref = [], []
            for _ in range(args.reads):  # alternating: both see the same machine
                lat.append(stored())
                ref.append(reference())
            rows.append(["stored (GET …/forecast/stored)", *_ms(lat)])
            rows.append(["reference: GET /v1/sensors/{name}", *_ms(ref)])
            p95 = float(np.percentile(np.array(lat) * 1000, 95))
            first, again = [], []
            params = {"model": "auto", "horizon": args.horizon}
            for name in names[: args.on_demand]:
                for into in (first, again):
                    progress(f"on-demand auto forecast of {name}")
                    t = time.perf_counter()
                    client.get(f"/v1/sensors/{name}/forecast", params=params).raise_for_status()
                    into.append(time.perf_counter() - t)
            if first:
                rows.append(["on demand, auto, first call (fits)", *_ms(first)])
                rows.append(["on demand, auto, again (cached)", *_ms(again)])
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    return rows, p95


def run_engine(engine: str, url: str, args) -> tuple[list[list], list[list], float]:
    interval = pd.Timedelta(args.interval)
    store = Store.open(url)
    store.init()
    names = build(store, args.sensors, args.days, interval)
    auto = args.model == "auto"
    common = {"horizon": args.horizon, "model": args.model}
    due = {"max_age": "0s", **common}
    refreshes = [
        timed_refresh(store, f"serial, {args.model}" + (" chooses" if auto else ""), **due),
    ]
    if auto:
        refreshes.append(timed_refresh(store, "serial, choices kept", **due))
    if not args.no_dask:
        refreshes.append(
            timed_refresh(
                store,
                f"Dask ({args.workers} workers), {args.model}" + (" chooses" if auto else ""),
                reselect_every="0s",
                dask=args.workers,
                **due,
            )
        )
    token = create_key(store, "bench", "read")[1]
    store.close()
    reads, p95 = measure_reads(url, token, names, args)
    return [[engine, *r] for r in refreshes], [[engine, *r] for r in reads], p95


def main(argv=None) -> int:
    args = _args(argv)
    pg_url = None if args.no_pg or pg_version(args.pg_url) is None else args.pg_url
    refresh_rows, read_rows, goals = [], [], []
    with scratch(pg_url) as (tmp, schemas):
        engines = [("SQLite", f"sqlite:///{tmp}/forecast_store.db")]
        if schemas is not None:
            engines.append(("PostgreSQL", schemas.create("fs")))
        for engine, url in engines:
            progress(f"-- {engine}")
            r, reads, p95 = run_engine(engine, url, args)
            refresh_rows += r
            read_rows += reads
            goals.append(
                f"{engine}: stored read p95 {p95:.1f} ms, goal ≤ {GOAL_P95_MS:.0f} ms "
                f"{'met' if p95 <= GOAL_P95_MS else 'NOT met'}"
            )
    print(
        f"{args.sensors} sensors × {args.days:g} days at {args.interval}, horizon "
        f"{args.horizon}, on {os.cpu_count()} CPUs"
    )
    print_table(
        "Refresh of every sensor's stored forecast (refresh_forecasts)",
        ["engine", "run", "sensors", "refitted", "chose anew", "seconds", "s/sensor"],
        refresh_rows,
    )
    print_table(
        "A forecast through the API (one client, keep-alive), ms",
        ["engine", "request", "n", "p50", "p95", "p99"],
        read_rows,
    )
    print()
    for line in goals:
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
