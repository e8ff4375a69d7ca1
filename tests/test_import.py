"""CSV import: every kind of bad input is a one-line error naming file, line and field; the
database is unchanged after any of them."""

from __future__ import annotations

import os
import subprocess
import sys

import pandas as pd
import pytest

from plantcast.core.errors import InputError
from plantcast.ingest.csv_import import CsvSpec, import_csv

GOOD = "ts,value\n2026-01-01T00:00:00Z,1.5\n2026-01-01T00:30:00Z,2.5\n2026-01-01T01:00:00Z,3.0\n"


@pytest.fixture
def seeded(store, tmp_path):
    """A store already holding an imported sensor, so 'unchanged' has something to lose."""
    path = tmp_path / "good.csv"
    path.write_text(GOOD)
    import_csv(store, CsvSpec(path), "flow")
    return store


def _snapshot(store):
    return {
        s.name: store.read_series(s.id, "1970-01-01", "2100-01-01").to_dict()
        for s in store.list_sensors()
    }


BAD = [
    ("missing column", "time,value\n2026-01-01T00:00:00Z,1\n", {}, 1, "ts", "no column 'ts'"),
    ("bad time", GOOD + "yesterday,4\n", {}, 5, "ts", "cannot read 'yesterday' as a time"),
    ("missing time", GOOD + ",4\n", {}, 5, "ts", "missing timestamp"),
    ("bad number", GOOD + "2026-01-01T02:00:00Z,abc\n", {}, 5, "value", "cannot read 'abc'"),
    ("nan", GOOD + "2026-01-01T02:00:00Z,NaN\n", {}, 5, "value", "not a finite number"),
    ("inf", GOOD + "2026-01-01T02:00:00Z,inf\n", {}, 5, "value", "not a finite number"),
    ("empty value", GOOD + "2026-01-01T02:00:00Z,\n", {}, 5, "value", "missing value"),
    (
        "conflicting duplicate",
        GOOD + "2026-01-01T00:30:00+00:00,9.9\n",
        {},
        5,
        "ts",
        "appears twice with different values",
    ),
    ("naive without tz", "ts,value\n2026-01-01 00:00:00,1\n", {}, 2, "ts", "has no time zone"),
    ("custom column", GOOD, {"value_col": "reading"}, 1, "reading", "no column 'reading'"),
]


@pytest.mark.parametrize(
    ("case", "text", "opts", "line", "field", "message"), BAD, ids=[b[0] for b in BAD]
)
def test_bad_input_is_refused_and_nothing_changes(
    seeded, tmp_path, case, text, opts, line, field, message
):
    before = _snapshot(seeded)
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(InputError) as info:
        import_csv(seeded, CsvSpec(path, **opts), "flow")
    err = info.value
    assert message in str(err)
    assert (err.file, err.line, err.field) == (str(path), line, field)
    assert f"{path}:{line}" in str(err)
    assert _snapshot(seeded) == before


def test_missing_and_empty_files(seeded, tmp_path):
    before = _snapshot(seeded)
    with pytest.raises(InputError, match="no such file"):
        import_csv(seeded, CsvSpec(tmp_path / "nope.csv"), "flow")
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(InputError, match="the file is empty"):
        import_csv(seeded, CsvSpec(empty), "flow")
    header_only = tmp_path / "header.csv"
    header_only.write_text("ts,value\n")
    with pytest.raises(InputError, match="no data rows"):
        import_csv(seeded, CsvSpec(header_only), "flow")
    assert _snapshot(seeded) == before


def test_an_error_late_in_a_large_file_writes_nothing(seeded, tmp_path, monkeypatch):
    import plantcast.ingest.csv_import as mod

    monkeypatch.setattr(mod, "CHUNK_ROWS", 1000)  # several chunks
    idx = pd.date_range("2026-02-01", periods=5000, freq="1min", tz="UTC")
    lines = [f"{t.isoformat()},{i}" for i, t in enumerate(idx)]
    lines[4321] = lines[4321].split(",")[0] + ",oops"
    path = tmp_path / "big.csv"
    path.write_text("ts,value\n" + "\n".join(lines) + "\n")
    before = _snapshot(seeded)
    with pytest.raises(InputError, match=r"big.csv:4323, field 'value'"):
        import_csv(seeded, CsvSpec(path), "flow")
    assert _snapshot(seeded) == before


def test_good_import_with_tz_and_exact_duplicates(store, tmp_path):
    path = tmp_path / "local.csv"
    path.write_text(
        "when;reading\n2026-03-01 10:00;1\n2026-03-01 10:00;1\n2026-03-01 10:30;2\n".replace(
            ";", ","
        )
    )
    r = import_csv(store, CsvSpec(path, "when", "reading", tz="Europe/Oslo"), "temp", unit="°C")
    assert (r.rows, r.duplicates_dropped) == (2, 1)
    s = store.get_sensor("temp")
    assert s.unit == "°C" and s.source == "imported" and s.interval == pd.Timedelta("30min")
    got = store.read_series(s.id, "2026-03-01", "2026-03-02")
    assert got.index[0] == pd.Timestamp("2026-03-01 09:00", tz="UTC")


def test_import_into_a_simulated_sensor_is_refused(store, tmp_path):
    from plantcast.core.errors import Refused
    from plantcast.ingest.backfill import backfill

    backfill(store, "reservoir_pressure", days=1, interval=pd.Timedelta("30min"), end="2026-01-02")
    path = tmp_path / "good.csv"
    path.write_text(GOOD)
    with pytest.raises(Refused, match="holds simulated data"):
        import_csv(store, CsvSpec(path), "reservoir_pressure")


def test_cli_error_is_one_line_and_exit_code_is_nonzero(sqlite_url, tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text(GOOD + "2026-01-01T02:00:00Z,abc\n")
    env = {**os.environ, "PLANTCAST_DATABASE_URL": sqlite_url}
    proc = subprocess.run(
        [sys.executable, "-m", "plantcast", "import", str(path), "--sensor", "flow"],
        capture_output=True,
        text=True,
        env=env,
    )
    assert proc.returncode == 1
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert lines == [f"Error: {path}:5, field 'value': cannot read 'abc' as a number"]
