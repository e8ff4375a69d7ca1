"""Features from timestamps: Fourier terms of time and a scaled linear trend (gap-proof)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TypeAlias

import numpy as np
import pandas as pd

from plantcast.core.errors import InputError
from plantcast.core.timeutil import DurationLike, parse_duration

# One duration or several ('24h', ('24h', '7d')); None for no season.
Periods: TypeAlias = DurationLike | Iterable[DurationLike] | None


def as_periods(periods: Periods) -> tuple[pd.Timedelta, ...]:
    """Normalise one duration or a sequence of durations ('24h', '7d') to Timedeltas."""
    if periods is None:
        return ()
    if isinstance(periods, str | pd.Timedelta):
        periods = (periods,)
    out = tuple(parse_duration(p, field="periods") for p in periods)
    if any(p <= pd.Timedelta(0) for p in out):
        raise InputError("every period must be positive", field="periods")
    return out


def fourier_terms(
    index: pd.DatetimeIndex, periods: tuple[pd.Timedelta, ...], harmonics: int
) -> np.ndarray:
    """sin/cos(2πk·t/P) for k = 1..harmonics and each period P; columns grouped per period.

    The phase is computed in integer nanoseconds modulo P, so it stays exact for timestamps
    decades from the epoch (float seconds would lose the sub-second part).

    The last result is kept (read-only) for the same index object: a detect pass asks for the
    same window's terms once per detector.
    """
    periods, harmonics = tuple(periods), int(harmonics)
    last = _LAST_TERMS[0]
    if last is not None and last[0] is index and last[1] == periods and last[2] == harmonics:
        return last[3]
    terms = _fourier_terms(index, periods, harmonics)
    terms.flags.writeable = False
    if isinstance(index, pd.DatetimeIndex):  # immutable: safe to know again by identity
        _LAST_TERMS[0] = (index, periods, harmonics, terms)
    return terms


# (index, periods, harmonics, terms) of the last call; one tuple, replaced whole (thread-safe)
_LAST_TERMS: list[tuple[pd.DatetimeIndex, tuple[pd.Timedelta, ...], int, np.ndarray] | None] = [
    None
]


def _as_index(index: pd.DatetimeIndex) -> pd.DatetimeIndex:
    return index if isinstance(index, pd.DatetimeIndex) else pd.DatetimeIndex(index)


def _fourier_terms(
    index: pd.DatetimeIndex, periods: tuple[pd.Timedelta, ...], harmonics: int
) -> np.ndarray:
    ns = _as_index(index).as_unit("ns").asi8
    cols = []
    for period in periods:
        phase = 2.0 * np.pi * (ns % period.value).astype(np.float64) / period.value
        for k in range(1, harmonics + 1):
            cols.append(np.sin(k * phase))
            cols.append(np.cos(k * phase))
    if not cols:
        return np.empty((len(ns), 0))
    return np.column_stack(cols)


def trend_term(index: pd.DatetimeIndex, origin: pd.Timestamp, span: pd.Timedelta) -> np.ndarray:
    """Time as a fraction of the training span (0 at its start, 1 at its end): a small range."""
    ns = _as_index(index).as_unit("ns").asi8
    width = max(span.value, 1)
    out: np.ndarray = ((ns - origin.value) / width).reshape(-1, 1)
    return out


def time_features(
    index: pd.DatetimeIndex,
    periods: tuple[pd.Timedelta, ...],
    harmonics: int,
    trend: tuple[pd.Timestamp, pd.Timedelta] | None = None,
) -> np.ndarray:
    """The design matrix: Fourier terms, then the trend column when ``trend=(origin, span)``."""
    x = fourier_terms(index, periods, harmonics)
    if trend is not None:
        x = np.hstack([x, trend_term(index, *trend)])
    if x.shape[1] == 0:  # no period and no trend: a constant model still needs one column
        x = np.zeros((len(index), 1))
    return x


def infer_interval(index: pd.DatetimeIndex) -> pd.Timedelta:
    """The series' step: the median difference of its timestamps."""
    if len(index) < 2:
        raise InputError("cannot infer the interval of fewer than 2 readings; pass interval=")
    diffs = np.diff(pd.DatetimeIndex(index).as_unit("ns").asi8)
    step = pd.Timedelta(int(np.median(diffs)), unit="ns")
    if step <= pd.Timedelta(0):
        raise InputError("timestamps must be increasing")
    return step


def future_index(last: pd.Timestamp, interval: pd.Timedelta, horizon: int) -> pd.DatetimeIndex:
    """The next ``horizon`` timestamps after ``last`` at ``interval``."""
    return pd.date_range(last + interval, periods=horizon, freq=interval, name="ts")
