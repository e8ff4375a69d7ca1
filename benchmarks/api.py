"""Benchmark the REST API: a readings window (3 days → 1,000 SQL buckets) at 10M stored readings.

Run: ``.venv/bin/python benchmarks/api.py [--rows 10000000] [--clients 16] [--requests 40]
[--workers 1] [--pg-url URL]``.

PostgreSQL (a fresh schema ``bench_…`` in ``--pg-url``, dropped at the end) holds ``--rows``
readings of ``--sensors`` sensors, written with ``Store.write_batch`` (binary COPY). A real
``plantcast api`` (uvicorn) serves it on a free port of 127.0.0.1; ``--clients`` threads, each
with its own keep-alive connection, ask for a random sensor's last 3 days in 1,000 buckets.
Beside it, in the same run, the same threads make the same query directly through the store
(``Store.read_buckets``): the API's overhead is the ratio of the two. Last, the wall time of
``plantcast --help`` (median of 5 runs). Tables go to stdout, progress to stderr.
"""

from __future__ import annotations

import argparse
import os
import random
import socket
import statistics
import subprocess
import sys
import threading
import time

import httpx
import numpy as np
import pandas as pd

from _common import DEFAULT_PG_URL, pg_version, print_table, progress, scratch
from plantcast.core.types import Source
from plantcast.services.apikeys import create_key
from plantcast.store import Store

WINDOW = pd.Timedelta("3d")
BUCKETS = 1_000
CHUNK_ROWS = 1_000_000  # rows per write_batch call while building


def _args(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=10_000_000, help="readings stored in all")
    p.add_argument("--sensors", type=int, default=10)
    p.add_argument("--interval", default="10s", help="between a sensor's readings")
    p.add_argument("--clients", default="16,1", help="concurrent clients: each count is measured")
    p.add_argument("--requests", type=int, default=40, help="per client and side")
    p.add_argument(
        "--workers", default="1,2", help="plantcast api --workers: each count is measured"
    )
    p.add_argument("--pg-url", default=DEFAULT_PG_URL)
    return p.parse_args(argv)


def build(store: Store, rows: int, sensors: int, interval: pd.Timedelta) -> list[tuple[int, str]]:
    """``rows`` readings over ``sensors`` sensors ending now, in chunks of one write_batch."""
    per = rows // sensors
    step_us = int(interval.value // 1_000)
    end_us = pd.Timestamp.now(tz="UTC").floor("min").value // 1_000
    start_us = end_us - (per - 1) * step_us
    made = []
    rng = np.random.default_rng(0)
    t0 = time.perf_counter()
    for i in range(sensors):
        name = f"bench_api_{i}"
        s = store.ensure_sensor(name, source=Source.IMPORTED, interval=interval)
        made.append((s.id, name))
        for lo in range(0, per, CHUNK_ROWS):
            n = min(CHUNK_ROWS, per - lo)
            us = start_us + (lo + np.arange(n, dtype=np.int64)) * step_us
            phase = 2 * np.pi * (us % 86_400_000_000) / 86_400_000_000
            values = 100 + 10 * np.sin(phase) + rng.uniform(-2, 2, n)
            batch = {"sensor_id": np.full(n, s.id, dtype=np.int64), "ts": us, "value": values}
            store.write_batch(batch)
        progress(f"built {(i + 1) * per:,} / {per * sensors:,} readings")
    progress(f"stored {per * sensors:,} readings in {time.perf_counter() - t0:.1f} s")
    return made


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve(url: str, workers: int) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    cmd = [sys.executable, "-m", "plantcast", "api", "--port", str(port), "--workers", str(workers)]
    proc = subprocess.Popen(cmd, env={**os.environ, "PLANTCAST_DATABASE_URL": url})
    base = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                return proc, base
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.terminate()
    raise SystemExit("plantcast api did not start")


def run_clients(clients: int, requests: int, one, expect) -> tuple[list[float], float]:
    """Each of ``clients`` threads calls ``one(state)`` ``requests`` times; latencies (s), wall."""
    latencies: list[float] = []
    lock = threading.Lock()
    barrier = threading.Barrier(clients + 1)

    errors: list[BaseException] = []

    def worker(k: int) -> None:
        state = {"rng": random.Random(k), "expect": expect}
        mine = []
        barrier.wait()
        try:
            for _ in range(requests):
                t = time.perf_counter()
                one(state)
                mine.append(time.perf_counter() - t)
        except BaseException as exc:  # re-raised below, in the main thread
            errors.append(exc)
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(clients)]
    for t in threads:
        t.start()
    barrier.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return latencies, time.perf_counter() - t0


