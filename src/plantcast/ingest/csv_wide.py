"""Wide CSV import: a historian's export — one timestamp column, one column per tag — with every
numeric column made a sensor, all in one transaction (``csv_import.import_columns``).

The layout is read from the first lines when not given: the delimiter (the one that splits the
header and the rows into the same number of fields), the decimal mark (from values such as
``1,5`` or ``1.234,5``; a value that could hold a thousands separator, ``1.234``, is never
guessed), the timestamp column (by its name, else the first) and which columns are numbers.
"""

from __future__ import annotations

import csv
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from plantcast.core.errors import InputError
from plantcast.core.types import NAME_PATTERN
from plantcast.ingest.csv_import import (
    MAX_PROBLEMS,
    BeforeCommit,
    CsvSpec,
    ImportResult,
    import_columns,
)
from plantcast.ingest.csv_parse import sample_lines
from plantcast.store import Store

__all__ = ["WideLayout", "WideResult", "import_wide", "read_layout"]

SAMPLE_BYTES = 1 << 16  # the first lines the layout is read from
DELIMITERS = (";", "\t", "|", ",")  # in this order on a tie: ';' files hold decimal commas
TS_NAMES = ("ts", "timestamp", "time", "datetime", "date", "zeit", "zeitstempel", "datum")
_NAME = re.compile(NAME_PATTERN)
_NUMBER = re.compile(r"^[+-]?[\d.,]*\d[\d.,]*(?:[eE][+-]?\d+)?$")
_NAME_RULE = (
    "a sensor name starts with a letter or digit, then letters, digits, '_', '.', ':' or '-' "
    "(at most 200 characters)"
)


@dataclass(frozen=True)
class WideLayout:
    delimiter: str
    decimal: str
    ts_col: str
    columns: tuple[str, ...]  # numeric: a sensor each
    text_columns: tuple[str, ...] = ()  # left out: no value in the first lines is a number


@dataclass(frozen=True)
class WideResult:
    layout: WideLayout
    sensors: list[ImportResult]  # those that got readings, in column order
    empty: tuple[str, ...]  # numeric columns without a reading: no sensor made


def read_layout(
    path: Path,
    *,
    delimiter: str | None = None,
    decimal: str | None = None,
    ts_col: str | None = None,
) -> WideLayout:
    """The file's layout from its first lines; what is given is taken as given."""
    lines = sample_lines(path, SAMPLE_BYTES)
    where = str(path)
    delimiter = delimiter or _delimiter(lines, where)
    rows = [r for r in csv.reader(lines, delimiter=delimiter, skipinitialspace=True) if r]
    header = [c.strip() for c in rows[0]]
    data = rows[1:]
    cells = {c: [r[i].strip() for r in data if i < len(r)] for i, c in enumerate(header)}
    if ts_col is None:
        named = [c for c in header if c.lower() in TS_NAMES]
        ts_col = named[0] if named else header[0]
    elif ts_col not in header:
        raise InputError(
            f"no column {ts_col!r} (columns: {', '.join(header)}; choose with --ts-col)",
            file=where,
            line=1,
            field=ts_col,
        )
    others = [c for c in header if c != ts_col]
    seen = set()
    for c in others:
        if c in seen:
            raise InputError(f"column {c!r} appears twice in the header", file=where, line=1)
        seen.add(c)
    if decimal is None:
        decimal = _decimal([v for c in others for v in cells[c]], delimiter, where)
    numeric, text = [], []
    for c in others:
        filled = [v for v in cells[c] if v]
        if not c and not filled:
            continue  # a trailing delimiter's empty column
        if filled and not any(_reads(v, decimal) for v in filled):
            text.append(c)
        else:
            numeric.append(c)
    if not numeric:
        raise InputError(
            f"no numeric column besides {ts_col!r} (columns: {', '.join(header)})",
            file=where,
            line=1,
        )
    return WideLayout(delimiter, decimal, ts_col, tuple(numeric), tuple(text))


def sensor_names(layout: WideLayout, prefix: str, path: Path) -> list[str]:
    """``prefix`` + each numeric column's header, checked as sensor names are."""
    names = [prefix + c for c in layout.columns]
    bad = [(c, n) for c, n in zip(layout.columns, names, strict=True) if not _NAME.match(n)]
    if bad:
        which = ", ".join(repr(c) + (f" (as {n!r})" if prefix else "") for c, n in bad)
        raise InputError(
            f"column{'s' if len(bad) > 1 else ''} {which} cannot name a sensor: {_NAME_RULE}; "
            "rename it in the header" + (", or change --prefix" if prefix else ""),
            file=str(path),
            line=1,
            field=bad[0][0],
        )
    return names


