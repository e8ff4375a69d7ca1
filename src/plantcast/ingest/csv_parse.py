"""CSV parsing for the import: chunks of (line, epoch µs, values) and the problems of bad rows.

Arrow's CSV reader (C++, block by block) splits the file; a chunk whose times all carry a zone
and whose values are all finite numbers is converted by Arrow's casts. Any other chunk goes
through the careful pandas path, which names each bad row's line, field and why. A long file
has one value column; a wide one (``CsvSpec.value_cols``) several, where an empty cell is a
missing reading, not a bad row.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from plantcast.core.errors import InputError
from plantcast.core.timeutil import END_US, FIRST_US, FIRST_YEAR, LAST_YEAR

# A zone follows a time of day: "…T10:00Z", "… 10:00:00.5+02:00" (a bare date has none).
_HAS_ZONE = re.compile(r"\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?\s*(?:Z|UTC|[+-]\d{2}(?::?\d{2})?)$", re.I)


@dataclass(frozen=True)
class CsvSpec:
    path: Path
    ts_col: str = "ts"
    value_col: str = "value"
    tz: str | None = None
    delimiter: str = ","
    decimal: str = "."  # "," for a decimal comma; the other mark is then never read
    value_cols: tuple[str, ...] = ()  # wide: these columns, empty cells missing readings
    ts_format: str | None = None  # strftime format of the times (default: ISO 8601)

    @property
    def wide(self) -> bool:
        return bool(self.value_cols)

    @property
    def columns(self) -> tuple[str, ...]:
        """The value columns, in the order their values come in a chunk."""
        return self.value_cols or (self.value_col,)


@dataclass(frozen=True, order=True)
class Problem:
    """One bad row: its line (1 is the header), the field at fault (None: the row) and why."""

    line: int
    field: str | None
    message: str

    def __str__(self) -> str:
        where = f"line {self.line}" + (f", field '{self.field}'" if self.field else "")
        return f"{where}: {self.message}"


@dataclass
class Chunk:
    """The good rows of one chunk, in file order, and the problems of its bad rows."""

    lines: np.ndarray  # int64 line numbers
    ts_us: np.ndarray  # int64 epoch µs
    values: np.ndarray  # float64 (rows, value columns): finite, NaN only for a missing cell
    problems: list[Problem]
    bad_rows: int  # rows of this chunk left out (problems may list fewer: see max_problems)

    def column(self, j: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Lines, times and values of value column ``j``'s readings (missing cells left out)."""
        values = self.values[:, j]
        has = ~np.isnan(values)
        if has.all():
            return self.lines, self.ts_us, values
        return self.lines[has], self.ts_us[has], values[has]


_HAS_YEAR = re.compile(r"\d{4}-")  # an ISO 8601 time whose year may be out of range


def sample_lines(path: Path, size: int = 1) -> list[str]:
    """The file's first lines, about ``size`` bytes and at least the header, after the checks
    every import makes first: the file exists, is not empty, is UTF-8 text with a header."""
    where = str(path)
    if not path.is_file():
        raise InputError("no such file", file=where)
    if path.stat().st_size == 0:
        raise InputError("the file is empty", file=where)
    data = b""
    with path.open("rb") as f:
        while block := f.read(max(size, 1 << 16)):
            data += block
            if len(data) >= size and b"\n" in data:
                data = data[: data.rfind(b"\n") + 1]
                break
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(f"not UTF-8 text ({exc.reason})", file=where) from None
    lines = text.splitlines()
    if not lines or not lines[0].strip():
        raise InputError("the file is empty (no header line)", file=where)
    return lines


def read_header(spec: CsvSpec) -> list[str]:
    path = str(spec.path)
    first = sample_lines(spec.path)[:1]
    header = next(csv.reader(first, delimiter=spec.delimiter, skipinitialspace=True), None)
    if not header or not any(c.strip() for c in header):
        raise InputError("the file is empty (no header line)", file=path)
    columns = [c.strip() for c in header]
    for col, option in ((spec.ts_col, "--ts-col"), *((c, "--value-col") for c in spec.columns)):
        if col not in columns:
            raise InputError(
                f"no column {col!r} (columns: {', '.join(columns)}; choose with {option})",
                file=path,
                line=1,
                field=col,
            )
    return columns


