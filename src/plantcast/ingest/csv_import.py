"""CSV import: validate the whole file, then write it in one transaction — or write nothing.

Errors name the file, the line (1 is the header) and the field. Memory does not grow with the
file: pass 1 parses and checks it in chunks, each saved to a temporary file as a run sorted by
time; pass 2 merges the runs to find repeated timestamps; pass 3 merges them again into the
database, in chunks of one transaction.
"""

from __future__ import annotations

import os
import re
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from plantcast.core.errors import InputError, NotFound, Refused
from plantcast.core.timeutil import from_epoch_us
from plantcast.core.types import Source
from plantcast.store import Store
from plantcast.store.partitions import ensure_partitions
from plantcast.store.readings import write_readings

CHUNK_ROWS = 100_000  # rows parsed at a time (pass 1); each chunk becomes one sorted run
MERGE_ROWS = 200_000  # records held across all runs while merging them
WRITE_ROWS = 50_000  # rows per write_readings call
STEP_SAMPLE = 1 << 20  # steps kept to compute the median interval
_RUN_DTYPE = np.dtype([("ts", "<i8"), ("v", "<f8"), ("line", "<i8")])
# A zone follows a time of day: "…T10:00Z", "… 10:00:00.5+02:00" (a bare date has none).
_HAS_ZONE = re.compile(r"\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?\s*(?:Z|UTC|[+-]\d{2}(?::?\d{2})?)$", re.I)


@dataclass(frozen=True)
class ImportResult:
    sensor: str
    rows: int
    duplicates_dropped: int
    start: pd.Timestamp
    end: pd.Timestamp
    seconds: float


@dataclass(frozen=True)
class CsvSpec:
    path: Path
    ts_col: str = "ts"
    value_col: str = "value"
    tz: str | None = None


def import_csv(
    store: Store,
    spec: CsvSpec,
    sensor: str,
    *,
    unit: str = "",
    interval: pd.Timedelta | None = None,
    on_progress: Callable[[str, int, int], None] | None = None,
) -> ImportResult:
    """Import ``spec.path`` into ``sensor`` (created as ``imported`` if missing)."""
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="plantcast-import-") as tmpdir:
        runs = write_sorted_runs(spec, Path(tmpdir), on_progress)
        check = _check_runs(spec, runs)
        existing = _existing_source(store, sensor)
        if existing is not None and existing is not Source.IMPORTED:
            raise Refused(
                f"sensor {sensor!r} holds {existing.value} data; import into a new sensor name"
            )
        if interval is None:
            interval = pd.Timedelta(check.median_step_us, "us")
        s = store.ensure_sensor(sensor, source=Source.IMPORTED, interval=interval, unit=unit)
        first, last = from_epoch_us([check.first_us, check.last_us])
        with store.write() as conn:
            # PostgreSQL: the months the file spans get their partitions in a short transaction
            # of their own, so the long one below holds no lock other writers would wait on
            ensure_partitions(conn, first, last)
        done = 0
        with store.write() as conn:  # one transaction: all rows or none
            for ts_us, values in _unique_blocks(spec, runs, check_conflicts=False):
                for lo in range(0, len(ts_us), WRITE_ROWS):
                    index = from_epoch_us(ts_us[lo : lo + WRITE_ROWS]).rename("ts")
                    write_readings(conn, s.id, pd.Series(values[lo : lo + WRITE_ROWS], index))
                done += len(ts_us)
                if on_progress:
                    on_progress("write", done, check.rows)
    return ImportResult(sensor, check.rows, check.dropped, first, last, time.perf_counter() - t0)


def _existing_source(store: Store, sensor: str) -> Source | None:
    try:
        return store.get_sensor(sensor).source
    except NotFound:
        return None


def _parsed_chunks(
    spec: CsvSpec, on_progress: Callable[[str, int, int], None] | None = None
) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
    """Yield (first line, epoch µs, values) per chunk of checked rows, or raise InputError."""
    path = str(spec.path)
    if not spec.path.is_file():
        raise InputError("no such file", file=path)
    size = os.path.getsize(spec.path)
    if size == 0:
        raise InputError("the file is empty", file=path)
    rows = 0
    try:
        reader = pd.read_csv(
            spec.path, dtype=str, keep_default_na=False, chunksize=CHUNK_ROWS, skipinitialspace=True
        )
        first_line = 2
        with reader:
            for chunk in reader:
                _check_columns(spec, chunk.columns)
                ts_us = _parse_ts(spec, chunk[spec.ts_col].to_numpy(), first_line)
                values = _parse_values(spec, chunk[spec.value_col].to_numpy(), first_line)
                del chunk
                if len(ts_us):
                    yield first_line, ts_us, values
                first_line += len(ts_us)
                rows += len(ts_us)
                if on_progress:
                    on_progress("check", min(reader.handles.handle.tell(), size), size)
    except pd.errors.EmptyDataError:
        raise InputError("the file is empty (no header line)", file=path) from None
    except pd.errors.ParserError as exc:
        raise InputError(f"malformed CSV: {str(exc).strip()}", file=path) from None
    except UnicodeDecodeError as exc:
        raise InputError(f"not UTF-8 text ({exc.reason})", file=path) from None
    if rows == 0:
        raise InputError("the file has a header but no data rows", file=path)


