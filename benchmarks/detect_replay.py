"""Replay real recordings a week at a time through import and detect, as a scheduled job would.

Run: ``.venv/bin/python benchmarks/detect_replay.py [--data-dir tests/data] [--pg URL]``.

For each vendored recording: a fresh store (a temporary SQLite file, or a scratch schema on
``--pg``), the readings imported one ``--step`` (a week) at a time with the function behind
``plantcast import``, and ``detect_sensor`` run after each import. A run that raises counts as
a stall (the error is printed, the replay goes on). At the end, per series: alerts by detector,
alerts per 30 days, zero-length alerts, the longest alert, stalls (and how many runs in a row
still failed at the end: a sensor stalled for good), and, for water_flow, event precision and
recall against its real labelled anomalies (and gaps). Peak RSS at the end. ``--step 1d``
reproduces the issue's stall (a first run on exactly the minimum history).
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd

from _common import ScratchSchemas, print_table, progress
from plantcast.detect.evaluation import labelled_scores, match_events
from plantcast.ingest.csv_import import CsvSpec, import_csv
from plantcast.services.detection import detect_sensor
from plantcast.signals.recordings import RECORDINGS, load_recordings, real_labels
from plantcast.store import Store


def replay(store: Store, name: str, series: pd.Series, step: pd.Timedelta, tmp: Path) -> dict:
    """Import ``series`` one ``step`` at a time, detecting after each; return the figures."""
    errors: Counter[str] = Counter()
    runs, failing, t0 = 0, 0, time.perf_counter()
    start = series.index[0]
    while start <= series.index[-1]:
        part = series[(series.index >= start) & (series.index < start + step)]
        start += step
        if part.empty:
            continue
        path = tmp / f"{name}_{runs}.csv"
        frame = pd.DataFrame({"ts": part.index.strftime("%Y-%m-%dT%H:%M:%SZ"), "value": part})
        frame.to_csv(path, index=False)
        import_csv(store, CsvSpec(path), name)
        runs += 1
        try:
            detect_sensor(store, name)
            failing = 0
        except Exception as exc:  # a stall is what we count, whatever its type
            first = (str(exc).strip().splitlines() or [""])[0]
            errors[f"{type(exc).__name__}: {first}"] += 1
            failing += 1
    sensor = store.get_sensor(name)
    alerts = store.list_alerts(sensor_id=sensor.id, limit=10_000_000)
    last = series.index[-1]
    frame = pd.DataFrame(
        {
            "detector": [a.detector for a in alerts],
            "start": pd.DatetimeIndex([a.ts for a in alerts], tz="UTC"),
            "end": pd.DatetimeIndex([a.ends_at or last for a in alerts], tz="UTC"),
        }
    )
    frame["detected_at"] = frame["start"]
    return {
        "runs": runs,
        "errors": errors,
        "failing_at_end": failing,
        "alerts": frame,
        "seconds": time.perf_counter() - t0,
        "days": (last - series.index[0]) / pd.Timedelta(days=1),
    }


def against_labels(alerts: pd.DataFrame, labels: pd.DataFrame, interval: pd.Timedelta):
    """Event recall (labels touched by an alert) and precision (alerts touching a label)."""
    eps = alerts[["start", "end", "detected_at"]].sort_values("start")
    matched, false = match_events(labels, eps, interval, tolerance=3)
    hit = int(matched["detected"].sum())
    precision = (len(eps) - false) / len(eps) if len(eps) else float("nan")
    return hit, len(labels), precision


def _fmt_td(td: pd.Timedelta | None) -> str:
    if td is None or pd.isna(td):
        return "-"
    hours = td / pd.Timedelta(hours=1)
    return f"{hours / 24:.1f} d" if hours >= 48 else f"{hours:.0f} h"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", default="tests/data", help="the vendored real recordings")
    ap.add_argument("--pg", default=None, help="PostgreSQL URL (scratch schemas) instead of SQLite")
    ap.add_argument("--step", default="7d", help="how much history each import brings")
    ap.add_argument("--series", nargs="*", default=list(RECORDINGS), choices=list(RECORDINGS))
    args = ap.parse_args(argv)
    step = pd.Timedelta(args.step)
    recordings = load_recordings(args.data_dir, args.series)
    rows, detector_rows, label_rows, all_errors = [], [], [], {}
    schemas = ScratchSchemas(args.pg) if args.pg else None
    try:
        with tempfile.TemporaryDirectory(prefix="plantcast-replay-") as tmpdir:
            tmp = Path(tmpdir)
            for name, series in recordings.items():
                url = schemas.create(name[:12]) if schemas else f"sqlite:///{tmp / name}.db"
                with Store.open(url) as store:
                    store.init()
                    progress(f"{name}: {len(series):,} readings, one {args.step} at a time")
                    res = replay(store, name, series, step, tmp)
                alerts, days = res["alerts"], res["days"]
                length = alerts["end"] - alerts["start"]
                stalls = sum(res["errors"].values())
                all_errors[name] = res["errors"]
                rows.append(
                    [
                        name,
                        f"{days:.0f}",
                        res["runs"],
                        len(alerts),
                        f"{30 * len(alerts) / days:.1f}",
                        int((length == pd.Timedelta(0)).sum()),
                        _fmt_td(length.max() if len(alerts) else None),
                        stalls,
                        res["failing_at_end"],
                        f"{res['seconds']:.1f}",
                    ]
                )
                for det, n in alerts["detector"].value_counts().sort_index().items():
                    zero = int((length[alerts["detector"] == det] == pd.Timedelta(0)).sum())
                    detector_rows.append([name, det, n, f"{30 * n / days:.1f}", zero])
                labels = real_labels(name, series)
                if len(labels):
                    interval = pd.Timedelta(int(np.median(np.diff(series.index.asi8))), "ns")
                    for what, lab in (
                        ("real anomalies", labels[labels["kind"] != "dropout"]),
                        ("real anomalies + gaps", labels),
                    ):
                        hit, n, precision = against_labels(alerts, lab, interval)
                        early = labelled_scores(lab, alerts, interval)  # lead time, NAB
                        lead_nab = [f"{early['median_lead_h']:.1f}", f"{early['nab']:.1f}"]
                        label_rows.append(
                            [name, what, len(alerts), f"{hit}/{n}", f"{precision:.3f}", *lead_nab]
                        )
    finally:
        if schemas is not None:
            schemas.drop()
    engine = "PostgreSQL" if args.pg else "SQLite"
    print_table(
        f"replay, one {args.step} per import then detect_sensor ({engine})",
        [
            "series",
            "days",
            "runs",
            "alerts",
            "alerts/30d",
            "zero-length",
            "longest",
            "stalls",
            "failing at end",
            "seconds",
        ],
        rows,
        left=1,
    )
    print_table(
        "alerts by detector",
        ["series", "detector", "alerts", "per 30 d", "zero-length"],
        detector_rows,
    )
    if label_rows:
        print_table(
            "against real labels (event recall; precision = alerts touching a label / alerts;"
            " lead: median hours before a label's window ends; NAB: standard profile, 0-100)",
            ["series", "labels", "alerts", "recall", "precision", "lead h", "NAB"],
            label_rows,
        )
    print("\nstalls (runs that raised), by error:")
    for name, errors in all_errors.items():
        for msg, n in errors.most_common():
            print(f"  {name}: {n}× {msg}")
        if not errors:
            print(f"  {name}: none")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\npeak RSS: {peak:.0f} MB")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
