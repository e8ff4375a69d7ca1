"""Limit alarms: a first pass over a plant's history, a pass with nothing new, and what the hook
costs ``detect`` when no sensor has limits, on SQLite and PostgreSQL.

Run: ``.venv/bin/python benchmarks/limits.py [--sensors 50] [--days 7] [--no-pg]``.
Writes ``--sensors`` sensors of 1 min readings (a daily cycle 45-55 with noise), sets
``high 54, high_high 56, low 45.5`` with a deadband of 1.5 on each, then times
``limit_alerts.check_limits`` (no forecast) over all of them: the first pass scores every
reading; the second finds nothing new. ``hook`` is ``after_detect`` over as many sensors
without limits (what every ``detect`` pass pays). ``forecast`` is one sensor's forecast check
with a forecast fitted then (no stored one). Times are wall clock and CPU of this process
(PostgreSQL's own work is in the wall time only); each best of 3 but the first pass.
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd

from _common import print_table, progress, rows_on_both_engines
from plantcast.core.types import Source
from plantcast.services import limits
from plantcast.services.limit_alerts import after_detect, check_forecast, check_limits
from plantcast.store import Store

START = pd.Timestamp("2026-01-05", tz="UTC")
STEP = pd.Timedelta("1min")
LEVELS = {"low": 45.5, "high": 54.0, "high_high": 56.0}


def _write(store: Store, prefix: str, sensors: int, days: float) -> list:
    rng = np.random.default_rng(7)
    n = int(pd.Timedelta(days=days) / STEP)
    index = pd.date_range(START, periods=n, freq=STEP, tz="UTC")
    phase = 2 * np.pi * np.arange(n) / (24 * 60)
    made = []
    for k in range(sensors):
        sensor = store.ensure_sensor(f"{prefix}{k:03d}", source=Source.IMPORTED, interval=STEP)
        values = 50 + 5 * np.sin(phase + k) + rng.normal(0, 0.3, n)
        store.write_readings(sensor.id, pd.Series(values, index=index))
        made.append(sensor)
    return made


def _timed(fn) -> tuple[float, float, object]:
    w0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    return time.perf_counter() - w0, time.process_time() - c0, out


def _best(fn, repeat: int = 3) -> tuple[float, float]:
    runs = [_timed(fn)[:2] for _ in range(repeat)]
    return min(r[0] for r in runs), min(r[1] for r in runs)


def run(url: str, sensors: int, days: float) -> list[list[str]]:
    engine = url.split(":")[0]
    with Store.open(url) as store:
        store.init()
        progress(f"{engine}: writing {sensors} sensors × {days:g} days at 1 min")
        with_limits = _write(store, "lim", sensors, days)
        without = _write(store, "free", sensors, min(days, 1.0))
        for s in with_limits:
            limits.set_limits(store, s.name, author="bench", levels=LEVELS, deadband=1.5)
        readings = sensors * int(pd.Timedelta(days=days) / STEP)
        progress(f"{engine}: first pass over {readings:,} readings")
        wall, cpu, results = _timed(lambda: check_limits(store, forecast=False))
        opened = sum(r.opened for r, _, _ in results)  # type: ignore[union-attr]
        again_wall, again_cpu = _best(lambda: check_limits(store, forecast=False))
        hook_wall, hook_cpu = _best(lambda: after_detect(store, without))
        one = with_limits[0].name
        fc_wall, fc_cpu = _best(lambda: check_forecast(store, one), repeat=1)
    return [
        [engine, "first pass", f"{readings:,}", f"{opened:,}", f"{wall:.2f} s", f"{cpu:.2f} s"],
        [
            engine,
            "nothing new",
            "0",
            "0",
            f"{again_wall * 1e3:.0f} ms",
            f"{again_cpu * 1e3:.0f} ms",
        ],
        [
            engine,
            "hook, no limits",
            "-",
            "-",
            f"{hook_wall * 1e3:.1f} ms",
            f"{hook_cpu * 1e3:.1f} ms",
        ],
        [
            engine,
            "forecast, 1 sensor",
            "-",
            "-",
            f"{fc_wall * 1e3:.0f} ms",
            f"{fc_cpu * 1e3:.0f} ms",
        ],
    ]


def main() -> None:
    args, rows = rows_on_both_engines(__doc__, "limits", 50, run)
    print_table(
        f"limit alarms over {args.sensors} sensors (hook: {args.sensors} sensors without limits)",
        ["engine", "pass", "readings", "alarms opened", "wall", "CPU"],
        rows,
    )


if __name__ == "__main__":
    main()
