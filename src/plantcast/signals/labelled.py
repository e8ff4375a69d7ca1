"""Vendored real recordings with labelled real anomalies: the series and their anomaly windows.

``tests/data/labelled/labels.csv`` holds one row per anomaly window: ``name`` (the recording),
``file`` (its ``ts,value`` CSV, relative to ``tests/data``), ``start``, ``end`` (UTC ISO 8601;
``end`` is exclusive, the first reading back at the normal level), ``kind`` and ``description``.
Source and licence of every file are in ``tests/data/README.md``. Nothing is downloaded.
A set kept elsewhere (e.g. a held-out benchmark outside the repository) may keep its
``labels.csv`` at the top of its directory instead: pass ``labels=`` the file.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pandas as pd

from plantcast.signals.recordings import load_recording

# tests/data of a source checkout (src/plantcast/signals/labelled.py -> repository root).
DEFAULT_DATA_DIR = Path(__file__).resolve().parents[3] / "tests" / "data"
LABELS_FILE = Path("labelled") / "labels.csv"
COLUMNS = ("name", "file", "start", "end", "kind", "description")

Window = tuple[pd.Timestamp, pd.Timestamp]


def _data_dir(data_dir: str | Path | None) -> Path:
    return Path(data_dir) if data_dir is not None else DEFAULT_DATA_DIR


def _utc(text: str, where: str, field: str) -> pd.Timestamp:
    try:
        ts = pd.Timestamp(text)
    except ValueError as exc:
        raise ValueError(f"{where}: field {field!r}: {text!r} is not a timestamp") from exc
    if ts.tzinfo is None:
        raise ValueError(f"{where}: field {field!r}: {text!r} has no time zone (use ...Z)")
    return ts.tz_convert("UTC")


def labelled_windows(
    data_dir: str | Path | None = None, labels: str | Path | None = None
) -> pd.DataFrame:
    """Every labelled window (``name, file, start, end, kind, description``), checked;
    ``labels`` is the labels file (default ``data_dir/labelled/labels.csv``); ``file`` is
    relative to ``data_dir`` either way.

    Raises ``ValueError`` naming the file, line and field of a malformed row.
    """
    root = _data_dir(data_dir)
    path = Path(labels) if labels is not None else root / LABELS_FILE
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(f"{path}: line 1: missing column(s) {', '.join(missing)}")
        rows = []
        for line, row in enumerate(reader, start=2):
            where = f"{path}: line {line}"
            for col in COLUMNS[:5]:
                if not (row.get(col) or "").strip():
                    raise ValueError(f"{where}: field {col!r} is empty")
            file = Path(row["file"])
            if file.is_absolute() or ".." in file.parts:
                raise ValueError(f"{where}: field 'file': {row['file']!r} must stay inside {root}")
            start = _utc(row["start"], where, "start")
            end = _utc(row["end"], where, "end")
            if end <= start:
                raise ValueError(f"{where}: window ends ({end}) at or before it starts ({start})")
            rows.append((row["name"], row["file"], start, end, row["kind"], row["description"]))
    frame = pd.DataFrame(rows, columns=list(COLUMNS))
    files = frame.groupby("name")["file"].nunique()
    if (files > 1).any():
        raise ValueError(f"{path}: recording(s) {list(files[files > 1].index)} name several files")
    return frame.sort_values(["name", "start"], ignore_index=True)


def list_labelled(
    data_dir: str | Path | None = None, labels: str | Path | None = None
) -> list[str]:
    """Names of the recordings that have labelled real anomalies, sorted."""
    return sorted(labelled_windows(data_dir, labels)["name"].unique())


def load_labelled(
    name: str, data_dir: str | Path | None = None, labels: str | Path | None = None
) -> tuple[pd.Series, list[Window]]:
    """The recording ``name`` (float series, sorted unique UTC index) and its ``(start, end)``
    anomaly windows in time order (UTC; ``end`` exclusive).

    Raises ``ValueError`` for an unknown name or a window outside the series.
    """
    windows = labelled_windows(data_dir, labels)
    rows = windows[windows["name"] == name]
    if rows.empty:
        known = ", ".join(sorted(windows["name"].unique()))
        raise ValueError(f"no labelled recording {name!r}; known: {known}")
    path = _data_dir(data_dir) / rows["file"].iloc[0]
    series = load_recording(path)
    first, last = series.index[0], series.index[-1]
    spans = list(zip(rows["start"], rows["end"], strict=True))
    for start, end in spans:
        inside = series[(series.index >= start) & (series.index < end)]
        if start < first or end > last or inside.empty:
            raise ValueError(
                f"{path}: window {start} - {end} of {name!r} is not inside the series "
                f"({first} - {last}) or holds no reading"
            )
    return series, spans
