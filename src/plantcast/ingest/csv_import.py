"""CSV import: validate the whole file, then write it in one transaction — or write nothing.

Errors name the file, the line (1 is the header) and the field. Large files are read in
chunks; only two compact arrays (epoch microseconds and values) are kept between passes.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from plantcast.core.errors import InputError, NotFound, Refused
from plantcast.core.timeutil import from_epoch_us
from plantcast.core.types import Source
from plantcast.store import Store
from plantcast.store.readings import write_readings

CHUNK_ROWS = 200_000
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
    ts_us, values = read_csv_checked(spec, on_progress)
    ts_us, values, dropped = _dedupe(spec, ts_us, values)
    existing = _existing_source(store, sensor)
    if existing is not None and existing is not Source.IMPORTED:
        raise Refused(
            f"sensor {sensor!r} holds {existing.value} data; import into a new sensor name"
        )
    if interval is None:
        interval = pd.Timedelta(int(np.median(np.diff(ts_us))) if len(ts_us) > 1 else 60e6, "us")
    s = store.ensure_sensor(sensor, source=Source.IMPORTED, interval=interval, unit=unit)
    index = from_epoch_us(ts_us).rename("ts")
    with store.write() as conn:  # one transaction: all rows or none
        for lo in range(0, len(index), CHUNK_ROWS):
            part = pd.Series(values[lo : lo + CHUNK_ROWS], index=index[lo : lo + CHUNK_ROWS])
            write_readings(conn, s.id, part)
            if on_progress:
                on_progress("write", min(lo + CHUNK_ROWS, len(index)), len(index))
    return ImportResult(sensor, len(index), dropped, index[0], index[-1], time.perf_counter() - t0)


def _existing_source(store: Store, sensor: str) -> Source | None:
    try:
        return store.get_sensor(sensor).source
    except NotFound:
        return None


def read_csv_checked(
    spec: CsvSpec, on_progress: Callable[[str, int, int], None] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Parse and check every row; return (epoch µs, values) in file order, or raise InputError."""
    path = str(spec.path)
    if not spec.path.is_file():
        raise InputError("no such file", file=path)
    size = os.path.getsize(spec.path)
    if size == 0:
        raise InputError("the file is empty", file=path)
    try:
        reader = pd.read_csv(
            spec.path, dtype=str, keep_default_na=False, chunksize=CHUNK_ROWS, skipinitialspace=True
        )
        chunks_ts, chunks_val, first_line = [], [], 2
        with reader:
            for chunk in reader:
                _check_columns(spec, chunk.columns)
                chunks_ts.append(_parse_ts(spec, chunk[spec.ts_col].to_numpy(), first_line))
                chunks_val.append(_parse_values(spec, chunk[spec.value_col].to_numpy(), first_line))
                first_line += len(chunk)
                if on_progress:
                    on_progress("check", min(reader.handles.handle.tell(), size), size)
    except pd.errors.EmptyDataError:
        raise InputError("the file is empty (no header line)", file=path) from None
    except pd.errors.ParserError as exc:
        raise InputError(f"malformed CSV: {str(exc).strip()}", file=path) from None
    except UnicodeDecodeError as exc:
        raise InputError(f"not UTF-8 text ({exc.reason})", file=path) from None
    if not chunks_ts or sum(len(c) for c in chunks_ts) == 0:
        raise InputError("the file has a header but no data rows", file=path)
    return np.concatenate(chunks_ts), np.concatenate(chunks_val)


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


def _parse_ts(spec: CsvSpec, raw: np.ndarray, first_line: int) -> np.ndarray:
    text = pd.Series(raw, dtype=str).str.strip()
    has_zone = text.str.contains(_HAS_ZONE).to_numpy()
    out = pd.Series(pd.NaT, index=text.index, dtype="datetime64[ns, UTC]")
    if has_zone.any():
        out[has_zone] = pd.to_datetime(text[has_zone], format="ISO8601", utc=True, errors="coerce")
    naive = ~has_zone & (text != "").to_numpy()
    if naive.any():
        local = pd.to_datetime(text[naive], format="ISO8601", errors="coerce")
        parsed = local.notna().to_numpy()
        if spec.tz is None and parsed.any():
            i = int(np.flatnonzero(naive)[np.flatnonzero(parsed)[0]])
            raise InputError(
                f"timestamp {text.iloc[i]!r} has no time zone; add one or pass --tz",
                file=str(spec.path),
                line=first_line + i,
                field=spec.ts_col,
            )
        if spec.tz is not None:
            try:
                local = local.dt.tz_localize(spec.tz, ambiguous="NaT", nonexistent="NaT")
            except Exception:
                raise InputError(f"unknown time zone {spec.tz!r}", field="--tz") from None
            out[naive] = local.dt.tz_convert("UTC")
    bad = np.flatnonzero(out.isna().to_numpy())
    if len(bad):
        i = int(bad[0])
        what = (
            "missing timestamp" if text.iloc[i] == "" else f"cannot read {text.iloc[i]!r} as a time"
        )
        raise InputError(what, file=str(spec.path), line=first_line + i, field=spec.ts_col)
    return pd.DatetimeIndex(out).as_unit("us").asi8.astype(np.int64)


def _parse_values(spec: CsvSpec, raw: np.ndarray, first_line: int) -> np.ndarray:
    text = pd.Series(raw, dtype=str).str.strip()
    values = pd.to_numeric(text, errors="coerce").to_numpy(dtype=np.float64)
    bad = np.flatnonzero(~np.isfinite(values))
    if len(bad):
        i = int(bad[0])
        raw_i = text.iloc[i]
        if raw_i == "":
            what = "missing value"
        elif raw_i.lower().lstrip("+-") in {"nan", "inf", "infinity"}:
            what = f"{raw_i!r} is not a finite number (NaN and infinity are refused)"
        else:
            what = f"cannot read {raw_i!r} as a number"
        raise InputError(what, file=str(spec.path), line=first_line + i, field=spec.value_col)
    return values


def _dedupe(spec: CsvSpec, ts_us: np.ndarray, values: np.ndarray):
    """Sort by time; drop exact repeats; refuse one timestamp with two different values."""
    order = np.argsort(ts_us, kind="stable")
    ts_s, val_s = ts_us[order], values[order]
    same = np.flatnonzero(ts_s[1:] == ts_s[:-1])
    conflict = same[val_s[same] != val_s[same + 1]]
    if len(conflict):
        j = int(conflict[0])
        lines = sorted((int(order[j]) + 2, int(order[j + 1]) + 2))
        when = from_epoch_us([ts_s[j]])[0].isoformat()
        raise InputError(
            f"timestamp {when} appears twice with different values "
            f"({val_s[j]!r} and {val_s[j + 1]!r}; also on line {lines[0]})",
            file=str(spec.path),
            line=lines[1],
            field=spec.ts_col,
        )
    keep = np.ones(len(ts_s), dtype=bool)
    keep[same + 1] = False
    return ts_s[keep], val_s[keep], int((~keep).sum())
