"""Wide CSV import: a column per tag, each numeric column a sensor; the layout read from the
file; the same all-or-nothing rule and line-and-column errors as the long import."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

import plantcast.ingest.csv_import as core
from plantcast.core.errors import InputError, NotFound, Refused
from plantcast.ingest.csv_import import ImportProblems
from plantcast.ingest.csv_wide import import_wide, read_layout
from plantcast.services.imports import import_wide_file

SEMI = (
    "Zeit;TI-101;PI 7;Status\n"  # PI 7: not a sensor name (see the prefix test)
    "2026-01-01T00:00:00Z;1,5;;OK\n"
    "2026-01-01T00:01:00Z;-2,25;10;OK\n"
    "2026-01-01T00:02:00Z;3;;OK\n"
    "2026-01-01T00:03:00Z;1.234,5;12,5;OK\n"
)


def _write(tmp_path, text, name="wide.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path


def _series(store, name):
    return store.read_series(store.get_sensor(name).id, "2025-01-01", "2027-01-01")


def _good_semi(tmp_path):
    """Historian style: ';', decimal comma, a gap, a text column; no thousands separator."""
    text = (
        "Zeit;TI-101;PI-7;Status\n"
        "2026-01-01T00:00:00Z;1,5;;OK\n"
        "2026-01-01T00:01:00Z;-2,25;10;OK\n"
        "2026-01-01T00:02:00Z;3;;OK\n"
        "2026-01-01T00:03:00Z;4,75;12,5;OK\n"
    )
    return _write(tmp_path, text)


def test_semicolon_and_decimal_comma_are_read_from_the_file(store, tmp_path):
    result = import_wide(store, _good_semi(tmp_path), unit="bar")
    layout = result.layout
    assert (layout.delimiter, layout.decimal, layout.ts_col) == (";", ",", "Zeit")
    assert layout.columns == ("TI-101", "PI-7") and layout.text_columns == ("Status",)
    assert [r.sensor for r in result.sensors] == ["TI-101", "PI-7"]
    ti, pi = _series(store, "TI-101"), _series(store, "PI-7")
    assert ti.tolist() == [1.5, -2.25, 3.0, 4.75]
    assert pi.tolist() == [10.0, 12.5]  # empty cells are missing readings, not errors
    assert pi.index[0] == pd.Timestamp("2026-01-01T00:01:00Z")
    # each column's interval from its own readings, as the long import infers it
    assert store.get_sensor("TI-101").interval == pd.Timedelta("1min")
    assert store.get_sensor("PI-7").interval == pd.Timedelta("2min")
    assert {s.name: (s.source, s.unit) for s in store.list_sensors()} == {
        "TI-101": ("imported", "bar"),
        "PI-7": ("imported", "bar"),
    }


def test_comma_and_decimal_point_with_a_prefix(store, tmp_path):
    text = (
        "pressure,ts,flow\n"  # the time column found by name, not by place
        "1.5,2026-02-01T00:00:00Z,100\n"
        "2.5,2026-02-01T00:10:00Z,101.25\n"
        "3.5,2026-02-01T00:20:00Z,\n"
    )
    result = import_wide(store, _write(tmp_path, text), prefix="L3.")
    assert (result.layout.delimiter, result.layout.decimal, result.layout.ts_col) == (
        ",",
        ".",
        "ts",
    )
    assert [r.sensor for r in result.sensors] == ["L3.pressure", "L3.flow"]
    assert _series(store, "L3.pressure").tolist() == [1.5, 2.5, 3.5]
    assert _series(store, "L3.flow").tolist() == [100.0, 101.25]
    assert store.get_sensor("L3.pressure").interval == pd.Timedelta("10min")


def test_the_first_column_is_the_time_when_none_is_named_so(tmp_path):
    path = _write(tmp_path, "when|a|b\n2026-01-01T00:00:00Z|1|2\n2026-01-01T00:01:00Z|3|4\n")
    layout = read_layout(path)
    assert (layout.delimiter, layout.ts_col, layout.columns) == ("|", "when", ("a", "b"))


def test_a_given_time_column_must_exist(tmp_path):
    path = _write(tmp_path, "a|when\n1|2026-01-01T00:00:00Z\n")
    assert read_layout(path, ts_col="when").columns == ("a",)
    with pytest.raises(InputError, match=r"no column 'ts' \(columns: a, when; choose with"):
        read_layout(path, ts_col="ts")


def test_given_delimiter_and_decimal_are_taken_as_given(store, tmp_path):
    # a tab file whose only values look like thousands: not guessed, but given
    text = "ts\ta\tb\n2026-01-01T00:00:00Z\t1,250\t2\n2026-01-01T00:01:00Z\t1,500\t3\n"
    path = _write(tmp_path, text)
    with pytest.raises(InputError, match="cannot tell whether '1,250' has a decimal mark"):
        import_wide(store, path)
    assert store.list_sensors() == []
    import_wide(store, path, delimiter="\t", decimal=",")
    assert _series(store, "a").tolist() == [1.25, 1.5]


THOUSANDS = [
    # (file text, line, column, message): a thousands separator is refused, never misread
    (SEMI.replace("PI 7", "PI-7"), 5, "TI-101", "cannot read '1.234,5' as a number"),
    (
        "ts;a\n2026-01-01T00:00:00Z;0,5\n2026-01-01T00:01:00Z;1.234\n",
        3,
        "a",
        "cannot read '1.234' as a number (the decimal mark is ','",
    ),
    (
        'ts,a\n2026-01-01T00:00:00Z,0.5\n2026-01-01T00:01:00Z,"1,234.5"\n',
        3,
        "a",
        "cannot read '1,234.5' as a number (the decimal mark is '.'",
    ),
]


@pytest.mark.parametrize(("text", "line", "column", "message"), THOUSANDS)
def test_a_thousands_separator_is_a_bad_row_not_a_misread_number(
    store, tmp_path, text, line, column, message
):
    path = _write(tmp_path, text)
    with pytest.raises(ImportProblems) as info:
        import_wide(store, path)
    err = info.value
    assert (err.file, err.line, err.field) == (str(path), line, column)
    assert message in str(err)
    assert store.list_sensors() == []


def test_only_ambiguous_values_in_a_semicolon_file_are_not_guessed(store, tmp_path):
    text = "ts;a\n2026-01-01T00:00:00Z;1.234\n2026-01-01T00:01:00Z;2.500\n"
    with pytest.raises(InputError, match=r"cannot tell whether '1.234'.*--decimal"):
        import_wide(store, _write(tmp_path, text))
    assert store.list_sensors() == []
    # what no thousands separator can be: after a lone 0, after four digits, not three after
    for value, mark in [("0.125", "."), ("1234,567", ","), ("12,5", ","), ("-0,250", ",")]:
        path = _write(
            tmp_path, f"ts;a\n2026-01-01T00:00:00Z;1{mark}234\n2026-01-01T00:01:00Z;{value}\n"
        )
        assert read_layout(path).decimal == mark, value


def test_a_header_that_cannot_name_a_sensor_is_named_in_the_error(store, tmp_path):
    path = _write(tmp_path, SEMI.replace("1.234,5", "4"))
    with pytest.raises(InputError) as info:
        import_wide(store, path)
    err = info.value
    assert (err.line, err.field) == (1, "PI 7")
    assert "column 'PI 7' cannot name a sensor" in str(err)
    with pytest.raises(InputError, match=r"'TI-101' \(as '_TI-101'\).*change --prefix"):
        import_wide(store, path, prefix="_")
    assert store.list_sensors() == []


BAD_ROWS = (
    "ts;a;b\n"
    "2026-01-01T00:00:00Z;1;2\n"  # 2
    "2026-01-01T00:01:00Z;x;3\n"  # 3: a in error
    "2026-01-01T00:02:00Z;4;\n"  # 4: b missing: fine
    "soon;5;6\n"  # 5: bad time
    "2026-01-01T00:04:00Z;7;NaN\n"  # 6: b in error
    "2026-01-01T00:05:00Z;8;9\n"  # 7
)


def test_bad_cells_name_line_and_column_and_nothing_is_stored(store, tmp_path):
    path = _write(tmp_path, BAD_ROWS)
    with pytest.raises(ImportProblems) as info:
        import_wide(store, path, max_problems=2)
    err = info.value
    assert err.total == 3
    assert [(p.line, p.field) for p in err.problems] == [(3, "a"), (5, "ts")]
    assert str(err).startswith(f"{path}: 3 bad row(s), nothing imported; the first 2:")
    assert "line 3, field 'a': cannot read 'x' as a number" in str(err)
    assert store.list_sensors() == []


def test_skip_invalid_imports_the_good_rows(store, tmp_path):
    result = import_wide(store, _write(tmp_path, BAD_ROWS), skip_invalid=True)
    assert [r.sensor for r in result.sensors] == ["a", "b"]
    assert result.sensors[0].invalid_rows == 3
    assert [p.line for p in result.sensors[0].skipped] == [3, 5, 6]
    assert _series(store, "a").tolist() == [1.0, 4.0, 8.0]
    assert _series(store, "b").tolist() == [2.0, 9.0]


def _big(n=3_000, columns=4, seed=1):
    """A regular minute series per column, some cells empty; the frame it should store."""
    rng = np.random.default_rng(seed)
    idx = pd.date_range("2026-03-01", periods=n, freq="1min", tz="UTC")
    values = np.round(rng.normal(50, 5, (n, columns)), 2)
    values[rng.random((n, columns)) < 0.1] = np.nan
    return pd.DataFrame(values, index=idx, columns=[f"tag{j}" for j in range(columns)])


def _to_semi(frame: pd.DataFrame, order=None) -> str:
    body = frame if order is None else frame.iloc[order]
    lines = ["ts;" + ";".join(frame.columns)]
    for t, row in zip(body.index, body.to_numpy(), strict=True):
        cells = ["" if np.isnan(v) else f"{v:.2f}".replace(".", ",") for v in row]
        lines.append(t.strftime("%Y-%m-%dT%H:%M:%SZ") + ";" + ";".join(cells))
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("shuffled", [False, True], ids=["in order", "out of order"])
def test_a_chunked_wide_import_stores_every_cell(store, tmp_path, monkeypatch, shuffled):
    monkeypatch.setattr(core, "CHUNK_ROWS", 1_000)  # 250 rows a chunk: 12 runs per column
    frame = _big()
    order = np.random.default_rng(2).permutation(len(frame)) if shuffled else None
    result = import_wide(store, _write(tmp_path, _to_semi(frame, order)))
    assert result.layout.decimal == ","
    for col in frame.columns:
        want = frame[col].dropna()
        got = _series(store, col)
        assert got.index.equals(want.index)
        np.testing.assert_array_equal(got.to_numpy(), want.to_numpy())
        assert store.get_sensor(col).interval == pd.Timedelta("1min")
    assert sum(r.rows for r in result.sensors) == int(frame.notna().sum().sum())


@pytest.mark.parametrize("shuffled", [False, True], ids=["in order", "out of order"])
def test_a_late_error_leaves_no_reading_and_no_sensor(store, tmp_path, monkeypatch, shuffled):
    """Chunks before the bad row were written and (PostgreSQL) the sensors made in short
    transactions of their own: the failure takes all of them back."""
    monkeypatch.setattr(core, "CHUNK_ROWS", 1_000)
    frame = _big()
    order = np.random.default_rng(2).permutation(len(frame)) if shuffled else None
    text = _to_semi(frame, order).rstrip("\n") + "\n2026-04-01T00:00:00Z;1;2;oops;4\n"
    with pytest.raises(ImportProblems, match=r":3002, field 'tag2': cannot read 'oops'"):
        import_wide(store, _write(tmp_path, text))
    assert store.list_sensors() == []


def test_a_repeated_time_with_another_value_names_its_column(store, tmp_path):
    text = "ts,a,b\n2026-01-01T00:00:00Z,1,2\n2026-01-01T00:01:00Z,3,4\n2026-01-01T00:00:00Z,1,5\n"
    with pytest.raises(ImportProblems, match="appears twice with different values in column 'b'"):
        import_wide(store, _write(tmp_path, text))
    assert store.list_sensors() == []


def test_a_simulated_sensor_is_not_written_and_nothing_else_is(store, tmp_path):
    from plantcast.ingest.backfill import backfill

    backfill(store, "b", days=1, interval=pd.Timedelta("30min"), end="2026-01-02")
    text = "ts,a,b\n2026-01-01T00:00:00Z,1,2\n"
    with pytest.raises(Refused, match="sensor 'b' holds simulated data"):
        import_wide(store, _write(tmp_path, text))
    assert [s.name for s in store.list_sensors()] == ["b"]


def test_asset_made_then_extended_and_not_made_when_the_import_fails(store, tmp_path):
    first = _write(tmp_path, "ts,a,b\n2026-01-01T00:00:00Z,1,2\n2026-01-01T00:01:00Z,3,4\n")
    _, asset = import_wide_file(store, first, asset="pump1")
    assert asset.sensor_names == ("a", "b")
    again, asset = import_wide_file(store, first, asset="pump1")  # nothing new: unchanged
    assert asset.sensor_names == ("a", "b") and again.sensors[0].rows == 2
    more = _write(tmp_path, "ts,b,c\n2026-01-02T00:00:00Z,5,6\n", "more.csv")
    _, asset = import_wide_file(store, more, asset="pump1")
    assert asset.sensor_names == ("a", "b", "c")
    bad = _write(tmp_path, "ts,d,e\n2026-01-03T00:00:00Z,1,2\n2026-01-03T00:01:00Z,x,3\n", "b.csv")
    with pytest.raises(ImportProblems):
        import_wide_file(store, bad, asset="pump2")
    with pytest.raises(NotFound):
        store.get_asset("pump2")
    with pytest.raises(ImportProblems):
        import_wide_file(store, bad, asset="pump1")
    assert store.get_asset("pump1").sensor_names == ("a", "b", "c")
    assert sorted(s.name for s in store.list_sensors()) == ["a", "b", "c"]
    with pytest.raises(InputError, match="not a valid asset name"):
        import_wide_file(store, first, asset="pump 3")


def _cli(url, *args):
    env = {**os.environ, "PLANTCAST_DATABASE_URL": url}
    return subprocess.run(
        [sys.executable, "-m", "plantcast", "import", *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
    )


def test_cli_imports_a_wide_file_into_an_asset(db_url, tmp_path):
    path = _good_semi(tmp_path)
    done = _cli(db_url, path, "--wide", "--prefix", "L3.", "--asset", "line3")
    assert done.returncode == 0, done.stderr
    assert "L3.TI-101: imported 4 readings" in done.stdout
    assert "L3.PI-7: imported 2 readings" in done.stdout
    assert "separated by ';', decimal mark ','" in done.stdout
    assert "left out text column(s): Status" in done.stdout
    assert "asset line3: L3.TI-101, L3.PI-7" in done.stdout
    refused = _cli(db_url, _write(tmp_path, BAD_ROWS, "bad.csv"), "--wide", "--asset", "x")
    assert refused.returncode == 1
    assert "line 3, field 'a': cannot read 'x' as a number" in refused.stderr
    assert _cli(db_url, path, "--wide", "--sensor", "s").returncode == 2
    assert _cli(db_url, path, "--sensor", "s", "--prefix", "p").returncode == 2
    assert _cli(db_url, path, "--wide", "--value-col", "v").returncode == 2


def test_cli_long_import_takes_a_delimiter_and_decimal(sqlite_url, tmp_path):
    path = _write(tmp_path, "ts;value\n2026-01-01T00:00:00Z;1,5\n2026-01-01T00:01:00Z;2,5\n")
    done = _cli(sqlite_url, path, "--sensor", "s", "--delimiter", ";", "--decimal", ",")
    assert done.returncode == 0, done.stderr
    assert "s: imported 2 readings" in done.stdout


def test_a_historian_time_format_is_read_with_ts_format(store, db_url, tmp_path):
    """dd.mm.yyyy times (a German historian's export) are refused as ISO 8601 with a hint,
    and read with --ts-format."""
    path = tmp_path / "de.csv"
    path.write_text(
        "Zeitstempel;flow\n01.12.2026 00:00;1,5\n01.12.2026 00:01;1,6\n01.12.2026 00:02;1,7\n"
    )
    refused = _cli(db_url, path, "--wide", "--tz", "UTC")
    assert refused.returncode != 0 and "--ts-format" in refused.stdout + refused.stderr
    done = _cli(db_url, path, "--wide", "--tz", "UTC", "--ts-format", "%d.%m.%Y %H:%M")
    assert done.returncode == 0, done.stderr
    sid = store.get_sensor("flow").id
    values = store.read_series(sid, "2026-12-01", "2026-12-02")
    assert values.index[0] == pd.Timestamp("2026-12-01 00:00", tz="UTC")
    assert values.tolist() == [1.5, 1.6, 1.7]
