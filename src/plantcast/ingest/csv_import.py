"""CSV import: check the whole file and write it in one transaction — or write nothing.

Errors name the file, the line (1 is the header) and the field; the first ``max_problems`` bad
rows are reported together, and ``skip_invalid`` imports the good rows and lists the others.
Memory does not grow with the file. One pass parses it in chunks (``csv_parse``), keeps each as
a run sorted by time in a temporary file and, while the file is in time order (the usual case),
writes the chunk at once: a sorted file is read once. Rows out of order make the import fall
back on the runs: the open transaction is rolled back, pass 2 merges the runs to find repeated
timestamps and pass 3 merges them again into the database, in one transaction.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from plantcast.core.errors import InputError, NotFound, Refused
from plantcast.core.timeutil import from_epoch_us
from plantcast.core.types import Sensor, Source
from plantcast.ingest.csv_parse import Chunk, CsvSpec, Problem, parsed_chunks, peek_span
from plantcast.store import Store, Transaction

__all__ = ["CsvSpec", "ImportProblems", "ImportResult", "Problem", "import_csv"]

CHUNK_ROWS = 100_000  # rows parsed at a time; each chunk becomes one sorted run
MERGE_ROWS = 200_000  # records held across all runs while merging them
WRITE_ROWS = 50_000  # rows per write call
STEP_SAMPLE = 1 << 20  # steps kept to compute the median interval
MAX_PROBLEMS = 20  # bad rows reported (all are counted)
_RUN_DTYPE = np.dtype([("ts", "<i8"), ("v", "<f8"), ("line", "<i8")])


@dataclass(frozen=True)
class ImportResult:
    sensor: str
    rows: int
    duplicates_dropped: int
    start: pd.Timestamp
    end: pd.Timestamp
    seconds: float
    invalid_rows: int = 0  # left out by skip_invalid
    skipped: tuple[Problem, ...] = ()  # the first of them, with line and why


class ImportProblems(InputError):
    """Bad rows: the error's line and field are the first one's; ``problems`` lists the first
    ``max_problems`` of them in line order and ``total`` counts them all."""

    def __init__(self, file: str, problems: list[Problem], total: int, note: str = "") -> None:
        first = problems[0]
        super().__init__(first.message, file=file, line=first.line, field=first.field)
        self.problems, self.total, self.note = list(problems), total, note

    def __str__(self) -> str:
        if self.total == 1 and not self.note:
            return super().__str__()
        shown = "" if len(self.problems) == self.total else f"; the first {len(self.problems)}"
        head = f"{self.file}: {self.total:,} bad row(s){self.note}, nothing imported{shown}:"
        return "\n".join([head, *(f"  {p}" for p in self.problems)])


@dataclass
class _Tally:
    """Problems found so far: the first ``limit`` by line, and how many in all."""

    limit: int
    problems: list[Problem] = field(default_factory=list)
    total: int = 0

    def add(self, problems: list[Problem], count: int | None = None) -> None:
        self.total += len(problems) if count is None else count
        self.problems = sorted(self.problems + problems)[: self.limit]

    def merged(self, other: _Tally) -> _Tally:
        both = _Tally(self.limit, [], self.total + other.total)
        both.problems = sorted(self.problems + other.problems)[: self.limit]
        return both


class _Unsorted(Exception):
    """Raised to roll back the one-pass write when the file is not in time order."""


def import_csv(
    store: Store,
    spec: CsvSpec,
    sensor: str,
    *,
    unit: str = "",
    interval: pd.Timedelta | None = None,
    on_progress: Callable[[str, int, int], None] | None = None,
    skip_invalid: bool = False,
    max_problems: int = MAX_PROBLEMS,
) -> ImportResult:
    """Import ``spec.path`` into ``sensor`` (created as ``imported`` if missing).

    Any bad row raises ImportProblems (an InputError) and writes nothing, unless
    ``skip_invalid``: then the good rows are written and the result lists the bad ones."""
    t0 = time.perf_counter()
    existing = _existing_source(store, sensor)
    if existing is not None and existing is not Source.IMPORTED:
        raise Refused(
            f"sensor {sensor!r} holds {existing.value} data; import into a new sensor name"
        )
    limit = max(int(max_problems), 1)
    with tempfile.TemporaryDirectory(prefix="plantcast-import-") as tmpdir:
        one = _OnePass(store, spec, sensor, unit, skip_invalid, limit, Path(tmpdir))
        try:
            check, tally = _import(store, spec, one, existing, interval, on_progress)
        except BaseException:
            one.drop_made_sensor()
            raise
    first, last = from_epoch_us([check.first_us, check.last_us])
    with store.transaction() as tx:  # fresh statistics: the reads that follow use the index
        tx.analyze_span(first, last)
    return ImportResult(
        sensor,
        check.rows,
        check.dropped,
        first,
        last,
        time.perf_counter() - t0,
        tally.total,
        tuple(tally.problems),
    )


def _import(store, spec, one, existing, interval, on_progress) -> tuple[_Checked, _Tally]:
    """The one pass, or on a file out of order the runs' passes 2 and 3."""
    skip_invalid, limit = one.skip_invalid, one.parse.limit
    try:
        with store.transaction() as tx:  # one transaction: all rows or none
            one.tx = tx
            one.run(on_progress)
            if not one.sorted:
                raise _Unsorted  # roll back what was written, go on from the runs
            check, tally = one.checked(), one.problems()
            _refuse_problems(spec, tally, skip_invalid, check.rows)
            if existing is None:
                step = interval or pd.Timedelta(check.median_step_us, "us")
                tx.set_interval(one.sensor.id, step)
    except _Unsorted:
        conflicts = _Tally(limit)
        check = _check_runs(spec, one.runs, conflicts)
        tally = one.parse.merged(conflicts)
        _refuse_problems(spec, tally, skip_invalid, check.rows)
        new = existing is None
        _write_runs(store, spec, one.runs, check, one.name, one.unit, interval, new, on_progress)
    return check, tally