def import_wide(
    store: Store,
    path: Path,
    *,
    delimiter: str | None = None,
    decimal: str | None = None,
    ts_col: str | None = None,
    tz: str | None = None,
    ts_format: str | None = None,
    prefix: str = "",
    unit: str = "",
    on_progress: Callable[[str, int, int], None] | None = None,
    skip_invalid: bool = False,
    max_problems: int = MAX_PROBLEMS,
    before_commit: BeforeCommit | None = None,
) -> WideResult:
    """Import every numeric column of a wide file into the sensor named ``prefix`` + its
    header: all rows of all columns or, on any bad row, nothing (no reading, no new sensor,
    nothing ``before_commit`` did) unless ``skip_invalid``. An empty cell is a missing
    reading; a column without any reading makes no sensor."""
    layout = read_layout(path, delimiter=delimiter, decimal=decimal, ts_col=ts_col)
    names = sensor_names(layout, prefix, path)
    spec = CsvSpec(
        path,
        ts_col=layout.ts_col,
        tz=tz,
        ts_format=ts_format,
        delimiter=layout.delimiter,
        decimal=layout.decimal,
        value_cols=layout.columns,
    )
    results = import_columns(
        store,
        spec,
        names,
        unit=unit,
        on_progress=on_progress,
        skip_invalid=skip_invalid,
        max_problems=max_problems,
        before_commit=before_commit,
    )
    got = {r.sensor for r in results}
    empty = tuple(c for c, n in zip(layout.columns, names, strict=True) if n not in got)
    return WideResult(layout, results, empty)


def _delimiter(lines: list[str], where: str) -> str:
    """The candidate that splits the header into two fields or more and most of the first
    rows into as many; on a tie the one listed first in DELIMITERS."""
    sample = [ln for ln in lines[:50] if ln.strip()]
    best, best_fields = None, 0
    for d in DELIMITERS:
        rows = list(csv.reader(sample, delimiter=d))
        fields = len(rows[0])
        agree = sum(len(r) == fields for r in rows[1:])
        if fields >= 2 and agree >= 0.8 * (len(rows) - 1) and fields > best_fields:
            best, best_fields = d, fields
    if best is None:
        tried = " ".join(repr(d) for d in DELIMITERS)
        raise InputError(
            f"cannot tell the delimiter from the first lines (tried {tried}); "
            "give it with --delimiter",
            file=where,
            line=1,
        )
    return best


def _decimal(values: list[str], delimiter: str, where: str) -> str:
    """',' or '.': the mark that values show as decimal (``1,5``, ``1.234,5``); with none,
    ',' in a ';' file and '.' otherwise. Both seen, or only values like ``1.234`` (a decimal
    mark or a thousands separator?) in a file not separated by ',': an error, not a guess."""
    seen: dict[str, str] = {}
    unsure = None
    for v in values:
        if not _NUMBER.match(v):
            continue
        mantissa = re.split("[eE]", v)[0]
        marks = [m for m in mantissa if m in ".,"]
        if not marks:
            continue
        last = marks[-1]
        if len(set(marks)) == 2:  # 1.234,5: the last one is the decimal mark
            seen.setdefault(last, v)
        elif len(marks) > 1:  # 1,234,567: thousands, so the decimal mark is the other one
            seen.setdefault("." if last == "," else ",", v)
        elif _decimal_only(*mantissa.lstrip("+-").split(last)):  # 1,5 or 0.250 or 1234.567
            seen.setdefault(last, v)
        elif unsure is None and not (delimiter == "," and last == "."):
            unsure = v
    if len(seen) == 2:
        raise InputError(
            f"values use both '.' ({seen['.']!r}) and ',' ({seen[',']!r}) as the decimal mark; "
            "give it with --decimal",
            file=where,
        )
    if seen:
        return next(iter(seen))
    if unsure is not None:
        raise InputError(
            f"cannot tell whether {unsure!r} has a decimal mark or a thousands separator; "
            "give the decimal mark with --decimal . or --decimal ,",
            file=where,
        )
    return "," if delimiter == ";" else "."


def _decimal_only(whole: str, fraction: str) -> bool:
    """Whether the one mark between these digits can only be a decimal mark: a thousands
    separator is followed by three digits and follows one to three, not a lone 0."""
    return len(fraction) != 3 or len(whole) > 3 or whole in {"", "0"}


def _reads(value: str, decimal: str) -> bool:
    """Whether ``value`` is a finite number with this decimal mark (as the import reads it)."""
    if decimal != "." and "." in value:
        return False
    try:
        return math.isfinite(float(value.replace(decimal, ".")))
    except ValueError:
        return False
