"""A replay in which a pattern labelled a false alarm recurs: is it alerted again, and are the
real anomalies of the same replay still found?

One imported sensor (a daily cycle with noise, 30-minute readings) is streamed week by week
and `detect` runs after each week, as in production. A routine pattern (a short bump, e.g. a
valve's weekly test) appears in week 3 and then every week; real anomalies (level shifts and
spikes, larger) appear between. Run twice on fresh stores: *before*, nobody labels anything;
*after*, the first occurrence's alert is labelled false_alarm as soon as it is raised
(`plantcast alerts label ID false_alarm`). Printed: the repeats alerted (of the recurrences
after the label) and the recall on the real anomalies, before and after.

    python benchmarks/feedback_replay.py [--weeks 10] [--seed 1]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from plantcast.core.types import Source
from plantcast.services import alert_workflow
from plantcast.services.detection import detect_sensor
from plantcast.signals import SignalModel, generate_readings
from plantcast.store import Store

START = pd.Timestamp("2026-01-05", tz="UTC")  # a Monday
STEP = pd.Timedelta("30min")
SENSOR = "valve_flow"
PATTERN_WEEK = 3  # the first occurrence (labelled false alarm in the "after" run)
PATTERN_AT = pd.Timedelta("2d10h")  # into each week: Wednesday 10:00
PATTERN = (14.0, pd.Timedelta("2h"))  # a bump of 6 (3.5 noise σ above the cycle) for 2 h
# the real anomalies: (start into the week, kind, size, duration), one a week from week 4 on
REAL = (
    (pd.Timedelta("5d14h"), "shift", 30.0, pd.Timedelta("12h")),
    (pd.Timedelta("4d03h"), "spike", 40.0, pd.Timedelta("30min")),
)


def plant(weeks: int, seed: int) -> tuple[pd.Series, list[pd.Timestamp], list[pd.Timestamp]]:
    """The readings, the pattern's starts and the real anomalies' starts."""
    n = int(pd.Timedelta(weeks=weeks) / STEP)
    series = generate_readings(SignalModel(seed=seed), START, periods=n, interval=STEP)
    values = series.to_numpy(copy=True)
    index = series.index
    patterns, reals = [], []
    for week in range(PATTERN_WEEK, weeks):
        at = START + pd.Timedelta(weeks=week) + PATTERN_AT
        size, span = PATTERN
        values[(index >= at) & (index < at + span)] += size
        patterns.append(at)
        if week > PATTERN_WEEK:
            offset, _kind, size, span = REAL[week % len(REAL)]
            real_at = START + pd.Timedelta(weeks=week) + offset
            values[(index >= real_at) & (index < real_at + span)] += size
            reals.append(real_at)
    return pd.Series(values, index=index), patterns, reals


def hit(alerts, at: pd.Timestamp, span: pd.Timedelta) -> bool:
    """An alert overlapping [at - 1h, at + span + 6h]."""
    lo, hi = at - pd.Timedelta("1h"), at + span + pd.Timedelta("6h")
    return any(a.ts <= hi and (a.ends_at is None or a.ends_at >= lo) for a in alerts)


def replay(weeks: int, seed: int, label: bool, folder: Path) -> dict:
    series, patterns, reals = plant(weeks, seed)
    path = folder / f"replay-{'after' if label else 'before'}.db"
    labelled = None
    with Store.open(f"sqlite:///{path}") as store:
        store.init()
        sensor = store.ensure_sensor(SENSOR, source=Source.IMPORTED, interval=STEP)
        t0 = time.perf_counter()
        for week in range(weeks):
            lo = START + pd.Timedelta(weeks=week)
            part = series[(series.index >= lo) & (series.index < lo + pd.Timedelta(weeks=1))]
            store.write_readings(sensor.id, part)
            detect_sensor(store, SENSOR)
            if label and labelled is None and week >= PATTERN_WEEK:
                found = [
                    a
                    for a in store.list_alerts(sensor_id=sensor.id, limit=10_000)
                    if hit([a], patterns[0], PATTERN[1])
                ]
                if found:
                    labelled = found[0].id
                    alert_workflow.label(store, labelled, "false_alarm", actor="benchmark")
        seconds = time.perf_counter() - t0
        alerts = store.list_alerts(sensor_id=sensor.id, limit=10_000)
    repeats = [at for at in patterns[1:] if hit(alerts, at, PATTERN[1])]
    found = [at for at in reals if hit(alerts, at, pd.Timedelta("12h"))]
    return {
        "first pattern alerted": hit(alerts, patterns[0], PATTERN[1]),
        "labelled": labelled,
        "repeats": (len(repeats), len(patterns) - 1),
        "recall": (len(found), len(reals)),
        "alerts": len(alerts),
        "seconds": seconds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weeks", type=int, default=10)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        rows = {
            name: replay(args.weeks, args.seed, label, Path(tmp))
            for name, label in (("before", False), ("after", True))
        }
    print(f"feedback replay: {args.weeks} weeks of {SENSOR}, 30-min readings, seed {args.seed}")
    print(f"{'':8} {'repeats alerted':>16} {'recall (real)':>14} {'alerts':>7} {'detect s':>9}")
    for name, r in rows.items():
        rep, rec = r["repeats"], r["recall"]
        print(
            f"{name:8} {f'{rep[0]}/{rep[1]}':>16} {f'{rec[0]}/{rec[1]}':>14} "
            f"{r['alerts']:>7} {r['seconds']:>9.1f}"
        )
    after = rows["after"]
    print(
        f"first occurrence alerted: {after['first pattern alerted']}; labelled false_alarm: "
        f"alert {after['labelled']}"
    )


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
