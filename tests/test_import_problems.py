"""CSV import problems: the first N bad rows are reported together with their lines and fields
and nothing is written; --skip-invalid imports the good rows and lists the others."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

import plantcast.ingest.csv_import as mod
from plantcast.ingest.csv_import import CsvSpec, ImportProblems, import_csv

HEAD = "ts,value\n"
ROWS = [
    "2026-01-01T00:00:00Z,1.0",  # line 2
    "2026-01-01T00:01:00Z,",  # 3: missing value
    "2026-01-01T00:02:00Z,3.0",  # 4
    "2026-01-01T00:03:00Z,4.0,extra",  # 5: a field too many
    "soon,5.0",  # 6: bad time
    "2026-01-01T00:05:00Z,6.0",  # 7
    "2026-01-01T00:02:00Z,9.0",  # 8: line 4's time, another value
    "2026-01-01T00:06:00Z,NaN",  # 9
    "2026-01-01T00:07:00Z,8.0",  # 10
]
BAD_LINES = [3, 5, 6, 8, 9]
GOOD = {2: 1.0, 4: 3.0, 7: 6.0, 10: 8.0}  # line: value


def _write(tmp_path, rows, name="bad.csv"):
    path = tmp_path / name
    path.write_text(HEAD + "\n".join(rows) + "\n")
    return path


def _stored(store, name):
    return store.read_series(store.get_sensor(name).id, "2025-01-01", "2027-01-01")


def _expected_good() -> list[float]:
    return [GOOD[line] for line in sorted(GOOD)]


def test_every_problem_is_reported_with_line_and_field_and_nothing_is_written(store, tmp_path):
    path = _write(tmp_path, ROWS)
    with pytest.raises(ImportProblems) as info:
        import_csv(store, CsvSpec(path), "flow")
    err = info.value
    assert err.total == len(BAD_LINES)
    assert [p.line for p in err.problems] == BAD_LINES
    assert [p.field for p in err.problems] == ["value", None, "ts", "ts", "value"]
    assert (err.line, err.field) == (3, "value")  # the first, for callers reading one
    text = str(err)
    assert text.startswith(f"{path}: 5 bad row(s), nothing imported:")
    assert "line 5: expected 2 fields, found 3" in text
    assert "line 6, field 'ts': cannot read 'soon' as a time" in text
    assert "line 8, field 'ts': timestamp 2026-01-01T00:02:00+00:00 appears twice" in text
    assert "also on line 4" in text
    assert "line 9, field 'value': 'NaN' is not a finite number" in text
    assert [s.name for s in store.list_sensors()] == []  # not even the sensor


def test_only_the_first_max_problems_are_listed_but_all_are_counted(store, tmp_path):
    rows = [f"2026-01-01T00:{m:02d}:00Z,x{m}" for m in range(30)]
    path = _write(tmp_path, rows)
    with pytest.raises(ImportProblems) as info:
        import_csv(store, CsvSpec(path), "flow", max_problems=4)
    err = info.value
    assert err.total == 30
    assert [p.line for p in err.problems] == [2, 3, 4, 5]
    assert "30 bad row(s), nothing imported; the first 4:" in str(err)


@pytest.mark.parametrize("shuffled", [False, True], ids=["in order", "out of order"])
def test_skip_invalid_imports_the_good_rows_and_lists_the_others(store, tmp_path, shuffled):
    rows = list(ROWS)
    if shuffled:  # the fallback on sorted runs: same result
        rows = [rows[i] for i in (8, 0, 6, 2, 1, 5, 3, 4, 7)]
    path = _write(tmp_path, rows)
    r = import_csv(store, CsvSpec(path), "flow", skip_invalid=True)
    assert (r.rows, r.invalid_rows, r.duplicates_dropped) == (4, 5, 0)
    assert sorted(p.message.split()[0] for p in r.skipped) == sorted(
        ["missing", "expected", "cannot", "timestamp", "'NaN'"]
    )
    got = _stored(store, "flow")
    if not shuffled:
        assert [p.line for p in r.skipped] == BAD_LINES
        np.testing.assert_array_equal(got.to_numpy(), _expected_good())
    else:  # 00:02's '9.0' now comes first by line: it stays, '3.0' is the one skipped
        np.testing.assert_array_equal(got.to_numpy(), [1.0, 9.0, 6.0, 8.0])
    assert got.index[0] == pd.Timestamp("2026-01-01T00:00", tz="UTC")
    assert store.get_sensor("flow").interval == pd.Timedelta("2min")


def test_skip_invalid_across_chunks_keeps_line_numbers(store, tmp_path, monkeypatch):
    monkeypatch.setattr(mod, "CHUNK_ROWS", 7)
    idx = pd.date_range("2026-02-01", periods=60, freq="1min", tz="UTC")
    rows = [f"{t.isoformat()},{i}" for i, t in enumerate(idx)]
    bad = {10: "a", 23: "", 41: "inf"}  # row index: bad value
    for i, v in bad.items():
        rows[i] = f"{idx[i].isoformat()},{v}"
    rows[33] = rows[33] + ",1,2"  # two fields too many
    path = _write(tmp_path, rows)
    r = import_csv(store, CsvSpec(path), "flow", skip_invalid=True)
    assert [p.line for p in r.skipped] == [12, 25, 35, 43]  # row index + 2
    assert r.rows == 56
    got = _stored(store, "flow")
    assert sorted(set(range(60)) - set(got.to_numpy().astype(int))) == [10, 23, 33, 41]


def test_skip_invalid_with_no_valid_row_writes_nothing(store, tmp_path):
    path = _write(tmp_path, ["2026-01-01T00:00:00Z,x", "later,1"])
    with pytest.raises(ImportProblems, match="2 bad row\\(s\\) and no valid row"):
        import_csv(store, CsvSpec(path), "flow", skip_invalid=True)
    assert store.list_sensors() == []


def test_a_failed_import_leaves_an_existing_sensor_as_it_was(store, tmp_path):
    good = _write(tmp_path, ["2026-01-01T00:00:00Z,1", "2026-01-01T00:01:00Z,2"], "good.csv")
    import_csv(store, CsvSpec(good), "flow")
    before = _stored(store, "flow")
    rows = [f"2026-01-02T00:{m:02d}:00Z,{m}" for m in range(50)] + ["2026-01-03T00:00:00Z,x"]
    with pytest.raises(ImportProblems):
        import_csv(store, CsvSpec(_write(tmp_path, rows)), "flow")
    pd.testing.assert_series_equal(_stored(store, "flow"), before)


def _cli(url, *args):
    env = {**os.environ, "PLANTCAST_DATABASE_URL": url}
    return subprocess.run(
        [sys.executable, "-m", "plantcast", "import", *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
    )


def test_cli_lists_the_problems_and_skips_them_on_request(db_url, tmp_path):
    path = _write(tmp_path, ROWS)
    refused = _cli(db_url, path, "--sensor", "flow", "--max-problems", "2")
    assert refused.returncode == 1
    lines = [ln for ln in refused.stderr.splitlines() if ln.strip()]
    assert lines == [
        f"Error: {path}: 5 bad row(s), nothing imported; the first 2:",
        "  line 3, field 'value': missing value",
        "  line 5: expected 2 fields, found 3",
    ]
    done = _cli(db_url, path, "--sensor", "flow", "--skip-invalid")
    assert done.returncode == 0, done.stderr
    assert "flow: imported 4 readings" in done.stdout
    assert "skipped 5 invalid row(s):" in done.stdout
    assert "  line 6, field 'ts': cannot read 'soon' as a time" in done.stdout


def test_a_new_sensor_is_not_left_behind_by_a_late_failure(store, tmp_path, monkeypatch):
    """Chunks before the bad row were written (and, on PostgreSQL, the sensor made in a short
    transaction of its own): the failure leaves neither readings nor the sensor."""
    monkeypatch.setattr(mod, "CHUNK_ROWS", 10)
    rows = [f"2026-01-02T00:{m:02d}:00Z,{m}" for m in range(50)] + ["2026-01-03T00:00:00Z,x"]
    with pytest.raises(ImportProblems, match=":52, field 'value'"):
        import_csv(store, CsvSpec(_write(tmp_path, rows)), "fresh")
    assert store.list_sensors() == []


@pytest.mark.parametrize("zone", ["Z", ""])
def test_times_outside_the_supported_years_are_bad_rows_not_a_crash(store, tmp_path, zone):
    """Arrow reads year 3975 and pandas cannot hold it: either way a bad row with its line."""
    rows = [f"2026-01-01T00:00:00{zone},1.0", f"3975-01-01T00:00:00{zone},2.0"]
    rows += [f"1650-06-01T00:00:00{zone},3.0"]
    tz = None if zone else "UTC"
    with pytest.raises(ImportProblems) as info:
        import_csv(store, CsvSpec(_write(tmp_path, rows), tz=tz), "far")
    assert [(p.line, p.field) for p in info.value.problems] == [(3, "ts"), (4, "ts")]
    assert "is outside the supported years (1700-2200)" in str(info.value)
    assert [s.name for s in store.list_sensors()] == []
