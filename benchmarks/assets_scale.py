"""One detect pass over many assets: a first pass, then an incremental one over a new hour.

Run: ``.venv/bin/python benchmarks/assets_scale.py [--assets 1000] [--sensors 6] [--hours 24]
[--no-pg | --no-sqlite] [--dask]``. Per engine (SQLite and a scratch schema on PostgreSQL),
ASSETS simulated pumps (``plantcast.signals.pump``, SENSORS of their sensors each, 1-min
readings, HOURS of history) are made assets whose known-good period is pinned on the first
three quarters of the history. The first pass (``detect_assets``) fits each asset on that
period, stores the fit, and scores the rest; then an hour of new readings arrives and the
incremental pass scores it with the stored fits. With ``--dask`` the incremental pass is
also run by ``scale.detect_assets_many`` on a LocalCluster (reset to the same resume points).
Goal (issue 18): 1,000 assets × 8 sensors at 1 min, one pass over a new hour ≤ 60 s.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np
import pandas as pd

from _common import DEFAULT_PG_URL, print_table, progress, scratch
from plantcast.core.types import Source
from plantcast.services import assets as asset_service
from plantcast.services.asset_detection import ASSET_DETECTORS, detect_assets
from plantcast.signals.pump import SENSORS, simulate_pump
from plantcast.store import Store
from plantcast.store.readings import write_batch

STEP = pd.Timedelta("1min")
START = pd.Timestamp("2026-01-01", tz="UTC")
NEW = 60  # readings per sensor of the incremental pass (an hour)
GOAL = 60.0


def _write(store: Store, ids: list[list[int]], frames: list[pd.DataFrame], lo, hi) -> None:
    """Rows lo..hi-1 of every asset's frame, one bulk write per 100 assets."""
    for k in range(0, len(ids), 100):
        parts = []
        for sids, frame in zip(ids[k : k + 100], frames[k : k + 100], strict=True):
            part = frame.iloc[lo:hi]
            us = (part.index.asi8 // 1_000).astype(np.int64)
            for j, sid in enumerate(sids):
                parts.append((np.full(len(us), sid, np.int64), us, part.iloc[:, j].to_numpy()))
        with store.write() as conn:
            write_batch(
                conn,
                {
                    "sensor_id": np.concatenate([p[0] for p in parts]),
                    "ts": np.concatenate([p[1] for p in parts]),
                    "value": np.concatenate([p[2] for p in parts]),
                },
            )


def run_engine(url: str, n: int, sensors: int, hours: int, dask: bool) -> dict:
    rows = hours * 60
    index = pd.date_range(START, periods=rows + NEW, freq=STEP, name="ts")
    names = list(SENSORS[:sensors])
    t0 = time.perf_counter()
    frames = [simulate_pump(1000 + i, index, STEP)[0][names] for i in range(n)]
    with Store.open(url) as store:
        store.init()
        ids = []
        for i in range(n):
            made = [
                store.ensure_sensor(f"a{i:04d}_{s}", source=Source.IMPORTED, interval=STEP).id
                for s in names
            ]
            ids.append(made)
            asset_service.create_asset(store, f"a{i:04d}", [f"a{i:04d}_{s}" for s in names])
            asset_service.set_training(store, f"a{i:04d}", START, index[rows * 3 // 4])
        _write(store, ids, frames, 0, rows)
        setup = time.perf_counter() - t0
        progress(f"{n} assets × {sensors} sensors × {rows} readings written in {setup:.0f} s")
        t0 = time.perf_counter()
        first = detect_assets(store)
        first_s = time.perf_counter() - t0
        bad = [r for r in first.values() if isinstance(r, Exception)]
        if bad:
            raise RuntimeError(f"{len(bad)} assets failed, e.g. {bad[0]!r}")
        progress(f"first pass {first_s:.1f} s")
        _write(store, ids, frames, rows, rows + NEW)
        marks = {}
        with store.transaction(readonly=True) as tx:
            marks = tx.asset_scored_until([a.id for a in tx.list_assets()])
        t0 = time.perf_counter()
        again = detect_assets(store)
        inc_s = time.perf_counter() - t0
        scored = sum(r.scored for r in again.values() if not isinstance(r, Exception))
        progress(f"incremental pass {inc_s:.1f} s ({scored:,} grid rows)")
        out = {"setup": setup, "first": first_s, "incremental": inc_s, "rows": scored}
        if dask:
            from plantcast.scale import connect, detect_assets_many

            with store.transaction() as tx:
                tx.set_asset_scored_until(marks)
            with connect(workers=os.cpu_count() or 1) as client:
                t0 = time.perf_counter()
                detect_assets_many(store, None, client=client)
                out["dask"] = time.perf_counter() - t0
            progress(f"incremental pass on Dask {out['dask']:.1f} s")
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--assets", type=int, default=1000)
    p.add_argument("--sensors", type=int, default=6, choices=range(2, len(SENSORS) + 1))
    p.add_argument("--hours", type=int, default=24)
    p.add_argument("--pg-url", default=DEFAULT_PG_URL)
    p.add_argument("--no-pg", action="store_true")
    p.add_argument("--no-sqlite", action="store_true")
    p.add_argument("--dask", action="store_true")
    args = p.parse_args()
    results = []
    with scratch(None if args.no_pg else args.pg_url) as (tmpdir, schemas):
        targets = [] if args.no_sqlite else [("sqlite", f"sqlite:///{tmpdir}/assets.db")]
        if schemas is not None:
            targets.append(("postgresql", schemas.create("assets")))
        for engine, url in targets:
            progress(f"{engine}: {args.assets} assets")
            r = run_engine(url, args.assets, args.sensors, args.hours, args.dask)
            results.append([engine, *(f"{r[k]:.1f}" for k in ("setup", "first", "incremental"))])
            if args.dask:
                results[-1].append(f"{r['dask']:.1f}")
    headers = ["engine", "setup s", "first pass s", "new hour s"] + (
        ["dask s"] if args.dask else []
    )
    print_table(
        f"{args.assets} assets × {args.sensors} sensors, 1 min, {args.hours} h history "
        f"({', '.join(ASSET_DETECTORS)}; goal: a new hour ≤ {GOAL:.0f} s)",
        headers,
        results,
    )


if __name__ == "__main__":
    sys.exit(main())