def write_sorted_runs(
    spec: CsvSpec, tmpdir: Path, on_progress: Callable[[str, int, int], None] | None = None
) -> list[_Run]:
    """Pass 1: check every row, chunk by chunk; each chunk becomes a run on disk, sorted by
    (time, line). Memory holds one chunk, whatever the file's length."""
    runs: list[_Run] = []
    for first_line, ts_us, values in _parsed_chunks(spec, on_progress):
        lines = np.arange(first_line, first_line + len(ts_us), dtype=np.int64)
        order = np.argsort(ts_us, kind="stable")  # stable: equal times stay in line order
        rec = np.empty(len(ts_us), dtype=_RUN_DTYPE)
        rec["ts"], rec["v"], rec["line"] = ts_us[order], values[order], lines[order]
        run = _Run(tmpdir / f"run-{len(runs):05d}.bin", len(rec))
        rec.tofile(run.path)
        runs.append(run)
    return runs


def _check_columns(spec: CsvSpec, columns) -> None:
    for col, option in ((spec.ts_col, "--ts-col"), (spec.value_col, "--value-col")):
        if col not in columns:
            raise InputError(
                f"no column {col!r} (columns: {', '.join(map(str, columns))}; "
                f"choose with {option})",
                file=str(spec.path),
                line=1,
                field=col,
            )


def _stripped(raw: np.ndarray) -> np.ndarray:
    # Plain Python, not the .str accessor: pandas 2.3's string methods, with to_datetime, keep
    # ~140 bytes a row alive across chunks (measured: RSS grew with the file).
    return np.array([v.strip() if isinstance(v, str) else "" for v in raw], dtype=object)


def _parse_ts(spec: CsvSpec, raw: np.ndarray, first_line: int) -> np.ndarray:
    text = _stripped(raw)
    has_zone = np.fromiter((_HAS_ZONE.search(v) is not None for v in text), bool, len(text))
    out = pd.Series(pd.NaT, index=range(len(text)), dtype="datetime64[ns, UTC]")
    if has_zone.any():
        out[has_zone] = pd.to_datetime(text[has_zone], format="ISO8601", utc=True, errors="coerce")
    naive = ~has_zone & (text != "")
    if naive.any():
        local = pd.Series(pd.to_datetime(text[naive], format="ISO8601", errors="coerce"))
        parsed = local.notna().to_numpy()
        if spec.tz is None and parsed.any():
            i = int(np.flatnonzero(naive)[np.flatnonzero(parsed)[0]])
            raise InputError(
                f"timestamp {text[i]!r} has no time zone; add one or pass --tz",
                file=str(spec.path),
                line=first_line + i,
                field=spec.ts_col,
            )
        if spec.tz is not None:
            try:
                local = local.dt.tz_localize(spec.tz, ambiguous="NaT", nonexistent="NaT")
            except Exception:
                raise InputError(f"unknown time zone {spec.tz!r}", field="--tz") from None
            out[naive] = local.dt.tz_convert("UTC").to_numpy()
    bad = np.flatnonzero(out.isna().to_numpy())
    if len(bad):
        i = int(bad[0])
        what = "missing timestamp" if text[i] == "" else f"cannot read {text[i]!r} as a time"
        raise InputError(what, file=str(spec.path), line=first_line + i, field=spec.ts_col)
    return pd.DatetimeIndex(out).as_unit("us").asi8.astype(np.int64)


def _parse_values(spec: CsvSpec, raw: np.ndarray, first_line: int) -> np.ndarray:
    text = _stripped(raw)
    values = np.asarray(pd.to_numeric(text, errors="coerce"), dtype=np.float64)
    bad = np.flatnonzero(~np.isfinite(values))
    if len(bad):
        i = int(bad[0])
        raw_i = text[i]
        if raw_i == "":
            what = "missing value"
        elif raw_i.lower().lstrip("+-") in {"nan", "inf", "infinity"}:
            what = f"{raw_i!r} is not a finite number (NaN and infinity are refused)"
        else:
            what = f"cannot read {raw_i!r} as a number"
        raise InputError(what, file=str(spec.path), line=first_line + i, field=spec.value_col)
    return values


