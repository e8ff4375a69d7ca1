"""Aligning an asset's sensors on one time grid, causally, with a bounded forward fill.

A grid point ``t`` takes each sensor's last reading at or before ``t`` (never one after it: a
detector scoring ``t`` sees only what was known at ``t``), provided that reading is at most
``max_age`` old; an older one leaves the cell NaN, so a long gap stays a gap instead of being
papered over by a stale value. Pure functions: frames in, frames out.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from plantcast.core.errors import InputError

# A reading stands for its sensor until this many of the sensor's own intervals have passed:
# one missed (or late) reading is bridged, two in a row are a gap.
FILL_INTERVALS = 2


def default_max_age(interval: pd.Timedelta) -> pd.Timedelta:
    """How long a reading of a sensor reporting every ``interval`` may be carried forward."""
    return FILL_INTERVALS * pd.Timedelta(interval)


def grid(start: pd.Timestamp, end: pd.Timestamp, step: pd.Timedelta) -> pd.DatetimeIndex:
    """The times ``start <= t < end`` that are whole multiples of ``step`` since the epoch, so
    every window of an asset falls on the same grid (UTC, nanoseconds)."""
    step_ns = pd.Timedelta(step).value
    if step_ns <= 0:
        raise InputError(f"the grid step must be positive, got {step}", field="step")
    lo, hi = pd.Timestamp(start).value, pd.Timestamp(end).value
    first = -(-lo // step_ns) * step_ns  # ceil to the step
    n = max(0, -(-(hi - first) // step_ns))
    values = first + np.arange(n, dtype=np.int64) * step_ns
    return pd.DatetimeIndex(pd.to_datetime(values, unit="ns", utc=True), name="ts")


def _ns(index: pd.Index) -> np.ndarray:
    idx = pd.DatetimeIndex(index)
    if idx.tz is None:
        raise InputError("readings need a tz-aware (UTC) index")
    return np.asarray(idx.tz_convert("UTC").as_unit("ns").asi8, dtype=np.int64)


def align(
    readings: Mapping[str, pd.Series],
    times: pd.DatetimeIndex,
    max_age: Mapping[str, pd.Timedelta] | pd.Timedelta,
) -> pd.DataFrame:
    """One column per sensor (in ``readings``' order), one row per grid time.

    A cell holds the sensor's last reading at or before the row's time if that reading is at
    most ``max_age`` (one for all, or one per sensor) older than the row; otherwise NaN.
    NaN readings count as missing; of readings sharing a time the last one counts.
    """
    t = _ns(times)
    columns: dict[str, np.ndarray] = {}
    for name, series in readings.items():
        limit = max_age[name] if isinstance(max_age, Mapping) else max_age
        limit_ns = pd.Timedelta(limit).value
        s = series.dropna()
        if s.empty:
            columns[name] = np.full(len(t), np.nan)
            continue
        if not s.index.is_monotonic_increasing:
            s = s.sort_index(kind="stable")
        ts, values = _ns(s.index), s.to_numpy(dtype=float)
        last = np.searchsorted(ts, t, side="right") - 1  # the last reading at or before t
        at = np.clip(last, 0, None)
        fresh = (last >= 0) & (t - ts[at] <= limit_ns)
        columns[name] = np.where(fresh, values[at], np.nan)
    return pd.DataFrame(columns, index=times, columns=list(readings))
