"""The streamed import: errors found late in a big file still write nothing and name file, line
and field; a file cut into many sorted runs imports exactly what an in-memory import would."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import plantcast.ingest.csv_import as mod
import plantcast.ingest.csv_runs as csv_runs
from plantcast.core.errors import InputError
from plantcast.ingest.csv_import import CsvSpec, import_csv

GOOD = "ts,value\n2026-01-01T00:00:00Z,1.5\n2026-01-01T00:30:00Z,2.5\n"


def _snapshot(store):
    return {
        s.name: store.read_series(s.id, "1970-01-01", "2100-01-01").to_dict()
        for s in store.list_sensors()
    }


@pytest.fixture
def small_chunks(monkeypatch):
    """Many runs and small merge blocks, so a few thousand rows exercise every boundary."""
    monkeypatch.setattr(mod, "CHUNK_ROWS", 997)
    monkeypatch.setattr(csv_runs, "MERGE_ROWS", 3000)
    monkeypatch.setattr(mod, "WRITE_ROWS", 1234)


@pytest.fixture
def seeded(store, tmp_path):
    path = tmp_path / "good.csv"
    path.write_text(GOOD)
    import_csv(store, CsvSpec(path), "flow")
    return store


def _lines(n: int, start="2026-02-01", freq="1min") -> list[str]:
    idx = pd.date_range(start, periods=n, freq=freq, tz="UTC")
    return [f"{t.isoformat()},{i % 977}.25" for i, t in enumerate(idx)]


def test_a_conflicting_duplicate_200k_rows_apart_writes_nothing(seeded, tmp_path, monkeypatch):
    monkeypatch.setattr(mod, "CHUNK_ROWS", 50_000)  # five runs; the pair sits in the first and last
    lines = _lines(210_000)
    first_ts = lines[3].split(",")[0]
    lines[200_003] = f"{first_ts},12345.5"  # line 200,005 repeats line 5's time, another value
    path = tmp_path / "big.csv"
    path.write_text("ts,value\n" + "\n".join(lines) + "\n")
    before = _snapshot(seeded)
    with pytest.raises(InputError) as info:
        import_csv(seeded, CsvSpec(path), "flow")
    err = info.value
    assert (err.file, err.line, err.field) == (str(path), 200_005, "ts")
    assert "appears twice with different values" in str(err)
    assert "also on line 5" in str(err)
    assert f"{path}:200005" in str(err)
    assert _snapshot(seeded) == before


def test_a_bad_value_on_the_last_line_writes_nothing(seeded, tmp_path, small_chunks):
    lines = _lines(20_000)
    lines[-1] = lines[-1].split(",")[0] + ",12..5"
    path = tmp_path / "big.csv"
    path.write_text("ts,value\n" + "\n".join(lines) + "\n")
    before = _snapshot(seeded)
    with pytest.raises(InputError) as info:
        import_csv(seeded, CsvSpec(path), "flow")
    assert (info.value.line, info.value.field) == (20_001, "value")
    assert f"{path}:20001, field 'value': cannot read '12..5' as a number" in str(info.value)
    assert _snapshot(seeded) == before


def test_a_bad_time_on_the_last_line_writes_nothing(seeded, tmp_path, small_chunks):
    lines = [*_lines(5_000), "2026-13-01T00:00:00Z,1"]
    path = tmp_path / "big.csv"
    path.write_text("ts,value\n" + "\n".join(lines) + "\n")
    before = _snapshot(seeded)
    with pytest.raises(InputError, match=r"big.csv:5002, field 'ts': cannot read"):
        import_csv(seeded, CsvSpec(path), "flow")
    assert _snapshot(seeded) == before


def _shuffled_file_with_repeats(tmp_path, n=6_000, seed=3):
    """Irregular times in random order, exact repeats scattered across the whole file."""
    rng = np.random.default_rng(seed)
    steps = rng.choice([60, 60, 60, 120, 30], size=n)
    ts = pd.Timestamp("2026-03-01", tz="UTC") + pd.to_timedelta(np.cumsum(steps), "s")
    values = np.round(rng.normal(100, 5, n), 6)
    repeat = rng.choice(n, size=n // 10, replace=False)
    all_ts = np.concatenate([ts, ts[repeat]])
    all_values = np.concatenate([values, values[repeat]])
    order = rng.permutation(len(all_ts))
    frame = pd.DataFrame({"ts": pd.DatetimeIndex(all_ts)[order], "value": all_values[order]})
    path = tmp_path / "shuffled.csv"
    frame.to_csv(path, index=False, date_format="%Y-%m-%dT%H:%M:%SZ", float_format="%.6f")
    expected = pd.Series(values, index=ts)
    return path, expected, len(repeat)


def test_a_chunked_import_equals_the_in_memory_result(store, tmp_path, monkeypatch):
    path, expected, repeats = _shuffled_file_with_repeats(tmp_path)
    one_run = import_csv(store, CsvSpec(path), "whole")  # default sizes: one run, one block
    monkeypatch.setattr(mod, "CHUNK_ROWS", 997)
    monkeypatch.setattr(csv_runs, "MERGE_ROWS", 3000)
    monkeypatch.setattr(mod, "WRITE_ROWS", 1234)
    monkeypatch.setattr(csv_runs, "STEP_SAMPLE", 500)  # the median step from a sample, still exact
    chunked = import_csv(store, CsvSpec(path), "chunked")
    for r in (one_run, chunked):
        assert (r.rows, r.duplicates_dropped) == (len(expected), repeats)
        assert (r.start, r.end) == (expected.index[0], expected.index[-1])
    whole, parts = store.get_sensor("whole"), store.get_sensor("chunked")
    assert whole.interval == parts.interval == pd.Timedelta("60s")
    got_whole = store.read_series(whole.id, "2026-01-01", "2027-01-01")
    got_parts = store.read_series(parts.id, "2026-01-01", "2027-01-01")
    pd.testing.assert_series_equal(got_parts, got_whole)
    assert got_parts.index.equals(expected.index)
    np.testing.assert_array_equal(got_parts.to_numpy(), expected.to_numpy())


def test_merged_runs_are_in_time_then_line_order(tmp_path, monkeypatch):
    rng = np.random.default_rng(7)
    ts = rng.integers(0, 500, size=4_000)  # many ties, across runs and blocks
    lines = np.arange(2, len(ts) + 2)
    runs = []
    for k, lo in enumerate(range(0, len(ts), 333)):
        t, ln = ts[lo : lo + 333], lines[lo : lo + 333]
        order = np.argsort(t, kind="stable")
        rec = np.empty(len(t), dtype=csv_runs.RUN_DTYPE)
        rec["ts"], rec["v"], rec["line"] = t[order], 0.0, ln[order]
        run = csv_runs.Run(tmp_path / f"r{k}", len(rec))
        rec.tofile(run.path)
        runs.append(run)
    monkeypatch.setattr(csv_runs, "MERGE_ROWS", 2048)  # 1024 a run at least: blocks end mid-tie
    got = np.concatenate(list(csv_runs.merged(runs)))
    assert len(got) == len(ts)
    assert np.all(np.diff(got["ts"]) >= 0)
    assert sorted(got["line"].tolist()) == lines.tolist()


def test_the_file_is_parsed_in_chunks_of_chunk_rows_with_their_lines(tmp_path):
    """Memory holds one chunk: the parser yields CHUNK_ROWS rows at a time, lines numbered on."""
    from plantcast.ingest.csv_parse import parsed_chunks

    path = tmp_path / "f.csv"
    path.write_text("ts,value\n" + "\n".join(_lines(4_500)) + "\n")
    chunks = list(parsed_chunks(CsvSpec(path), 1000))
    assert [len(c.ts_us) for c in chunks] == [1000, 1000, 1000, 1000, 500]
    lines = np.concatenate([c.lines for c in chunks])
    np.testing.assert_array_equal(lines, np.arange(2, 4_502))


def test_a_sorted_file_with_repeats_across_chunks_imports_in_one_pass(
    store, tmp_path, small_chunks
):
    """Exact repeats straddling chunk boundaries are dropped once; nothing else changes."""
    lines = _lines(5_000)
    repeated = [lines[i] for i in (996, 1992, 2988)]
    for k, line in enumerate(repeated):  # each the first row of a chunk (997 rows), its twin
        lines.insert(997 * (k + 1), line)  # the last row of the chunk before
    path = tmp_path / "sorted.csv"
    path.write_text("ts,value\n" + "\n".join(lines) + "\n")
    r = import_csv(store, CsvSpec(path), "flow")
    assert (r.rows, r.duplicates_dropped, r.invalid_rows) == (5_000, 3, 0)
    s = store.get_sensor("flow")
    assert s.interval == pd.Timedelta("1min")
    got = store.read_series(s.id, "2026-01-01", "2027-01-01")
    expected = pd.Series([i % 977 + 0.25 for i in range(5_000)], dtype=float)
    np.testing.assert_array_equal(got.to_numpy(), expected.to_numpy())