@dataclass
class _Run:
    path: Path
    rows: int
    done: int = 0  # rows read from the file so far

    def read(self, count: int) -> np.ndarray:
        block = np.fromfile(
            self.path, dtype=_RUN_DTYPE, count=count, offset=self.done * _RUN_DTYPE.itemsize
        )
        self.done += len(block)
        return block


@dataclass
class _Checked:
    rows: int  # after exact duplicates are dropped
    dropped: int
    first_us: int
    last_us: int
    median_step_us: int


def _merged(runs: list[_Run]) -> Iterator[np.ndarray]:
    """The records of all runs in (time, line) order, as blocks; memory ~ MERGE_ROWS records.

    Each round holds a block of every run and emits what no unread record can precede: the
    records up to the smallest last time among the blocks of runs that have more on disk."""
    for run in runs:
        run.done = 0
    per_run = max(MERGE_ROWS // max(len(runs), 1), 1024)
    buffers = [run.read(per_run) for run in runs]
    while any(len(b) for b in buffers):
        pending = [b[-1]["ts"] for b, r in zip(buffers, runs, strict=True) if r.done < r.rows]
        cutoff = min(pending) if pending else None
        out = []
        for i, (buf, run) in enumerate(zip(buffers, runs, strict=True)):
            n = len(buf) if cutoff is None else int(np.searchsorted(buf["ts"], cutoff, "right"))
            if n:
                out.append(buf[:n])
                rest = buf[n:]
                if len(rest) == 0 and run.done < run.rows:
                    rest = run.read(per_run)
                buffers[i] = rest
        block = np.concatenate(out)
        yield block[np.lexsort((block["line"], block["ts"]))]


def _unique_blocks(
    spec: CsvSpec, runs: list[_Run], *, check_conflicts: bool = True
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Sorted (epoch µs, values) blocks without exact repeats; one time with two different
    values is an InputError naming both lines."""
    prev = None  # the last record of the previous block
    for block in _merged(runs):
        ts, val = block["ts"], block["v"]
        if prev is not None:
            ts = np.concatenate(([prev["ts"]], ts))
            val = np.concatenate(([prev["v"]], val))
            block = np.concatenate((prev.reshape(1), block))
        same = np.flatnonzero(ts[1:] == ts[:-1])
        if check_conflicts:
            conflict = same[val[same] != val[same + 1]]
            if len(conflict):
                _raise_conflict(spec, block[int(conflict[0])], block[int(conflict[0]) + 1])
        keep = np.ones(len(ts), dtype=bool)
        keep[same + 1] = False
        if prev is not None:
            keep[0] = False  # already yielded with the previous block
        prev = block[-1].copy()  # its time was yielded (by it or an equal record)
        yield ts[keep], val[keep]


def _raise_conflict(spec: CsvSpec, a, b) -> None:
    lines = sorted((int(a["line"]), int(b["line"])))
    when = from_epoch_us([int(a["ts"])])[0].isoformat()
    raise InputError(
        f"timestamp {when} appears twice with different values "
        f"({float(a['v'])!r} and {float(b['v'])!r}; also on line {lines[0]})",
        file=str(spec.path),
        line=lines[1],
        field=spec.ts_col,
    )


def _check_runs(spec: CsvSpec, runs: list[_Run]) -> _Checked:
    """Pass 2: duplicates across the whole file, counts, first and last time and the median
    step (exact up to ``STEP_SAMPLE`` steps, else over an evenly spaced sample of them)."""
    total = sum(r.rows for r in runs)
    rows, first, last, stride = 0, None, None, 1
    sample: list[np.ndarray] = []
    sampled, seen = 0, 0  # steps kept in the sample, steps seen
    for ts, _ in _unique_blocks(spec, runs):
        if not len(ts):
            continue
        steps = np.diff(ts) if last is None else np.diff(np.concatenate(([last], ts)))
        first = int(ts[0]) if first is None else first
        last = int(ts[-1])
        rows += len(ts)
        # keep every stride-th step (by position in the whole sequence), halve when full
        offset = (-seen) % stride
        kept = steps[offset::stride]
        seen += len(steps)
        sample.append(kept)
        sampled += len(kept)
        while sampled > STEP_SAMPLE:
            merged = np.concatenate(sample)[::2]
            stride *= 2
            sample, sampled = [merged], len(merged)
    steps = np.concatenate(sample) if sample else np.empty(0, np.int64)
    median = int(np.median(steps)) if len(steps) else 60_000_000
    return _Checked(rows, total - rows, first, last, median)  # type: ignore[arg-type]  # pass 1 refused a file without data rows
