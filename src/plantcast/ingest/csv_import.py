"""CSV import: check the whole file and write it in one transaction — or write nothing.

Errors name the file, the line (1 is the header) and the field; the first ``max_problems`` bad
rows are reported together, and ``skip_invalid`` imports the good rows and lists the others.
Memory does not grow with the file. One pass parses it in chunks (``csv_parse``), keeps each
value column's share as a run sorted by time in a temporary file and, while the file is in time
order (the usual case), writes the chunk at once: a sorted file is read once. Rows out of order
make the import fall back on the runs: the open transaction is rolled back, pass 2 merges the
runs to find repeated timestamps and pass 3 merges them again into the database, in one
transaction. A long file fills one sensor (``import_csv``); a wide one, one sensor a column
(``import_columns``, which ``csv_wide`` drives).
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from plantcast.core.errors import InputError, NotFound, Refused
from plantcast.core.timeutil import from_epoch_us
from plantcast.core.types import Sensor, Source
from plantcast.ingest import csv_runs
from plantcast.ingest.csv_parse import CsvSpec, Problem, parsed_chunks, peek_span
from plantcast.store import Store, Transaction

__all__ = ["CsvSpec", "ImportProblems", "ImportResult", "Problem", "import_columns", "import_csv"]

CHUNK_ROWS = 100_000  # values parsed at a time (rows × value columns); each chunk, one run each
WRITE_ROWS = 50_000  # rows per write call
MAX_PROBLEMS = 20  # bad rows reported (all are counted)
_ONE_MIN = pd.Timedelta("1min")

# Called inside the transaction that commits the readings, with the sensors that got some:
# what must commit with them, or not at all (an asset of the sensors).
BeforeCommit = Callable[[Transaction, list[str]], None]


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
    before_commit: BeforeCommit | None = None,
) -> ImportResult:
    """Import ``spec.path`` into ``sensor`` (created as ``imported`` if missing).

    Any bad row raises ImportProblems (an InputError) and writes nothing, unless
    ``skip_invalid``: then the good rows are written and the result lists the bad ones.
    ``before_commit`` runs in the import's transaction (see ``import_columns``)."""
    (result,) = import_columns(
        store,
        spec,
        [sensor],
        unit=unit,
        interval=interval,
        on_progress=on_progress,
        skip_invalid=skip_invalid,
        max_problems=max_problems,
        before_commit=before_commit,
    )
    return result


def import_columns(
    store: Store,
    spec: CsvSpec,
    sensors: Sequence[str],
    *,
    unit: str = "",
    interval: pd.Timedelta | None = None,
    on_progress: Callable[[str, int, int], None] | None = None,
    skip_invalid: bool = False,
    max_problems: int = MAX_PROBLEMS,
    before_commit: BeforeCommit | None = None,
) -> list[ImportResult]:
    """Import each of ``spec.columns`` into the sensor at the same place in ``sensors`` (each
    created as ``imported`` if missing, its interval the median step of its own readings), all
    in one transaction; a result for each sensor that got readings, in column order.

    Any bad row raises ImportProblems and writes nothing — no reading, no new sensor, nothing
    ``before_commit`` did — unless ``skip_invalid`` (see ``import_csv``)."""
    t0 = time.perf_counter()
    existing = [_existing_source(store, name) for name in sensors]
    for name, source in zip(sensors, existing, strict=True):
        if source is not None and source is not Source.IMPORTED:
            raise Refused(
                f"sensor {name!r} holds {source.value} data; import into a new sensor name"
            )
    limit = max(int(max_problems), 1)
    with tempfile.TemporaryDirectory(prefix="plantcast-import-") as tmpdir:
        columns = [
            _Column(name, source, Path(tmpdir) / f"col-{j:05d}.bin", limit)
            for j, (name, source) in enumerate(zip(sensors, existing, strict=True))
        ]
        one = _OnePass(store, spec, columns, unit, skip_invalid, limit)
        try:
            checks, tally = _import(store, spec, one, interval, on_progress, before_commit)
        except BaseException:
            one.drop_made_sensors()
            raise
    live = [(c.name, check) for c, check in zip(columns, checks, strict=True) if check.rows]
    first = min(check.first_us for _, check in live)
    last = max(check.last_us for _, check in live)
    with store.transaction() as tx:  # fresh statistics: the reads that follow use the index
        tx.analyze_span(*from_epoch_us([first, last]))
    seconds = time.perf_counter() - t0
    results = []
    for name, check in live:
        start, end = from_epoch_us([check.first_us, check.last_us])
        results.append(
            ImportResult(
                name,
                check.rows,
                check.dropped,
                start,
                end,
                seconds,
                tally.total,
                tuple(tally.problems),
            )
        )
    return results