def _refuse_problems(spec: CsvSpec, tally: _Tally, skip_invalid: bool, rows: int) -> None:
    path = str(spec.path)
    if tally.total and (not skip_invalid or rows == 0):
        note = "" if rows or not skip_invalid else " and no valid row"
        raise ImportProblems(path, tally.problems, tally.total, note)
    if rows == 0:
        raise InputError("the file has a header but no data rows", file=path)


def _existing_source(store: Store, sensor: str) -> Source | None:
    try:
        return store.get_sensor(sensor).source
    except NotFound:
        return None


class _Steps:
    """The median step of a sorted, repeat-free stream of times: exact up to ``STEP_SAMPLE``
    steps, else over an evenly spaced sample of them."""

    def __init__(self) -> None:
        self.last: int | None = None
        self.first: int | None = None
        self.rows = 0
        self.stride, self.sampled, self.seen = 1, 0, 0
        self.sample: list[np.ndarray] = []

    def add(self, ts: np.ndarray) -> None:
        if not len(ts):
            return
        steps = np.diff(ts) if self.last is None else np.diff(np.concatenate(([self.last], ts)))
        self.first = int(ts[0]) if self.first is None else self.first
        self.last = int(ts[-1])
        self.rows += len(ts)
        offset = (-self.seen) % self.stride  # every stride-th step of the whole sequence
        kept = steps[offset :: self.stride]
        self.seen += len(steps)
        self.sample.append(kept)
        self.sampled += len(kept)
        while self.sampled > STEP_SAMPLE:  # halve when full
            merged = np.concatenate(self.sample)[::2]
            self.stride *= 2
            self.sample, self.sampled = [merged], len(merged)

    def median(self) -> int:
        steps = np.concatenate(self.sample) if self.sample else np.empty(0, np.int64)
        return int(np.median(steps)) if len(steps) else 60_000_000


