"""Detect over a long imported history: one `detect` scores it all in chunks, memory stays flat.

Run: ``.venv/bin/python benchmarks/detect_history.py [--readings 1000000] [--no-pg]``.
Writes the demo signal at 1-minute steps (with a +20 level shift and a spike near the end),
runs ``detect_sensor`` once, and prints readings scored, chunks, alerts, seconds and peak RSS
of this process before and after (``ru_maxrss``).
"""

from __future__ import annotations

import resource
import time

import pandas as pd

from _common import on_both_engines, pg_options, print_table, progress
from plantcast.core.types import Source
from plantcast.services.detection import detect_sensor
from plantcast.signals import SignalModel, generate_readings
from plantcast.store import Store


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def run(url: str, n: int) -> list:
    series = generate_readings(SignalModel(seed=3), "2024-01-01", periods=n, interval="1min")
    values = series.to_numpy().copy()
    values[n - 3000 :] += 20.0  # a level shift two days before the end
    values[n - 6000] += 40.0  # and a spike before it
    series[:] = values
    with Store.open(url) as store:
        store.init()
        sid = store.ensure_sensor(
            "history", unit="bar", source=Source.IMPORTED, interval=pd.Timedelta("1min")
        ).id
        for i in range(0, n, 200_000):
            store.write_readings(sid, series.iloc[i : i + 200_000])
        del series, values
        before = peak_rss_mb()
        chunks = []
        t0 = time.perf_counter()
        result = detect_sensor(store, "history", on_progress=lambda d, t, _: chunks.append(t))
        took = time.perf_counter() - t0
        alerts = store.list_alerts(sensor_id=sid, limit=10_000)
    by = {}
    for a in alerts:
        by[a.detector] = by.get(a.detector, 0) + 1
    return [
        url.split(":")[0],
        f"{result.scored:,}",
        str(max(chunks) if chunks else 0),
        ", ".join(f"{k} {v}" for k, v in sorted(by.items())) or "none",
        f"{took:.1f}",
        f"{before:.0f}",
        f"{peak_rss_mb():.0f}",
    ]


def main() -> None:
    args = pg_options(
        __doc__, lambda parser: parser.add_argument("--readings", type=int, default=1_000_000)
    )

    def one(url: str) -> list:
        engine = "SQLite" if url.startswith("sqlite") else "PostgreSQL"
        progress(f"{engine}, {args.readings:,} readings")
        return run(url, args.readings)

    rows = on_both_engines(args, "history", one)
    print_table(
        f"One detect over {args.readings:,} readings of imported history (1-min steps)",
        ["engine", "scored", "chunks", "alerts", "seconds", "RSS before MB", "peak RSS MB"],
        rows,
    )


if __name__ == "__main__":
    main()