def _import(store, spec, one, interval, on_progress, before_commit):
    """The one pass, or on a file out of order the runs' passes 2 and 3: each column's
    ``csv_runs.Checked`` and the file's problems."""
    skip_invalid, limit = one.skip_invalid, one.parse.limit
    try:
        with store.transaction() as tx:  # one transaction: all rows or none
            one.tx = tx
            one.run(on_progress)
            if not one.sorted:
                raise _Unsorted  # roll back what was written, go on from the runs
            checks, tally = [c.checked() for c in one.columns], one.problems()
            _refuse_problems(spec, tally, skip_invalid, sum(c.rows for c in checks))
            for col, check in zip(one.columns, checks, strict=True):
                if col.existing is None and check.rows:
                    step = interval or pd.Timedelta(check.median_step_us, "us")
                    tx.set_interval(col.sensor.id, step)
            if before_commit is not None:
                made = zip(one.columns, checks, strict=True)
                before_commit(tx, [c.name for c, k in made if k.rows])
    except _Unsorted:
        for col in one.columns:
            if not col.made:  # made inside the rolled-back transaction: gone with it
                col.sensor = None
        conflicts = csv_runs.Tally(limit)
        checks = [csv_runs.check_runs(spec, c.runs, conflicts, c.name) for c in one.columns]
        tally = one.parse.merged(conflicts)
        _refuse_problems(spec, tally, skip_invalid, sum(c.rows for c in checks))
        _write_runs(store, spec, one, checks, interval, on_progress, before_commit)
    return checks, tally


def _refuse_problems(spec: CsvSpec, tally: csv_runs.Tally, skip_invalid: bool, rows: int) -> None:
    path = str(spec.path)
    if tally.total and (not skip_invalid or rows == 0):
        note = "" if rows or not skip_invalid else " and no valid row"
        raise ImportProblems(path, tally.problems, tally.total, note)
    if rows == 0:
        what = "no readings (every value cell is empty)" if spec.wide else "no data rows"
        raise InputError(f"the file has a header but {what}", file=path)


def _existing_source(store: Store, sensor: str) -> Source | None:
    try:
        return store.get_sensor(sensor).source
    except NotFound:
        return None


class _Column:
    """One value column's share of the import: its sensor, its runs (one file, run after run),
    the steps of its times and its repeated times."""

    def __init__(self, name: str, existing: Source | None, path: Path, limit: int) -> None:
        self.name, self.existing, self.path = name, existing, path
        self.runs: list[csv_runs.Run] = []
        self.steps = csv_runs.Steps()
        self.conflicts = csv_runs.Tally(limit)
        self.prev: tuple[int, float, int] | None = None  # the last time's first (ts, v, line)
        self.sensor: Sensor | None = None
        self.made = False  # created in a transaction of its own: dropped if the import fails
        self.total = 0  # readings parsed

    def keep_run(self, lines, ts, values, in_order: bool) -> None:
        self.total += len(ts)
        rec = np.empty(len(ts), dtype=csv_runs.RUN_DTYPE)
        order = slice(None) if in_order else np.argsort(ts, kind="stable")
        rec["ts"], rec["v"], rec["line"] = ts[order], values[order], lines[order]
        start = sum(r.rows for r in self.runs)
        with self.path.open("ab") as f:
            rec.tofile(f)
        self.runs.append(csv_runs.Run(self.path, len(rec), start))

    def unique(self, spec, lines, ts, values) -> tuple[np.ndarray, np.ndarray]:
        ts, values, keep, self.prev = csv_runs.dedupe(
            spec, ts, values, lines, self.prev, self.conflicts, self.name
        )
        self.steps.add(ts[keep])
        return ts[keep], values[keep]

    def checked(self) -> csv_runs.Checked:
        rows = self.steps.rows
        dropped = self.total - rows - self.conflicts.total
        return csv_runs.Checked(
            rows, dropped, self.steps.first or 0, self.steps.last or 0, self.steps.median()
        )

    def ensure_sensor(self, store: Store, tx: Transaction | None, unit: str, step) -> Sensor:
        """The sensor, made if missing: in ``tx`` (it rolls back with it) or, without one, in a
        short transaction of its own (``made``: dropped again if the import fails)."""
        if self.sensor is None:
            attrs = {"source": Source.IMPORTED, "interval": step, "unit": unit}
            if tx is None:
                self.made = self.existing is None
                self.sensor = store.ensure_sensor(self.name, **attrs)
            else:
                self.sensor = tx.ensure_sensor(self.name, **attrs)
        return self.sensor