class _OnePass:
    """Pass 1: parse, keep runs on disk, and write while the file stays in time order."""

    def __init__(self, store, spec, sensor, unit, skip_invalid, limit, tmpdir) -> None:
        self.store, self.spec, self.name, self.unit = store, spec, sensor, unit
        self.skip_invalid, self.tmpdir = skip_invalid, tmpdir
        self.parse, self.conflicts = _Tally(limit), _Tally(limit)  # bad rows, repeats
        self.tx: Transaction | None = None
        self.sensor: Sensor | None = None
        self.made = False  # created the sensor in a transaction of its own
        self.runs: list[_Run] = []
        self.sorted = True
        self.steps = _Steps()
        self.total = 0  # good rows parsed
        self.prev: tuple[int, float, int] | None = None  # the last time's first (ts, value, line)

    def run(self, on_progress) -> None:
        def progress(done: int, total: int) -> None:
            if on_progress is not None:  # "write" while the rows are written as they come
                on_progress("write" if self.sorted else "check", done, total)

        limit = self.parse.limit
        span = peek_span(self.spec)
        if span is not None and self.store.dialect == "postgresql":
            # The months of a file in time order get their partitions in a short transaction
            # of their own (before this one holds any lock: creating a partition locks
            # sensors), so the long one creates none that other writers would wait on.
            with self.store.transaction() as tx:
                tx.ensure_partitions(*from_epoch_us(list(span)))
        for chunk in parsed_chunks(self.spec, CHUNK_ROWS, progress=progress, max_problems=limit):
            self.parse.add(chunk.problems, chunk.bad_rows)
            if not len(chunk.ts_us):
                continue
            self.total += len(chunk.ts_us)
            ts = chunk.ts_us
            in_order = bool(np.all(ts[1:] >= ts[:-1])) and (
                self.prev is None or ts[0] >= self.prev[0]
            )
            self._keep_run(chunk, in_order)
            self.sorted = self.sorted and in_order
            if self.sorted:
                self._write(*self._unique(chunk))

    def drop_made_sensor(self) -> None:
        if self.made and self.sensor is not None:
            with self.store.transaction() as tx:
                tx.drop_sensor_if_empty(self.sensor.id)

    def problems(self) -> _Tally:
        return self.parse.merged(self.conflicts) if self.sorted else self.parse

    def _keep_run(self, chunk: Chunk, in_order: bool) -> None:
        rec = np.empty(len(chunk.ts_us), dtype=_RUN_DTYPE)
        order = slice(None) if in_order else np.argsort(chunk.ts_us, kind="stable")
        rec["ts"], rec["v"], rec["line"] = (
            chunk.ts_us[order],
            chunk.values[order],
            chunk.lines[order],
        )
        run = _Run(self.tmpdir / f"run-{len(self.runs):05d}.bin", len(rec))
        rec.tofile(run.path)
        self.runs.append(run)

    def _unique(self, chunk: Chunk) -> tuple[np.ndarray, np.ndarray]:
        ts, val, keep, self.prev = _dedupe(
            self.spec, chunk.ts_us, chunk.values, chunk.lines, self.prev, self.conflicts
        )
        self.steps.add(ts[keep])
        return ts[keep], val[keep]

    def _write(self, ts: np.ndarray, values: np.ndarray) -> None:
        assert self.tx is not None, "written only inside the import's transaction"
        if not len(ts) or ((self.parse.total or self.conflicts.total) and not self.skip_invalid):
            return  # nothing, or the import will fail: only the checks go on
        if self.sensor is None:  # its interval is set at the end, from the whole file
            attrs = {"source": Source.IMPORTED, "interval": _ONE_MIN, "unit": self.unit}
            if self.store.dialect == "postgresql":
                # In a short transaction of its own: a row inserted into sensors by the long one
                # would make every partition creation elsewhere (ATTACH locks sensors, for the
                # foreign key) wait for the import. Dropped again if the import fails.
                self.made = _existing_source(self.store, self.name) is None
                self.sensor = self.store.ensure_sensor(self.name, **attrs)
            else:  # SQLite: the open transaction holds the database; create the sensor in it
                self.sensor = self.tx.ensure_sensor(self.name, **attrs)
        sid = np.full(len(ts), self.sensor.id, np.int64)
        for lo in range(0, len(ts), WRITE_ROWS):
            hi = lo + WRITE_ROWS
            self.tx.write_batch_arrays(sid[lo:hi], ts[lo:hi], values[lo:hi])

    def checked(self) -> _Checked:
        rows = self.steps.rows
        dropped = self.total - rows - self.conflicts.total
        return _Checked(
            rows, dropped, self.steps.first or 0, self.steps.last or 0, self.steps.median()
        )


