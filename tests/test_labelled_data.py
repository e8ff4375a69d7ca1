"""The vendored recordings with labelled real anomalies load cleanly and have a named licence."""

from __future__ import annotations

import re
from itertools import pairwise
from pathlib import Path

import pandas as pd
import pytest

from plantcast.signals.labelled import (
    DEFAULT_DATA_DIR,
    LABELS_FILE,
    labelled_windows,
    list_labelled,
    load_labelled,
)
from plantcast.signals.recordings import WATER_FLOW_ANOMALIES

DATA = Path(__file__).parent / "data"
# Licences a MIT project may vendor data under; copyleft, NoDerivatives and NonCommercial may not.
ALLOWED = re.compile(r"\b(MIT|BSD-[23]-Clause|Apache-2\.0|public domain|CC0|CC BY 4\.0)\b")
FORBIDDEN = re.compile(r"\b(A?GPL|LGPL|NoDerivatives|ND|NonCommercial|NC|proprietary)\b", re.I)
HEADER = "name,file,start,end,kind,description\n"


def readme_licences() -> dict[str, str]:
    """``{file: licence cell}`` from the table rows of tests/data/README.md."""
    out = {}
    for line in (DATA / "README.md").read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and len(cells) > 2 and re.fullmatch(r"`[^`]+\.csv`", cells[0]):
            out[cells[0].strip("`")] = cells[-1]
    return out


def test_default_data_dir_is_this_checkout():
    assert DATA.resolve() == DEFAULT_DATA_DIR
    assert (DATA / LABELS_FILE).is_file()


def test_at_least_one_labelled_recording():
    assert list_labelled() == sorted(labelled_windows()["name"].unique())
    assert "water_flow" in list_labelled()


@pytest.mark.parametrize("name", list_labelled(DATA))
def test_recording_loads_sorted_utc_with_windows_inside(name):
    series, windows = load_labelled(name)
    assert len(series) > 100
    assert str(series.index.tz) == "UTC"
    assert series.index.is_monotonic_increasing and series.index.is_unique
    assert series.dtype == "float64" and series.notna().all()
    assert windows == sorted(windows)
    for start, end in windows:
        assert str(start.tz) == str(end.tz) == "UTC"
        assert series.index[0] <= start < end <= series.index[-1]
        assert ((series.index >= start) & (series.index < end)).any()
    # windows do not overlap: one anomaly, one window
    assert all(a_end <= b_start for (_, a_end), (b_start, _) in pairwise(windows))


@pytest.mark.parametrize("file", sorted(labelled_windows(DATA)["file"].unique()))
def test_every_vendored_file_names_an_mit_compatible_licence(file):
    licences = readme_licences()
    assert file in licences, f"{file} has no row in tests/data/README.md"
    assert ALLOWED.search(licences[file]), licences[file]
    assert not FORBIDDEN.search(licences[file]), licences[file]


def test_water_flow_windows_match_the_labels_the_evaluation_uses():
    _, windows = load_labelled("water_flow")
    expected = [(pd.Timestamp(a), pd.Timestamp(b)) for _, a, b in WATER_FLOW_ANOMALIES]
    assert windows == expected


def test_water_flow_windows_hold_the_anomalies_and_nothing_else_does():
    series, windows = load_labelled("water_flow")
    inside = pd.Series(False, index=series.index)
    for start, end in windows:
        inside |= (series.index >= start) & (series.index < end)
    # every window departs from the normal band (100-108 l/s); no reading outside one does
    for start, end in windows:
        part = series[(series.index >= start) & (series.index < end)]
        assert (part < 99).any() or (part > 108).any()
    assert series[~inside].between(99, 108).all()


def write(tmp_path: Path, labels: str, values: str | None = None) -> Path:
    (tmp_path / "labelled").mkdir()
    (tmp_path / LABELS_FILE).write_text(labels, encoding="utf-8")
    if values is not None:
        (tmp_path / "s.csv").write_text(values, encoding="utf-8")
    return tmp_path


SERIES = "ts,value\n" + "".join(f"2024-01-01T{h:02d}:00:00Z,{h}.0\n" for h in range(10))


def test_unknown_name_lists_the_known_ones():
    with pytest.raises(ValueError, match=r"no labelled recording 'nope'; known: .*water_flow"):
        load_labelled("nope")


def test_malformed_row_names_file_line_and_field(tmp_path):
    root = write(
        tmp_path,
        HEADER + "s,s.csv,2024-01-01T01:00Z,2024-01-01T03:00Z,x,ok\n"
        "s,s.csv,yesterday,2024-01-01T03:00Z,x,bad\n",
        SERIES,
    )
    with pytest.raises(ValueError, match=r"labels\.csv: line 3: field 'start': 'yesterday'"):
        labelled_windows(root)


def test_naive_time_reversed_window_and_escaping_path_are_refused(tmp_path):
    root = write(tmp_path, HEADER + "s,s.csv,2024-01-01T01:00,2024-01-01T03:00Z,x,\n", SERIES)
    with pytest.raises(ValueError, match=r"line 2: field 'start'.*no time zone"):
        labelled_windows(root)
    (root / LABELS_FILE).write_text(HEADER + "s,s.csv,2024-01-01T03:00Z,2024-01-01T01:00Z,x,\n")
    with pytest.raises(ValueError, match=r"line 2: window ends .* before it starts"):
        labelled_windows(root)
    (root / LABELS_FILE).write_text(HEADER + "s,../s.csv,2024-01-01T01:00Z,2024-01-01T03:00Z,x,\n")
    with pytest.raises(ValueError, match=r"line 2: field 'file': '\.\./s\.csv' must stay inside"):
        labelled_windows(root)


def test_window_outside_the_series_is_refused(tmp_path):
    root = write(tmp_path, HEADER + "s,s.csv,2024-01-01T08:00Z,2024-01-02T00:00Z,x,late\n", SERIES)
    with pytest.raises(ValueError, match=r"s\.csv: window .* of 's' is not inside the series"):
        load_labelled("s", root)


def test_a_small_valid_set_loads(tmp_path):
    root = write(
        tmp_path,
        HEADER + "s,s.csv,2024-01-01T05:00Z,2024-01-01T07:00Z,x,\n"
        "s,s.csv,2024-01-01T01:00Z,2024-01-01T02:00Z,x,\n",
        SERIES,
    )
    series, windows = load_labelled("s", root)
    assert list_labelled(root) == ["s"]
    assert len(series) == 10 and series.iloc[3] == 3.0
    assert windows == [
        (pd.Timestamp("2024-01-01T01:00Z"), pd.Timestamp("2024-01-01T02:00Z")),
        (pd.Timestamp("2024-01-01T05:00Z"), pd.Timestamp("2024-01-01T07:00Z")),
    ]


def test_a_set_kept_elsewhere_reads_its_labels_file_beside_the_recordings(tmp_path):
    root = write(tmp_path, HEADER + "s,s.csv,2024-01-01T05:00Z,2024-01-01T07:00Z,x,\n", SERIES)
    (root / LABELS_FILE).rename(root / "labels.csv")
    with pytest.raises(FileNotFoundError):
        labelled_windows(root)
    assert list_labelled(root, labels=root / "labels.csv") == ["s"]
    series, windows = load_labelled("s", root, labels=root / "labels.csv")
    assert len(series) == 10
    assert windows == [(pd.Timestamp("2024-01-01T05:00Z"), pd.Timestamp("2024-01-01T07:00Z"))]
