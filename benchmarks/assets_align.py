"""An asset's aligned read: how long one window of its sensors takes, on SQLite and PostgreSQL.

Run: ``.venv/bin/python benchmarks/assets_align.py [--sensors 10] [--days 7] [--no-pg]``.
Writes ``--sensors`` sensors (all at 1 min, the last at 5 min, each missing a random 2 % of
readings and one 3 h outage), makes them an asset (its grid: 5 min, the slowest) and an asset
of the 1 min sensors only, then times ``aligned_readings`` over the whole span (the best of 3)
and checks every cell against pandas' ``merge_asof`` (backward, with the same tolerance);
``read ms`` is the store's read of the same sensors and span alone (what aligning adds is the
difference).
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd

from _common import print_table, progress, rows_on_both_engines
from plantcast.core.types import Source
from plantcast.detect.alignment import default_max_age
from plantcast.services.assets import aligned_readings, create_asset
from plantcast.store import Store

START = pd.Timestamp("2026-01-05", tz="UTC")


def _write(store: Store, sensors: int, days: float) -> dict[str, pd.Series]:
    rng = np.random.default_rng(1)
    written = {}
    for k in range(sensors):
        interval = pd.Timedelta("5min" if k == sensors - 1 else "1min")
        name = f"s{k:02d}"
        sid = store.ensure_sensor(name, source=Source.IMPORTED, interval=interval).id
        index = pd.date_range(START, START + pd.Timedelta(days=days), freq=interval, tz="UTC")
        index = index[:-1] + pd.to_timedelta(rng.integers(0, 20, len(index) - 1), unit="s")
        keep = rng.random(len(index)) > 0.02
        outage = rng.integers(0, len(index) - 200)
        keep[outage : outage + int(pd.Timedelta("3h") / interval)] = False
        series = pd.Series(rng.normal(size=len(index)), index=index)[keep]
        store.write_readings(sid, series)
        written[name] = series
    return written


def _reference(written: dict[str, pd.Series], frame: pd.DataFrame, store: Store) -> None:
    """Every cell as pandas' backward as-of join with the same tolerance would have it."""
    left = pd.DataFrame({"ts": frame.index})
    for name in frame.columns:
        sensor = store.get_sensor(name)
        right = written[name].rename("v").rename_axis("ts").reset_index()
        right["ts"] = right["ts"].astype(left["ts"].dtype)
        joined = pd.merge_asof(
            left,
            right,
            on="ts",
            direction="backward",
            tolerance=default_max_age(sensor.interval),
        )
        np.testing.assert_array_equal(joined["v"].to_numpy(), frame[name].to_numpy())


def run(url: str, sensors: int, days: float) -> list[list[str]]:
    rows = []
    with Store.open(url) as store:
        store.init()
        progress(f"{url.split(':')[0]}: writing {sensors} sensors × {days:g} days")
        written = _write(store, sensors, days)
        names = list(written)
        create_asset(store, "all", names)
        create_asset(store, "fast", names[:-1])
        end = START + pd.Timedelta(days=days)
        for asset in ("all", "fast"):
            best, frame = float("inf"), None
            for _ in range(3):
                t0 = time.perf_counter()
                frame = aligned_readings(store, asset, START, end)
                best = min(best, time.perf_counter() - t0)
            assert frame is not None
            _reference(written, frame, store)
            ids = [store.get_sensor(c).id for c in frame.columns]
            read = float("inf")
            for _ in range(3):  # the read alone, for what aligning adds
                t0 = time.perf_counter()
                with store.transaction(readonly=True) as tx:
                    tx.read_series_many(ids, START - pd.Timedelta("10min"), end)
                read = min(read, time.perf_counter() - t0)
            readings = sum(len(written[c]) for c in frame.columns)
            rows.append(
                [
                    url.split(":")[0],
                    asset,
                    f"{len(frame.columns)}",
                    f"{readings:,}",
                    f"{len(frame):,}",
                    f"{frame.isna().to_numpy().mean():.1%}",
                    f"{best * 1000:.0f}",
                    f"{read * 1000:.0f}",
                    f"{readings / best:,.0f}",
                ]
            )
    return rows


def main() -> None:
    _, rows = rows_on_both_engines(__doc__, "assets", 10, run)
    print_table(
        "aligned_readings over the whole span (best of 3; cells equal pandas merge_asof)",
        [
            "engine",
            "asset",
            "sensors",
            "readings",
            "grid rows",
            "NaN",
            "ms",
            "read ms",
            "readings/s",
        ],
        rows,
    )


if __name__ == "__main__":
    main()
