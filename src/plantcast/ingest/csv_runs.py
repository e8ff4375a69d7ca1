"""The import's sorted runs on disk: each chunk's records of a value column, sorted by time,
merged back in (time, line) order in bounded memory; repeated times found and dropped, and the
median step of the times that stay."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from plantcast.core.timeutil import from_epoch_us
from plantcast.ingest.csv_parse import CsvSpec, Problem

MERGE_ROWS = 200_000  # records held across all runs while merging them
STEP_SAMPLE = 1 << 20  # steps kept to compute the median interval
RUN_DTYPE = np.dtype([("ts", "<i8"), ("v", "<f8"), ("line", "<i8")])


@dataclass
class Tally:
    """Problems found so far: the first ``limit`` by line, and how many in all."""

    limit: int
    problems: list[Problem] = field(default_factory=list)
    total: int = 0

    def add(self, problems: list[Problem], count: int | None = None) -> None:
        self.total += len(problems) if count is None else count
        self.problems = sorted(self.problems + problems)[: self.limit]

    def merged(self, other: Tally) -> Tally:
        both = Tally(self.limit, [], self.total + other.total)
        both.problems = sorted(self.problems + other.problems)[: self.limit]
        return both


class Steps:
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


@dataclass
class Run:
    path: Path
    rows: int
    start: int = 0  # its first record's place in the file
    done: int = 0  # rows read from the file so far

    def read(self, count: int) -> np.ndarray:
        count = min(count, self.rows - self.done)
        block = np.fromfile(
            self.path,
            dtype=RUN_DTYPE,
            count=count,
            offset=(self.start + self.done) * RUN_DTYPE.itemsize,
        )
        self.done += len(block)
        return block


@dataclass
class Checked:
    rows: int  # after exact duplicates are dropped
    dropped: int
    first_us: int
    last_us: int
    median_step_us: int


def merged(runs: list[Run]) -> Iterator[np.ndarray]:
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


def unique_blocks(
    spec: CsvSpec, runs: list[Run], conflicts: Tally, column: str
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Sorted (epoch µs, values) blocks without repeated times (see ``dedupe``)."""
    prev = None
    for block in merged(runs):
        ts, val, keep, prev = dedupe(
            spec, block["ts"], block["v"], block["line"], prev, conflicts, column
        )
        yield ts[keep], val[keep]


def check_runs(spec: CsvSpec, runs: list[Run], conflicts: Tally, column: str) -> Checked:
    """Pass 2: a column's repeated times across the whole file, counts, first and last time
    and the median step."""
    total, before = sum(r.rows for r in runs), conflicts.total
    steps = Steps()
    for ts, _ in unique_blocks(spec, runs, conflicts, column):
        steps.add(ts)
    dropped = total - steps.rows - (conflicts.total - before)
    return Checked(steps.rows, dropped, steps.first or 0, steps.last or 0, steps.median())


def dedupe(spec, ts, val, lines, prev, conflicts: Tally, column: str):
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
            _conflict(spec, column, ts[i], val[first[i]], val[i], lines[first[i]], lines[i])
            for i in conflict[: conflicts.limit]
        ]
        conflicts.add(found, len(conflict))
    keep = starts
    if prev is not None:
        keep[0] = False  # kept with the previous block
    j = int(first[-1])
    return ts, val, keep, (int(ts[j]), float(val[j]), int(lines[j]))


def _conflict(spec: CsvSpec, column: str, ts, a, b, line_a, line_b) -> Problem:
    when = from_epoch_us([int(ts)])[0].isoformat()
    where = f" in column {column!r}" if spec.wide else ""
    return Problem(
        int(line_b),
        spec.ts_col,
        f"timestamp {when} appears twice with different values{where} "
        f"({float(a)!r} and {float(b)!r}; also on line {int(line_a)})",
    )