class _OnePass:
    """Pass 1: parse, keep runs on disk, and write while the file stays in time order."""

    def __init__(self, store, spec, columns, unit, skip_invalid, limit) -> None:
        self.store, self.spec, self.columns, self.unit = store, spec, columns, unit
        self.skip_invalid = skip_invalid
        self.parse = csv_runs.Tally(limit)  # bad rows
        self.tx: Transaction | None = None
        self.sorted = True
        self.last_ts: int | None = None

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
        # A chunk holds about CHUNK_ROWS values, however many columns a row has.
        rows = max(CHUNK_ROWS // len(self.columns), min(CHUNK_ROWS, 100))
        for chunk in parsed_chunks(self.spec, rows, progress=progress, max_problems=limit):
            self.parse.add(chunk.problems, chunk.bad_rows)
            ts = chunk.ts_us
            if not len(ts):
                continue
            in_order = bool(np.all(ts[1:] >= ts[:-1])) and (
                self.last_ts is None or ts[0] >= self.last_ts
            )
            self.sorted = self.sorted and in_order
            self.last_ts = int(ts[-1])
            parts = []
            for j, col in enumerate(self.columns):
                lines, col_ts, values = chunk.column(j)
                col.keep_run(lines, col_ts, values, in_order)
                if self.sorted:
                    parts.append((col, *col.unique(self.spec, lines, col_ts, values)))
            if self.sorted:
                self._write(parts)

    def drop_made_sensors(self) -> None:
        made = [c.sensor.id for c in self.columns if c.made and c.sensor is not None]
        if made:
            with self.store.transaction() as tx:
                for sid in made:
                    tx.drop_sensor_if_empty(sid)

    def problems(self) -> csv_runs.Tally:
        if not self.sorted:
            return self.parse
        tally = self.parse
        for col in self.columns:
            tally = tally.merged(col.conflicts)
        return tally

    def _write(self, parts: list[tuple[_Column, np.ndarray, np.ndarray]]) -> None:
        assert self.tx is not None, "written only inside the import's transaction"
        failing = self.parse.total or any(c.conflicts.total for c in self.columns)
        parts = [p for p in parts if len(p[1])]
        if not parts or (failing and not self.skip_invalid):
            return  # nothing, or the import will fail: only the checks go on
        ids = []
        for col, ts, _ in parts:  # its interval is set at the end, from the whole file
            # PostgreSQL: in a short transaction of its own, since a row inserted into sensors
            # by the long one would make every partition creation elsewhere (ATTACH locks
            # sensors, for the foreign key) wait for the import. SQLite: the open transaction
            # holds the database; the sensor is made in it.
            tx = None if self.store.dialect == "postgresql" else self.tx
            sensor = col.ensure_sensor(self.store, tx, self.unit, _ONE_MIN)
            ids.append(np.full(len(ts), sensor.id, np.int64))
        _write_arrays(
            self.tx,
            np.concatenate(ids),
            np.concatenate([p[1] for p in parts]),
            np.concatenate([p[2] for p in parts]),
        )


def _write_arrays(tx: Transaction, sid: np.ndarray, ts: np.ndarray, values: np.ndarray) -> None:
    for lo in range(0, len(ts), WRITE_ROWS):
        hi = lo + WRITE_ROWS
        tx.write_batch_arrays(sid[lo:hi], ts[lo:hi], values[lo:hi])


def _write_runs(store, spec, one, checks, interval, on_progress, before_commit) -> None:
    """Pass 3 (a file out of time order): the merged runs of every column into the database,
    in one transaction."""
    live = [(c, k) for c, k in zip(one.columns, checks, strict=True) if k.rows]
    new = []
    for col, check in live:
        step = interval or pd.Timedelta(check.median_step_us, "us")
        sensor = col.ensure_sensor(store, None, one.unit, step)
        if col.existing is None:  # made now or by pass 1 (PostgreSQL), with a placeholder
            new.append((sensor.id, step))
    with store.transaction() as tx:  # short transactions of their own (see _OnePass._write)
        for sid, step in new:
            tx.set_interval(sid, step)
    with store.transaction() as tx:
        first = min(k.first_us for _, k in live)
        tx.ensure_partitions(*from_epoch_us([first, max(k.last_us for _, k in live)]))
    done, total = 0, sum(k.rows for _, k in live)
    with store.transaction() as tx:  # one transaction: all rows or none
        for col, _ in live:
            blocks = csv_runs.unique_blocks(spec, col.runs, csv_runs.Tally(1), col.name)
            for ts_us, values in blocks:
                _write_arrays(tx, np.full(len(ts_us), col.sensor.id, np.int64), ts_us, values)
                done += len(ts_us)
                if on_progress:
                    on_progress("write", done, total)
        if before_commit is not None:
            before_commit(tx, [c.name for c, _ in live])