def peek_span(spec: CsvSpec) -> tuple[int, int] | None:
    """Epoch µs of the first and last data lines, read without reading the file between (the
    span of a file in time order); None when either cannot be read."""
    try:
        columns = read_header(spec)
        col = columns.index(spec.ts_col)
        with spec.path.open("rb") as f:
            f.readline()
            first = f.readline()
            f.seek(max(f.tell(), spec.path.stat().st_size - (1 << 16)))
            tail = [ln for ln in f.read().splitlines() if ln.strip()]
        stamps = []
        for line in (first, tail[-1] if tail else b""):
            text = line.decode("utf-8")
            cells = next(csv.reader([text], delimiter=spec.delimiter, skipinitialspace=True))
            t = pd.Timestamp(cells[col].strip())
            if t.tzinfo is None:
                t = t.tz_localize(spec.tz) if spec.tz else None
            stamps.append(int(t.value // 1_000))
        return stamps[0], stamps[1]
    except (InputError, ValueError, IndexError, TypeError, UnicodeDecodeError, StopIteration):
        return None
    except Exception:  # an unknown zone name, an odd line: the writer creates as it goes
        return None


def parsed_chunks(
    spec: CsvSpec, chunk_rows: int, *, progress=None, max_problems: int = 20
) -> Iterator[Chunk]:
    """The file's data rows in chunks of ``chunk_rows`` rows (the last may be shorter).

    Rows with the wrong number of fields are problems of the chunk they fall in; so are bad
    times and values. ``progress(bytes_read, size)`` is called after each chunk. Raises
    InputError for what makes the whole file unreadable (and for naive times without --tz)."""
    import pyarrow as pa
    import pyarrow.csv as pcsv

    columns = read_header(spec)
    size = spec.path.stat().st_size
    bad_lines: list[tuple[int, str]] = []  # wrong field counts, as Arrow reports them

    base = 0  # the line before the block being parsed: Arrow numbers a block's lines from 1

    def on_invalid(row) -> str:
        n = base + row.number if row.number is not None else -1
        bad_lines.append((n, f"expected {row.expected_columns} fields, found {row.actual_columns}"))
        return "skip"

    per_row = _bytes_per_row(spec.path)  # for progress
    options = {
        "read_options": pcsv.ReadOptions(
            column_names=columns,
            use_threads=False,  # row numbers for the invalid-row handler
            block_size=1 << 26,
        ),
        "parse_options": pcsv.ParseOptions(
            delimiter=spec.delimiter, invalid_row_handler=on_invalid
        ),
        "convert_options": pcsv.ConvertOptions(
            include_columns=[spec.ts_col, *spec.columns],
            column_types={c: pa.string() for c in (spec.ts_col, *spec.columns)},
            strings_can_be_null=False,
            quoted_strings_can_be_null=False,
        ),
    }
    try:
        line = 1  # the last line accounted for
        pending: list[pa.RecordBatch] = []
        held = 0
        found = 0  # problems listed so far (all chunks)

        def emit(rows: list[pa.RecordBatch]) -> Chunk:
            nonlocal line, found
            table = pa.Table.from_batches(rows).combine_chunks()
            n = table.num_rows
            skipped = sorted(b for b in bad_lines if b[0] > line)
            lines = _data_lines(line, n, [b[0] for b in skipped])
            last = int(lines[-1]) if n else line + len(skipped)
            mine = [b for b in skipped if b[0] <= last]
            bad_lines[:] = [b for b in bad_lines if b[0] > last]
            chunk = _convert(spec, table, lines, max(max_problems - found, 0))
            chunk.problems[:0] = [Problem(n_, None, why) for n_, why in mine][
                : max_problems - found
            ]
            chunk.problems.sort()
            chunk.bad_rows += len(mine)
            found += len(chunk.problems)
            line = last
            if progress is not None:
                progress(min(int(last * per_row), size), size)
            return chunk

        # Blocks of whole lines read here, each parsed by Arrow on its own: memory holds one
        # block (Arrow's streaming reader reads ahead of its consumer, as far as the file goes).
        base = 1
        for block in _blocks(spec.path, max(int(chunk_rows * per_row), 1 << 16)):
            table = pcsv.read_csv(pa.py_buffer(block), **options)
            base += block.count(b"\n") + (not block.endswith(b"\n"))
            pending += table.to_batches()
            held += table.num_rows
            while held >= chunk_rows:
                table = pa.Table.from_batches(pending)
                yield emit(table.slice(0, chunk_rows).to_batches())
                rest = table.slice(chunk_rows)
                pending, held = rest.to_batches(), rest.num_rows
        if held or bad_lines:
            yield emit(pending or [_empty_batch(spec)])
    except pa.ArrowInvalid as exc:
        message = str(exc).strip().splitlines()[0]
        if "UTF8" in message or "utf8" in message.lower():
            raise InputError("not UTF-8 text", file=str(spec.path)) from None
        raise InputError(f"malformed CSV: {message}", file=str(spec.path)) from None


def _blocks(path: Path, size: int) -> Iterator[bytes]:
    """The data lines of the file (the header left out) in blocks of about ``size`` bytes,
    each ending at the end of a line."""
    with path.open("rb") as f:
        f.readline()
        rest = b""
        while data := f.read(size):
            data = rest + data
            cut = data.rfind(b"\n") + 1
            if cut == 0:
                rest = data
                continue
            yield data[:cut]
            rest = data[cut:]
        if rest:
            yield rest


def _bytes_per_row(path: Path) -> float:
    with path.open("rb") as f:
        head = f.read(1 << 16)
    return len(head) / max(head.count(b"\n"), 1)


def _empty_batch(spec: CsvSpec):
    import pyarrow as pa

    names = [spec.ts_col, *spec.columns]
    return pa.record_batch([pa.array([], pa.string()) for _ in names], names=names)


def _data_lines(after: int, n: int, skipped: list[int]) -> np.ndarray:
    """The first ``n`` line numbers after ``after`` that are not in ``skipped`` (sorted)."""
    candidates = np.arange(after + 1, after + 1 + n + len(skipped), dtype=np.int64)
    if skipped:
        candidates = candidates[~np.isin(candidates, np.asarray(skipped, dtype=np.int64))]
    return candidates[:n]


def _convert(spec: CsvSpec, table, lines: np.ndarray, max_problems: int) -> Chunk:
    """Arrow's casts when the whole chunk is clean; else the pandas path, row by row."""
    import pyarrow as pa
    import pyarrow.compute as pc

    ts_raw = pc.utf8_trim_whitespace(table.column(spec.ts_col))
    val_raw = [pc.utf8_trim_whitespace(table.column(c)) for c in spec.columns]
    try:
        ts = pc.cast(ts_raw, pa.timestamp("us", tz="UTC")).to_numpy().astype(np.int64)
        values = np.column_stack([_fast_values(spec, raw) for raw in val_raw])
        if bool(((ts >= FIRST_US) & (ts < END_US)).all()):
            return Chunk(lines, ts, values, [], 0)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    ts_text = np.asarray(ts_raw.to_numpy(zero_copy_only=False), dtype=object)
    ts_us, ts_why = _parse_ts(spec, ts_text, lines)
    columns, whys = [], [(spec.ts_col, ts_why)]
    for col, raw in zip(spec.columns, val_raw, strict=True):
        text = np.asarray(raw.to_numpy(zero_copy_only=False), dtype=object)
        values, why = _parse_values(text, spec.decimal, missing_ok=spec.wide)
        columns.append(values)
        whys.append((col, why))
    problems, bad = [], np.zeros(len(lines), dtype=bool)
    for field, why in whys:
        for i, message in why.items():
            bad[i] = True
            problems.append(Problem(int(lines[i]), field, message))
    problems.sort()
    keep = ~bad
    values = np.column_stack(columns)[keep]
    return Chunk(lines[keep], ts_us[keep], values, problems[:max_problems], int(bad.sum()))


def _fast_values(spec: CsvSpec, raw) -> np.ndarray:
    """One column's values by Arrow's cast (NaN where a wide cell is empty); raises ArrowInvalid
    for anything the careful path must explain."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if spec.decimal != ".":
        if pc.any(pc.match_substring(raw, ".")).as_py():
            raise pa.ArrowInvalid("the other mark: a thousands separator?")
        raw = pc.replace_substring(raw, spec.decimal, ".")
    if spec.wide:
        raw = pc.if_else(pc.equal(raw, ""), pa.scalar(None, pa.string()), raw)
    cast = pc.cast(raw, pa.float64())
    values = cast.to_numpy(zero_copy_only=False).astype(np.float64, copy=False)
    if not np.isfinite(values[~np.asarray(cast.is_null())]).all():
        raise pa.ArrowInvalid("NaN or infinity")
    return values


EPOCH_SECONDS = "%s"  # --ts-format for times written as seconds since 1970-01-01 UTC


def _to_datetime(text: np.ndarray, fmt: str, *, utc: bool):
    """``text`` read in ``fmt`` (NaT where it does not fit); a format that is not one is the
    option's error, not the rows'."""
    if fmt == EPOCH_SECONDS:
        seconds = pd.to_numeric(pd.Series(text), errors="coerce")
        # beyond pandas' range (about 1677-2262): NaT, then named as outside the supported years
        seconds = seconds.where(seconds.abs() < 9.2e9)
        return pd.to_datetime(seconds, unit="s", utc=True).to_numpy()
    try:
        return pd.to_datetime(text, format=fmt, utc=utc, errors="coerce")
    except ValueError as exc:
        raise InputError(
            f"{fmt!r} is not a time format ({exc}); write it as strftime does, e.g. "
            f"'%d.%m.%Y %H:%M', or {EPOCH_SECONDS!r} for seconds since 1970",
            field="--ts-format",
        ) from None


def _clock_changes(tz: str, local: pd.Series, zoned: pd.Series, rows, text) -> dict[int, str]:
    """{row index: why} for the local times read but not placed in ``tz``: those its clocks
    skipped (spring forward) or showed twice (fall back), which no offset-free time can name."""
    lost = np.flatnonzero(local.notna().to_numpy() & zoned.isna().to_numpy())
    if not len(lost):
        return {}
    twice = local.iloc[lost].dt.tz_localize(tz, ambiguous=True, nonexistent="NaT").notna()
    out = {}
    for k, repeated in zip(lost.tolist(), twice.to_numpy().tolist(), strict=True):
        what = (
            "happens twice (the clocks went back)"
            if repeated
            else "never happens (the clocks went forward)"
        )
        out[int(rows[k])] = (
            f"{text[rows[k]]!r} {what} in {tz}: give such times their UTC offset "
            "(e.g. +01:00) or write them in UTC"
        )
    return out


def _parse_ts(spec: CsvSpec, text: np.ndarray, lines: np.ndarray) -> tuple[np.ndarray, dict]:
    """Epoch µs (0 where bad) and {row index: why} for the bad rows."""
    fmt = spec.ts_format or "ISO8601"
    if fmt == EPOCH_SECONDS:  # `date +%s`: seconds since 1970 in UTC, no zone to give
        has_zone = np.ones(len(text), dtype=bool)
    else:
        has_zone = np.fromiter((_HAS_ZONE.search(v) is not None for v in text), bool, len(text))
    out = pd.Series(pd.NaT, index=range(len(text)), dtype="datetime64[ns, UTC]")
    if has_zone.any():
        out[has_zone] = _to_datetime(text[has_zone], fmt, utc=True)
    naive = ~has_zone & (text != "")
    if naive.any():
        local = pd.Series(_to_datetime(text[naive], fmt, utc=False))
        parsed = local.notna().to_numpy()
        if spec.tz is None and parsed.any():
            i = int(np.flatnonzero(naive)[np.flatnonzero(parsed)[0]])
            raise InputError(
                f"timestamp {text[i]!r} has no time zone; add one or pass --tz",
                file=str(spec.path),
                line=int(lines[i]),
                field=spec.ts_col,
            )
        if spec.tz is not None:
            try:
                zoned = local.dt.tz_localize(spec.tz, ambiguous="NaT", nonexistent="NaT")
            except Exception:
                raise InputError(f"unknown time zone {spec.tz!r}", field="--tz") from None
            rows = np.flatnonzero(naive)
            clock_changes = _clock_changes(spec.tz, local, zoned, rows, text)
            converted = zoned.dt.tz_convert("UTC")
            converted.index = rows
            out.loc[converted.index] = converted
    missing = out.isna().to_numpy()
    why = {
        int(i): "missing timestamp"
        if text[i] == ""
        else f"cannot read {text[i]!r} as a time"
        + (
            f" in the format {spec.ts_format!r}"
            if spec.ts_format
            else " (ISO 8601; else --ts-format)"
        )
        for i in np.flatnonzero(missing)
    }
    if spec.tz is not None and naive.any():
        why.update(clock_changes)
    us = pd.DatetimeIndex(out.fillna(pd.Timestamp(0, tz="UTC"))).as_unit("us").asi8
    years = f"outside the supported years ({FIRST_YEAR}-{LAST_YEAR})"
    for k in np.flatnonzero(~missing & ((us < FIRST_US) | (us >= END_US))).tolist():
        why[k] = f"{text[k]!r} is {years}"
    for k in np.flatnonzero(missing & (text != "")).tolist():  # beyond pandas' range: NaT
        if _HAS_YEAR.match(str(text[k])) and not FIRST_YEAR <= int(text[k][:4]) <= LAST_YEAR:
            why[k] = f"{text[k]!r} is {years}"
    return us.astype(np.int64), why


def _parse_values(text: np.ndarray, decimal: str = ".", *, missing_ok: bool = False):
    """Values (NaN where missing, 0 where bad) and {row index: why} for the bad rows. With a
    decimal comma a '.' is refused (read as a decimal point, "1.234" would be 1.234, not 1234);
    with a decimal point a ',' fails as any text does."""
    other = "." if decimal != "." else ","
    readable = np.char.replace(text.astype(str), decimal, ".") if decimal != "." else text
    values = np.asarray(pd.to_numeric(readable, errors="coerce"), dtype=np.float64)
    why = {}
    for i in np.flatnonzero(~np.isfinite(values)):
        raw = text[i]
        if raw == "":
            if not missing_ok:
                why[int(i)] = "missing value"
        elif raw.lower().lstrip("+-") in {"nan", "inf", "infinity"}:
            why[int(i)] = f"{raw!r} is not a finite number (NaN and infinity are refused)"
        else:
            why[int(i)] = f"cannot read {raw!r} as a number" + _mark_hint(raw, decimal, other)
    if decimal != ".":
        for i in np.flatnonzero(np.char.find(text.astype(str), ".") >= 0):
            why[int(i)] = f"cannot read {text[i]!r} as a number" + _mark_hint(
                text[i], decimal, other
            )
    values[[*why]] = 0.0
    if not missing_ok:
        values = np.nan_to_num(values, nan=0.0, posinf=0.0, neginf=0.0)
    return values, why


def _mark_hint(raw: str, decimal: str, other: str) -> str:
    if other not in raw:
        return ""
    return f" (the decimal mark is {decimal!r}; {other!r} is not read: see --decimal)"
