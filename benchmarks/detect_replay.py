"""Replay real recordings a week at a time through import and detect, as a scheduled job would.

Run: ``.venv/bin/python benchmarks/detect_replay.py [--data-dir tests/data] [--pg URL]``, or on
any directory of labelled recordings (a ``labels.csv`` in the ``name,file,start,end,kind,
description`` form of ``tests/data/labelled/labels.csv`` beside its ``ts,value`` CSVs, e.g. a
held-out set kept outside the repository)::

    .venv/bin/python benchmarks/detect_replay.py --labelled DIR [--detectors a,b] [--details]

For each vendored recording: a fresh store (a temporary SQLite file, or a scratch schema on
``--pg``), the readings imported one ``--step`` (a week) at a time with the function behind
``plantcast import``, and ``detect_sensor`` run after each import. A run that raises counts as
a stall (the error is printed, the replay goes on). At the end, per series: alerts by detector,
alerts per 30 days, zero-length alerts, the longest alert, stalls (and how many runs in a row
still failed at the end: a sensor stalled for good), and, for water_flow, event precision and
recall against its real labelled anomalies (and gaps). Peak RSS at the end. ``--step 1d``
reproduces the issue's stall (a first run on exactly the minimum history).

With ``--labelled``, every recording of DIR is scored against its windows with the
repository's event matching (:func:`plantcast.detect.evaluation.match_events`, 3 readings of
tolerance): windows caught / total, alerts true (touching a window) / total, event precision
(true alerts / alerts), recall (windows caught / windows), F1, false alerts per 30 days, the
median lead time of the caught windows (hours from the first alert to the window's end, as
``evaluation.match_events`` counts it), the NAB score (standard profile, over all windows and
false alerts) and stalls, per series and in total, for the chosen detectors (``--detectors``,
names of ``DETECTOR_CLASSES``) and, over the same readings, the rolling z-score baseline
(causal: its trailing day, so scoring the whole series equals scoring it a week at a time).
Each detector's row counts every alert it agreed on (one alert per episode lists all the
detectors that flagged it), so a detector that joins another's alert still gets the window.
A last table scores the same alerts with each gap in the readings counted as an event too
(as the water_flow figures count its gaps): failure labels omit outages, which the dropout
detector exists to report.
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
from plantcast.detect.baselines import RollingZDetector
from plantcast.detect.evaluation import (
    false_alert_weights,
    labelled_scores,
    match_events,
    nab_score,
)
from plantcast.ingest.csv_import import CsvSpec, import_csv
from plantcast.services.detection import DETECTOR_CLASSES, DETECTORS, detect_sensor
from plantcast.signals.labelled import labelled_windows, load_labelled
from plantcast.signals.recordings import RECORDINGS, gaps, load_recordings, real_labels
from plantcast.store import Store


def replay(
    store: Store,
    name: str,
    series: pd.Series,
    step: pd.Timedelta,
    tmp: Path,
    detectors: tuple[str, ...] = DETECTORS,
) -> dict:
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
            detect_sensor(store, name, detectors=detectors)
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
            "detectors": [tuple(a.detectors or {a.detector: a.score}) for a in alerts],
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


def event_counts(alerts: pd.DataFrame, labels: pd.DataFrame, interval: pd.Timedelta) -> dict:
    """Windows caught and alerts true (touching a window, ``match_events``) of one series, with
    each caught window's lead time, each window's NAB term and the NAB weight of the false
    alerts (so totals over several series are NAB's over all their windows)."""
    eps = alerts[["start", "end", "detected_at"]].sort_values("start")
    matched, false = match_events(labels, eps, interval, tolerance=3)
    return {
        "caught": int(matched["detected"].sum()),
        "windows": len(labels),
        "true": len(eps) - false,
        "alerts": len(eps),
        "matched": matched,
        "leads": list(matched["lead_h"].dropna()),
        "rewards": list(matched["nab"]),
        "fp_weight": float(false_alert_weights(labels, eps, interval, tolerance=3).sum()),
    }


def event_row(what: str, c: dict, days: float, stalls: int | str = "") -> list:
    """A table row: caught/total, true/alerts, precision, recall, F1, false alerts per 30 d,
    median lead time (h) of the caught windows and NAB score."""
    precision = c["true"] / c["alerts"] if c["alerts"] else 0.0
    recall = c["caught"] / c["windows"] if c["windows"] else float("nan")
    f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    false_30d = 30 * (c["alerts"] - c["true"]) / days
    return [
        what,
        f"{c['caught']}/{c['windows']}",
        f"{c['true']}/{c['alerts']}",
        f"{precision:.2f}",
        f"{recall:.2f}",
        f"{f1:.2f}",
        f"{false_30d:.1f}",
        f"{np.median(c['leads']):.1f}" if c["leads"] else "-",
        f"{nab_score(np.asarray(c['rewards']), c['fp_weight']):.1f}",
        stalls,
    ]


def baseline_alerts(series: pd.Series) -> pd.DataFrame:
    """The rolling z-score's episodes over the whole series (causal), merged like alerts: one
    starting within its cooldown of the last one's end extends it."""
    det = RollingZDetector()
    eps = det.episodes(series)
    gap = pd.Timedelta(det.policy.cooldown)
    rows: list[list] = []
    for start, end in zip(eps["start"], eps["end"], strict=True):
        if rows and start - rows[-1][1] <= gap:
            rows[-1][1] = max(rows[-1][1], end)
        else:
            rows.append([start, end])
    frame = pd.DataFrame(rows, columns=["start", "end"])
    frame["detector"] = "rolling_z"
    frame["detected_at"] = frame["start"]
    return frame


def gap_windows(series: pd.Series) -> pd.DataFrame:
    """The readings' gaps (``recordings.gaps``: first missing slot, next reading) as
    ``starts_at``/``ends_at`` windows."""
    return pd.DataFrame(gaps(series), columns=["starts_at", "ends_at"])


def add(total: dict, c: dict) -> None:
    for k in ("caught", "windows", "true", "alerts", "leads", "rewards", "fp_weight"):
        total[k] = total.get(k, type(c[k])()) + c[k]


EVENT_HEADERS = [
    "series",
    "caught",
    "alerts true",
    "precision",
    "recall",
    "F1",
    "false/30d",
    "lead h",
    "NAB",
]


def labelled_main(args: argparse.Namespace, step: pd.Timedelta) -> None:
    """Replay every recording of ``args.labelled`` and score it against its windows."""
    root = Path(args.labelled)
    labels_file: Path | None = root / "labels.csv"
    if not labels_file.is_file():
        labels_file = None  # the repository's layout: labelled/labels.csv
    windows = labelled_windows(root, labels_file)
    detectors = tuple(d for d in args.detectors.split(",") if d)
    unknown = [d for d in detectors if d not in DETECTOR_CLASSES]
    if unknown or not detectors:
        known = ", ".join(DETECTOR_CLASSES)
        raise SystemExit(f"--detectors: unknown {', '.join(unknown) or '(none)'}; known: {known}")
    names = args.series or sorted(windows["name"].unique())
    rows, base_rows, det_rows, details, all_errors = [], [], [], [], {}
    total: dict = {}
    base_total: dict = {}
    gap_total: dict = {}
    gap_rows: list[list] = []
    per_det: dict[str, dict] = {d: {} for d in detectors}
    days_total, stalls_total = 0.0, 0
    with tempfile.TemporaryDirectory(prefix="plantcast-replay-") as tmpdir:
        tmp = Path(tmpdir)
        for name in names:
            series, spans = load_labelled(name, root, labels_file)
            labels = pd.DataFrame(spans, columns=["starts_at", "ends_at"])
            interval = pd.Timedelta(int(np.median(np.diff(series.index.asi8))), "ns")
            with Store.open(f"sqlite:///{tmp / name}.db") as store:
                store.init()
                progress(f"{name}: {len(series):,} readings, one {args.step} at a time")
                res = replay(store, name, series, step, tmp, detectors)
            alerts, days = res["alerts"], res["days"]
            stalls = sum(res["errors"].values())
            all_errors[name] = res["errors"]
            days_total += days
            stalls_total += stalls
            c = event_counts(alerts, labels, interval)
            add(total, c)
            rows.append(event_row(name, c, days, stalls))
            base = event_counts(baseline_alerts(series), labels, interval)
            add(base_total, base)
            base_rows.append(event_row(name, base, days))
            # the readings' own gaps as events too, as real_labels counts water_flow's: an
            # outage is what the dropout detector is for, and the failure labels omit it
            gaps = gap_windows(series)
            with_gaps = pd.concat([labels, gaps], ignore_index=True) if len(gaps) else labels
            cg = event_counts(alerts, with_gaps.sort_values("starts_at"), interval)
            add(gap_total, cg)
            gap_rows.append(event_row(name, cg, days))
            for det in detectors:  # every alert this detector agreed on, whoever opened it
                agreed = alerts["detectors"].map(lambda names, d=det: d in names)
                cd = event_counts(alerts[agreed.astype(bool)], labels, interval)
                add(per_det[det], cd)
            if args.details:
                details.append(window_details(name, alerts, labels, interval))
    rows.append(event_row("TOTAL", total, days_total, stalls_total))
    base_rows.append(event_row("TOTAL", base_total, days_total))
    gap_rows.append(event_row("TOTAL", gap_total, days_total))
    for det in detectors:
        det_rows.append(event_row(det, per_det[det], days_total))
    print_table(
        f"labelled replay of {root} ({len(names)} series, {days_total:.0f} days), one "
        f"{args.step} per import then detect_sensor, detectors {','.join(detectors)}",
        [*EVENT_HEADERS, "stalls"],
        rows,
        left=1,
    )
    print_table(
        "each detector (the alerts it agreed on, whichever detector opened them)",
        ["detector", *EVENT_HEADERS[1:], ""],
        det_rows,
        left=1,
    )
    print_table(
        "baseline: rolling z-score (1 d trailing, |z| > 4) on the same readings",
        [*EVENT_HEADERS, ""],
        base_rows,
        left=1,
    )
    print_table(
        "the same alerts, each gap in the readings (> 2 intervals) an event too",
        [*EVENT_HEADERS, ""],
        gap_rows,
        left=1,
    )
    for block in details:
        print(block)
    print("\nstalls (runs that raised), by error:")
    for name, errors in all_errors.items():
        for msg, n in errors.most_common():
            print(f"  {name}: {n}× {msg}")
        if not errors:
            print(f"  {name}: none")
    sys.stdout.flush()


def window_details(
    name: str, alerts: pd.DataFrame, labels: pd.DataFrame, interval: pd.Timedelta
) -> str:
    """Each window (caught by which detectors, first alert's delay) and each false alert."""
    lines = [f"\n{name}:"]
    stops = labels["ends_at"] + 3 * interval
    touching = pd.Series(False, index=alerts.index)
    for start, end, stop in zip(labels["starts_at"], labels["ends_at"], stops, strict=True):
        hit = alerts[(alerts["start"] <= stop) & (alerts["end"] >= start)]
        touching |= (alerts["start"] <= stop) & (alerts["end"] >= start)
        if len(hit):
            delay = max(hit["start"].min() - start, pd.Timedelta(0))
            by = ", ".join(sorted({d for names in hit["detectors"] for d in names}))
            what = f"caught by {by} ({len(hit)} alerts), first after {_fmt_td(delay)}"
        else:
            what = "MISSED"
        lines.append(f"  window {start:%Y-%m-%d %H:%M} - {end:%Y-%m-%d %H:%M}: {what}")
    for _, a in alerts[~touching].sort_values("start").iterrows():
        lines.append(
            f"  false alert {'+'.join(a['detectors'])}: {a['start']:%Y-%m-%d %H:%M} - "
            f"{a['end']:%Y-%m-%d %H:%M} ({_fmt_td(a['end'] - a['start'])})"
        )
    return "\n".join(lines)


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
    ap.add_argument("--series", nargs="*", default=None, help="recordings to replay (all)")
    ap.add_argument("--labelled", default=None, help="a directory of labelled recordings")
    ap.add_argument(
        "--detectors",
        default=",".join(DETECTORS),
        help=f"with --labelled: detectors, comma-separated (of {', '.join(DETECTOR_CLASSES)})",
    )
    ap.add_argument("--details", action="store_true", help="with --labelled: each window, alert")
    args = ap.parse_args(argv)
    step = pd.Timedelta(args.step)
    if args.labelled:
        labelled_main(args, step)
        return
    unknown = sorted(set(args.series or ()) - set(RECORDINGS))
    if unknown:
        ap.error(f"--series: unknown {', '.join(unknown)}; known: {', '.join(RECORDINGS)}")
    args.series = args.series or list(RECORDINGS)
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