def _summary(clients, workers, api_lat, api_wall, st_lat, st_wall) -> str:
    p95_api = np.percentile(api_lat, 95)
    return (
        f"{clients} client(s), {workers} worker(s): API p95 "
        f"{p95_api / np.percentile(st_lat, 95):.2f}× the store's, p50 "
        f"{np.median(api_lat) / np.median(st_lat):.2f}×, throughput "
        f"{(len(api_lat) / api_wall) / (len(st_lat) / st_wall):.2f}× the store's; goal p95 ≤ "
        f"50 ms {'met' if p95_api <= 0.050 else 'NOT met'} ({p95_api * 1000:.1f} ms)"
    )


def _measure_api(clients, requests, base, token, sensors, ends, expect):
    def via_api(state):
        client = state.get("client")
        if client is None:
            client = state["client"] = httpx.Client(
                base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=30
            )
        sid, name = state["rng"].choice(sensors)
        end = ends[sid]
        params = {"start": (end - WINDOW).isoformat(), "end": end.isoformat(), "buckets": BUCKETS}
        r = client.get(f"/v1/sensors/{name}/readings", params=params)
        r.raise_for_status()
        assert len(r.json()["buckets"]) == state["expect"][sid]

    progress("warming up the API")
    run_clients(2, 5, via_api, expect)
    progress(f"{clients} clients × {requests} requests through the API")
    return run_clients(clients, requests, via_api, expect)


def _row(how: str, lat: list[float], wall: float) -> list:
    q = np.percentile(np.array(lat) * 1000, [50, 95, 99])
    return [how, len(lat), f"{q[0]:.1f}", f"{q[1]:.1f}", f"{q[2]:.1f}", f"{len(lat) / wall:,.0f}"]


def help_wall_time(runs: int = 5) -> float:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "plantcast", "--help"], check=True, capture_output=True
        )
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main(argv=None) -> int:
    args = _args(argv)
    interval = pd.Timedelta(args.interval)
    if pg_version(args.pg_url) is None:
        return 1
    with scratch(args.pg_url) as (_tmp, schemas):
        url = schemas.create("api")
        store = Store.open(url)
        store.init()
        sensors = build(store, args.rows, args.sensors, interval)
        token = create_key(store, "bench", "read")[1]
        ends = {sid: store.last_timestamp(sid) + pd.Timedelta(microseconds=1) for sid, _ in sensors}
        with store.read() as conn:
            conn.exec_driver_sql("ANALYZE readings")
        # buckets holding readings (all 1,000 once a sensor has 3 days of them)
        expect = {
            sid: len(store.read_buckets(sid, ends[sid] - WINDOW, ends[sid], BUCKETS))
            for sid, _ in sensors
        }
        rows, summary = [], []

        def direct(state):
            sid, _ = state["rng"].choice(sensors)
            end = ends[sid]
            frame = store.read_buckets(sid, end - WINDOW, end, BUCKETS)
            assert len(frame) == state["expect"][sid]

        run_clients(2, 5, direct, expect)
        for clients in [int(c) for c in str(args.clients).split(",")]:
            progress(f"{clients} clients × {args.requests} queries through the store")
            st_lat, st_wall = run_clients(clients, args.requests, direct, expect)
            rows.append(_row(f"{clients:>2} clients: Store.read_buckets directly", st_lat, st_wall))
            for workers in [int(w) for w in str(args.workers).split(",")]:
                proc, base = serve(url, workers)
                try:
                    api_lat, api_wall = _measure_api(
                        clients, args.requests, base, token, sensors, ends, expect
                    )
                finally:
                    proc.terminate()
                    proc.wait(timeout=20)
                how = f"{clients:>2} clients: API GET readings, {workers} uvicorn worker(s)"
                rows.append(_row(how, api_lat, api_wall))
                summary.append(_summary(clients, workers, api_lat, api_wall, st_lat, st_wall))
        store.close()

    print_table(
        f"Readings window: {WINDOW.days} days → {BUCKETS:,} buckets of one of {args.sensors} "
        f"sensors, {args.rows:,} readings stored (PostgreSQL)",
        ["how", "requests", "p50 ms", "p95 ms", "p99 ms", "req/s"],
        rows,
    )
    for line in summary:
        print(line)
    print(f"plantcast --help: {help_wall_time():.2f} s wall (median of 5 runs)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
