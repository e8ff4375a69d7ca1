"""Time helpers: durations written the way people write them, and UTC everywhere."""

from __future__ import annotations

import functools
import re
from datetime import UTC, datetime, timedelta
from typing import TypeAlias

import numpy as np
import numpy.typing as npt
import pandas as pd

from plantcast.core.errors import InputError

# What to_utc accepts (pandas is untyped, so mypy lets any value through as pd.Timestamp).
TimeLike: TypeAlias = pd.Timestamp | datetime | str
# What parse_duration accepts: '30min', '1d12h' or a Timedelta.
DurationLike: TypeAlias = pd.Timedelta | str

# The years a stored reading may carry: well inside pandas' nanosecond range (1677-2262), so
# every window around a reading is representable too. Imports and the API refuse the rest.
FIRST_YEAR, LAST_YEAR = 1700, 2200
FIRST_US = int(pd.Timestamp(f"{FIRST_YEAR}-01-01", tz="UTC").value // 1_000)
END_US = int(pd.Timestamp(f"{LAST_YEAR + 1}-01-01", tz="UTC").value // 1_000)

_BARE_NUMBER = re.compile(r"[+-]?\d+(\.\d*)?")


def parse_duration(text: str | pd.Timedelta, *, field: str = "duration") -> pd.Timedelta:
    """Parse '30min', '2s', '24h', '7d', '1d12h' into a positive or zero ``Timedelta``."""
    value = text if isinstance(text, pd.Timedelta) else _read_duration(str(text).strip(), field)
    if value < pd.Timedelta(0) or pd.isna(value):
        raise InputError(f"duration must not be negative, got {text!r}", field=field)
    return value


@functools.lru_cache(maxsize=512)
def _read_duration(raw: str, field: str) -> pd.Timedelta:
    """A duration's text read once: detectors parse the same few ('6h', '2h', …) thousands
    of times a pass, and reading one costs pandas tens of microseconds."""
    if raw in {"0", "0s"}:
        return pd.Timedelta(0)
    try:
        value = pd.Timedelta(raw)
    except (ValueError, TypeError):
        raise InputError(
            f"cannot read {raw!r} as a duration (examples: 30min, 2s, 24h, 7d)", field=field
        ) from None
    if _BARE_NUMBER.fullmatch(raw):
        raise InputError(f"{raw!r} has no unit (examples: 30min, 2s, 24h, 7d)", field=field)
    return value


def utcnow() -> pd.Timestamp:
    """The current time as a tz-aware UTC ``Timestamp``."""
    return pd.Timestamp(datetime.now(UTC))


def to_utc(ts: TimeLike) -> pd.Timestamp:
    """Coerce a timestamp to tz-aware UTC; naive input is taken to be UTC already."""
    t = pd.Timestamp(ts)
    return t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")


def to_epoch_us(index: pd.DatetimeIndex | pd.Series) -> npt.NDArray[np.int64]:
    """Microseconds since the epoch, as int64, for a tz-aware index or series."""
    idx = pd.DatetimeIndex(index)
    if idx.tz is None:
        idx = idx.tz_localize("UTC")
    us: npt.NDArray[np.int64] = idx.tz_convert("UTC").as_unit("us").asi8.astype(np.int64)
    return us


_PER_NS = {"s": 1_000_000_000, "ms": 1_000_000, "us": 1_000, "ns": 1}


def to_epoch_ns(values: object) -> npt.NDArray[np.int64]:
    """Nanoseconds since the epoch, as int64, of timestamps (an index, a column, a list; naive
    ones read as UTC); NaT as the int64 minimum, as ``asi8`` gives it. An index is read in its
    own unit, not converted first."""
    if isinstance(values, pd.DatetimeIndex):
        times = values
    elif getattr(getattr(values, "dtype", None), "kind", "") == "M":  # a datetime column
        times = pd.DatetimeIndex(values)
    else:  # a list, or objects: each converted (zones may differ)
        times = pd.DatetimeIndex(pd.to_datetime(list(values), utc=True))  # type: ignore[call-overload]
    ns: npt.NDArray[np.int64] = times.asi8 * _PER_NS[times.unit]
    return np.where(times.isna(), np.iinfo(np.int64).min, ns) if times.hasnans else ns


_NS_RANGE_US = np.iinfo(np.int64).max // 1_000  # beyond: out of a nanosecond index's range
# the wall times as given are UTC: built with the zone, not localised after (half the cost)
_UTC_NS = pd.DatetimeTZDtype("ns", "UTC")


def from_epoch_us(values: npt.ArrayLike) -> pd.DatetimeIndex:
    """The inverse of :func:`to_epoch_us` (nanosecond unit; a tenth of ``pd.to_datetime``'s
    cost: a store read of a thousand sensors converts millions)."""
    us = np.asarray(values, dtype=np.int64).reshape(-1)
    if len(us) and (int(us.max()) > _NS_RANGE_US or int(us.min()) < -_NS_RANGE_US):
        return pd.DatetimeIndex(pd.to_datetime(us, unit="us", utc=True))  # says what is out
    return pd.DatetimeIndex((us * 1_000).view("datetime64[ns]"), dtype=_UTC_NS)


def floor_to(ts: pd.Timestamp, step: pd.Timedelta) -> pd.Timestamp:
    """Floor a timestamp to a multiple of ``step`` since the epoch (stable grid for all sensors)."""
    return to_utc(ts).floor(step)


def format_duration(td: timedelta) -> str:
    """Durations the way people write them: 30min, 24h, 7d, 36h, 1d12h, 12h30min, 0.05s, 0s.

    A whole number of one unit is kept as written (24h rather than 1d, below two days);
    anything else is composed, largest unit first; sub-second parts print as such. Takes a
    ``pandas.Timedelta`` or a ``datetime.timedelta``; the one formatter every message uses.
    """
    us = td // timedelta(microseconds=1)
    total, frac_us = divmod(us, 1_000_000)
    if total == 0 and frac_us == 0:
        return "0s"
    if not frac_us:
        for unit, size, below in (("d", 86_400, None), ("h", 3_600, None), ("min", 60, 3_600)):
            whole = total % size == 0 and total >= size * (2 if unit == "d" else 1)
            if whole and (below is None or total < below):
                return f"{total // size}{unit}"
    parts = []
    for unit, size in (("d", 86_400), ("h", 3_600), ("min", 60)):
        if total >= size:
            parts.append(f"{total // size}{unit}")
            total %= size
    if total or frac_us:  # sub-second ticks print as such (0.05s), never as 0s
        parts.append(f"{total + frac_us / 1e6:.6f}".rstrip("0").rstrip(".") + "s")
    return "".join(parts)
