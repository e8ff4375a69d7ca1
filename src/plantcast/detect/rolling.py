"""Trailing-window medians and means of a float array (a count window, a time window's
median, an EWMA), as pandas' ``rolling``/``ewm`` computes them, bit for bit. Building the
Series and the window object costs more than the median of a detect's few hundred readings,
and a pass scores thousands of sensors several times each: the means, EWMA and time-window
medians call pandas' own routines directly (if pandas moves them, the public path is taken),
and the count-window median is bottleneck's ``move_median`` (a double heap, ~20x faster than
pandas' skiplist on a detect's windows; the median of the same values is the same float).
``tests/test_detect_fast.py`` holds each equal to pandas."""

from __future__ import annotations

import bottleneck as bn
import numpy as np
import pandas as pd

try:  # pandas' own window routines (pandas.core.window.rolling and .ewm call these)
    from pandas._libs.window.aggregations import ewm, roll_mean, roll_median_c
    from pandas._libs.window.indexers import calculate_variable_window_bounds
except ImportError:  # pragma: no cover - another pandas layout: the public path
    ewm = roll_mean = roll_median_c = calculate_variable_window_bounds = None


def _bounds(n: int, window: int) -> tuple[np.ndarray, np.ndarray]:
    """pandas' FixedWindowIndexer bounds (trailing, not centred, closed right)."""
    end = np.arange(1, n + 1, dtype=np.int64)
    return np.clip(end - window, 0, n), end


def _prepared(x: np.ndarray) -> np.ndarray:
    """As pandas prepares values for its routines: float64, infinities as NaN."""
    values = np.asarray(x, dtype=np.float64)
    inf = np.isinf(values)
    return np.where(inf, np.nan, values) if inf.any() else values


def _check(window: int, min_periods: int) -> None:
    if window < 0 or min_periods < 0 or min_periods > window:
        raise ValueError(f"bad rolling window {window} with min_periods {min_periods}")


def rolling_median(x: np.ndarray, window: int, min_periods: int) -> np.ndarray:
    """``pd.Series(x).rolling(window, min_periods=min_periods).median().to_numpy()``."""
    window, min_periods = int(window), int(min_periods)
    _check(window, min_periods)
    if len(x) == 0 or window == 0:
        roll = pd.Series(x, dtype=np.float64).rolling(window, min_periods=min_periods)
        out: np.ndarray = roll.median().to_numpy()
        return out
    n = len(x)
    if min_periods > n:
        return np.full(n, np.nan)
    # a window longer than the array is the whole of it before each position (bottleneck
    # wants it at most n); bottleneck counts at least one value where pandas may count none
    least = max(min_periods, 1)
    result: np.ndarray = bn.move_median(_prepared(x), min(window, n), min_count=least)
    return result


def rolling_mean(x: np.ndarray, window: int, min_periods: int) -> np.ndarray:
    """``pd.Series(x).rolling(window, min_periods=min_periods).mean().to_numpy()``."""
    window, min_periods = int(window), int(min_periods)
    if roll_mean is None or len(x) == 0:
        roll = pd.Series(x, dtype=np.float64).rolling(window, min_periods=min_periods)
        out: np.ndarray = roll.mean().to_numpy()
        return out
    _check(window, min_periods)
    with np.errstate(all="ignore"):
        result: np.ndarray = roll_mean(_prepared(x), *_bounds(len(x), window), min_periods)
    return result


def ewm_mean(x: np.ndarray, alpha: float) -> np.ndarray:
    """``pd.Series(x).ewm(alpha=alpha, adjust=False).mean().to_numpy()``."""
    values = _prepared(x)
    if ewm is None or len(values) == 0:
        out: np.ndarray = pd.Series(x, dtype=np.float64).ewm(alpha=alpha, adjust=False).mean()
        return np.asarray(out)
    com = (1.0 - alpha) / alpha  # pandas' centre of mass for an alpha
    bounds = np.array([0], dtype=np.int64), np.array([len(values)], dtype=np.int64)
    with np.errstate(all="ignore"):
        result: np.ndarray = ewm(values, *bounds, 1, com, False, False, None, True)
    return result


def time_median_before(
    x: np.ndarray, index: pd.DatetimeIndex, window: pd.Timedelta, most: int | None = None
) -> np.ndarray:
    """``pd.Series(x, index).rolling(window, closed="left", min_periods=1).median()``: the
    median of the readings in the ``window`` of time before each (NaN where none); with
    ``most``, of at most the last ``most`` of them."""
    values = _prepared(x)
    if calculate_variable_window_bounds is None or roll_median_c is None or len(values) == 0:
        return _time_median_public(values, index, window, most)
    size = pd.Timedelta(window).as_unit(index.unit)._value  # in the index's own unit
    start, end = calculate_variable_window_bounds(len(values), size, 1, False, "left", index.asi8)
    if most is not None:
        start = np.maximum(start, end - int(most))
    k = int((end - start).max())
    if k > 0 and np.array_equal(end - start, np.minimum(np.arange(len(values)), k)):
        # every window is the last k readings before (fewer at the start): a count window,
        # as on a regularly sampled sensor, and bottleneck's double heap is many times faster
        before = rolling_median(values, k, 1)
        shifted: np.ndarray = np.concatenate([[np.nan], before[:-1]])
        return shifted
    with np.errstate(all="ignore"):
        result: np.ndarray = roll_median_c(values, start, end, 1)
    return result


def _time_median_public(
    values: np.ndarray, index: pd.DatetimeIndex, window: pd.Timedelta, most: int | None
) -> np.ndarray:
    roll = pd.Series(values, index=index, dtype=np.float64).rolling(
        window, closed="left", min_periods=1
    )
    out: np.ndarray = roll.median().to_numpy()
    if most is None or len(values) == 0:
        return out
    # where the time window holds more than ``most`` readings, the median of the last ``most``
    count = roll.count().to_numpy()
    capped = rolling_median(np.r_[np.nan, values[:-1]], int(most), 1)
    return np.where(count > most, capped, out)
