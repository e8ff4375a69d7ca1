"""Benchmark the plant overview's refresh: plantcast's few statements vs one query per sensor.

Run: ``.venv/bin/python benchmarks/overview.py [--quick] [--pg-url URL | --no-pg] [--sqlite]``.

A refresh is what the overview page's live fragment does on the server:
``services.overview.overview`` — every sensor's status, latest reading and open/acknowledged
alert counts (one statement), and the 24 h sparkline, 48 buckets averaged in SQL, of the 100
sensors the page shows (a second statement) — timed ``--runs`` times after two untimed ones;
median and p95 printed. Beside it, the same page read one query per sensor (the latest reading
and the open alert count of every sensor, then ``read_buckets`` for the 100 shown), and, for
scale, the overview with the sparklines of *every* sensor (what a page of all sensors would
cost). Each sensor holds 26 h of readings every 5 minutes; every tenth has an open alert.
Default sizes 1,000 and 10,000 sensors (--quick: 100 and 1,000); PostgreSQL in a scratch schema
``bench_…`` dropped at the end, SQLite (--sqlite) in a temporary file. Table to stdout.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable

import numpy as np
import pandas as pd
from sqlalchemy import insert

from _common import DEFAULT_PG_URL, pg_version, print_table, progress, scratch
from plantcast.core.types import AlertStatus
from plantcast.services.overview import PAGE_SIZE, SPARK_BUCKETS, SPARK_SPAN, overview
from plantcast.store import Store
from plantcast.store import alerts as alert_rows
from plantcast.store.schema import sensors as sensors_table

STEP = pd.Timedelta("5min")
HISTORY = pd.Timedelta("26h")
SENSOR_CHUNK = 1_000  # sensors a write_batch


def fill(store: Store, n: int, end: pd.Timestamp) -> int:
    """``n`` sensors of 26 h of 5-minute readings ending at ``end``; returns readings written."""
    with store.write() as conn:
        conn.execute(
            insert(sensors_table),
            [
                {"name": f"unit{i // 50:03d}_tag{i:05d}", "unit": "bar", "description": "",
                 "source": "imported", "interval_s": STEP.total_seconds(), "params": "{}"}
                for i in range(n)
            ],
        )  # fmt: skip
    ids = np.array(sorted(s.id for s in store.list_sensors()), dtype=np.int64)
    us = pd.date_range(end - HISTORY, end, freq=STEP).asi8 // 1_000
    rng = np.random.default_rng(7)
    written = 0
    for lo in range(0, n, SENSOR_CHUNK):
        part = ids[lo : lo + SENSOR_CHUNK]
        sid = np.repeat(part, len(us))
        values = 100 + rng.normal(0, 5, len(sid))
        written += store.write_batch(
            {"sensor_id": sid, "ts": np.tile(us, len(part)), "value": values}
        )
        progress(f"  {store.dialect}: {lo + len(part):,}/{n:,} sensors written")
    with store.write() as conn:
        for sid in ids[::10]:
            alert_rows.insert_alert(
                conn, int(sid), ts=end - STEP, detector="residual", score=6.0, value=130.0
            )
    if store.dialect == "postgresql":
        with store.write() as conn:
            conn.exec_driver_sql("ANALYZE")
    return written


def per_sensor(store: Store, now: pd.Timestamp) -> int:
    """The same page, one query per sensor (and three for each sensor shown)."""
    rows = []
    for s in store.list_sensors():
        last = store.last_reading(s.id)
        rows.append((s, last, store.count_alerts(sensor_id=s.id, status=AlertStatus.OPEN)))
    rows.sort(key=lambda r: (r[2] == 0, r[0].name))
    for s, last, _ in rows[:PAGE_SIZE]:
        if last is not None:
            store.read_buckets(
                s.id, last[0] - SPARK_SPAN, last[0] + pd.Timedelta("1us"), SPARK_BUCKETS
            )
    return len(rows)


def timed(fn: Callable[[], object], runs: int) -> tuple[float, float]:
    """(median, p95) milliseconds of ``runs`` calls after two untimed ones."""
    for _ in range(min(2, runs)):
        fn()
    took = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        took.append((time.perf_counter() - t0) * 1_000)
    return float(np.median(took)), float(np.percentile(took, 95))


def bench(store: Store, engine: str, n: int, runs: int) -> list[list]:
    end = pd.Timestamp.now(tz="UTC").floor(STEP)
    readings = fill(store, n, end)
    now = end + pd.Timedelta("1min")
    ov = overview(store, now=now)
    assert len(ov.rows) == min(n, PAGE_SIZE) and ov.counts["alerting"] == -(-n // 10), ov.counts
    assert all(len(r.sparkline) == SPARK_BUCKETS for r in ov.rows)
    out = []
    versions = [
        ("overview (3 statements, 100 sparklines)", lambda: overview(store, now=now), runs),
        ("overview, every sensor's sparkline", lambda: overview(store, now=now, page_size=n),
         max(3, runs // 10)),
        ("one query per sensor", lambda: per_sensor(store, now), 3),
    ]  # fmt: skip
    for name, fn, r in versions:
        progress(f"  {engine} {n:,} sensors: {name}, {r} runs")
        med, p95 = timed(fn, r)
        out.append([engine, f"{n:,}", f"{readings:,}", name, r, f"{med:,.0f}", f"{p95:,.0f}"])
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100 and 1,000 sensors")
    parser.add_argument("--runs", type=int, default=30, help="timed refreshes per size")
    pg = parser.add_mutually_exclusive_group()
    pg.add_argument("--pg-url", default=DEFAULT_PG_URL)
    pg.add_argument("--no-pg", action="store_true")
    parser.add_argument("--sqlite", action="store_true", help="SQLite too")
    args = parser.parse_args(argv)
    sizes = [100, 1_000] if args.quick else [1_000, 10_000]
    pg_url = None if args.no_pg else args.pg_url
    if pg_url is not None and pg_version(pg_url) is None:
        pg_url = None
    rows: list[list] = []
    with scratch(pg_url) as (tmpdir, schemas):
        for n in sizes:
            targets = []
            if schemas is not None:
                targets.append(("postgresql", schemas.create(f"ov{n}")))
            if args.sqlite or schemas is None:
                targets.append(("sqlite", f"sqlite:///{os.path.join(tmpdir, f'ov{n}.db')}"))
            for engine, url in targets:
                store = Store.open(url)
                store.init()
                try:
                    rows += bench(store, engine, n, args.runs)
                finally:
                    store.close()
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print_table(
        f"Overview refresh, server side (26 h of {STEP.seconds // 60}-min readings a sensor; "
        f"page of {PAGE_SIZE}; load average after: {load})",
        ["engine", "sensors", "readings", "version", "runs", "median ms", "p95 ms"],
        rows,
        left=4,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