_ONE_MIN = pd.Timedelta("1min")


def _dedupe(spec, ts, val, lines, prev, conflicts: _Tally):
    """Sorted records without repeated times: (ts, val, keep mask, new prev). The first record
    (by line) of a time stays; a later one with another value is a problem in ``conflicts``.
    ``prev`` — the previous block's last time, with its first value and line — joins the block
    as its record 0, never kept again."""
    if prev is not None:
        ts = np.concatenate(([prev[0]], ts))
        val = np.concatenate(([prev[1]], val))
        lines = np.concatenate(([prev[2]], lines))
    starts = np.ones(len(ts), dtype=bool)
    starts[1:] = ts[1:] != ts[:-1]
    first = np.maximum.accumulate(np.where(starts, np.arange(len(ts)), 0))
    conflict = np.flatnonzero(~starts & (val != val[first]))
    if len(conflict):
        found = [
            _conflict(spec, ts[i], val[first[i]], val[i], lines[first[i]], lines[i])
            for i in conflict[: conflicts.limit]
        ]
        conflicts.add(found, len(conflict))
    keep = starts
    if prev is not None:
        keep[0] = False  # kept with the previous block
    j = int(first[-1])
    return ts, val, keep, (int(ts[j]), float(val[j]), int(lines[j]))


def _conflict(spec: CsvSpec, ts, a, b, line_a, line_b) -> Problem:
    when = from_epoch_us([int(ts)])[0].isoformat()
    return Problem(
        int(line_b),
        spec.ts_col,
        f"timestamp {when} appears twice with different values "
        f"({float(a)!r} and {float(b)!r}; also on line {int(line_a)})",
    )


def _write_runs(store, spec, runs, check, sensor, unit, interval, new, on_progress) -> None:
    """Pass 3 (a file out of time order): the merged runs into the database, in one
    transaction."""
    if interval is None:
        interval = pd.Timedelta(check.median_step_us, "us")
    s = store.ensure_sensor(sensor, source=Source.IMPORTED, interval=interval, unit=unit)
    if new:  # made by pass 1 (PostgreSQL) with a placeholder interval
        with store.transaction() as tx:
            tx.set_interval(s.id, interval)
    first, last = from_epoch_us([check.first_us, check.last_us])
    with store.transaction() as tx:
        tx.ensure_partitions(first, last)  # a short transaction of its own (see _write)
    done = 0
    with store.transaction() as tx:  # one transaction: all rows or none
        for ts_us, values in _unique_blocks(spec, runs, _Tally(1)):
            sid = np.full(len(ts_us), s.id, np.int64)
            for lo in range(0, len(ts_us), WRITE_ROWS):
                hi = lo + WRITE_ROWS
                tx.write_batch_arrays(sid[lo:hi], ts_us[lo:hi], values[lo:hi])
            done += len(ts_us)
            if on_progress:
                on_progress("write", done, check.rows)


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
    spec: CsvSpec, runs: list[_Run], conflicts: _Tally
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Sorted (epoch µs, values) blocks without repeated times (see ``_dedupe``)."""
    prev = None
    for block in _merged(runs):
        ts, val, keep, prev = _dedupe(spec, block["ts"], block["v"], block["line"], prev, conflicts)
        yield ts[keep], val[keep]


def _check_runs(spec: CsvSpec, runs: list[_Run], conflicts: _Tally) -> _Checked:
    """Pass 2: repeated times across the whole file, counts, first and last time and the
    median step."""
    total = sum(r.rows for r in runs)
    steps = _Steps()
    for ts, _ in _unique_blocks(spec, runs, conflicts):
        steps.add(ts)
    dropped = total - steps.rows - conflicts.total
    return _Checked(steps.rows, dropped, steps.first or 0, steps.last or 0, steps.median())
