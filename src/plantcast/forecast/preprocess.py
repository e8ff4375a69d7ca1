"""Preprocessing: validation, NaN policy, smoothing, bounded windows and regular resampling."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from plantcast.core.errors import InputError, NotEnoughData
from plantcast.core.timeutil import format_duration, parse_duration


def clean(series: pd.Series) -> pd.Series:
    """Check the input contract and drop NaNs: float values on a sorted, unique UTC index."""
    if not isinstance(series, pd.Series):
        raise InputError(f"expected a pandas Series, got {type(series).__name__}")
    idx = series.index
    if not isinstance(idx, pd.DatetimeIndex) or idx.tz is None:
        raise InputError("the series needs a tz-aware DatetimeIndex (UTC)")
    s = series.astype(np.float64)
    if str(idx.tz) != "UTC":
        s.index = idx.tz_convert("UTC")
    if not s.index.is_monotonic_increasing:
        s = s.sort_index()
    if not s.index.is_unique:
        s = s[~s.index.duplicated(keep="last")]
    return s[np.isfinite(s.to_numpy())]


def tail(series: pd.Series, points: int | None) -> pd.Series:
    """The last ``points`` readings (all of them when ``points`` is None)."""
    if points is None or len(series) <= points:
        return series
    return series.iloc[-points:]


def rolling_mean(series: pd.Series, window: int | str | pd.Timedelta) -> pd.Series:
    """Trailing rolling mean over a count of points (int) or a duration ('2h').

    Trailing means it only looks back, so it is usable online — and it lags the signal by half
    the window, which is why models fit on raw readings by default.
    """
    if isinstance(window, int | np.integer):
        if window < 1:
            raise InputError("smoothing window must be at least 1 point", field="smooth")
        return series.rolling(int(window), min_periods=1).mean()
    return series.rolling(parse_duration(window, field="smooth"), min_periods=1).mean()


GAP_TOLERANCE = 0.5  # share of a history's expected readings that may be missing


def require_history(
    series: pd.Series, period: pd.Timedelta, count: int, interval: pd.Timedelta
) -> None:
    """Raise NotEnoughData unless the series covers ``count`` periods of time.

    Time covered is what counts, not a number of readings: the span must reach ``count``
    periods (one reading of slack), and gaps may take up to ``GAP_TOLERANCE`` of it.
    """
    need = math.ceil(count * period / interval)
    have_span = series.index[-1] - series.index[0] + interval if len(series) else pd.Timedelta(0)
    enough_readings = len(series) >= max(2, math.ceil(need * (1 - GAP_TOLERANCE)))
    if have_span < count * period or not enough_readings:
        plural = "s" if count > 1 else ""
        raise NotEnoughData(
            f"need {count} period{plural} of {format_duration(period)} of history "
            f"({format_duration(count * period)}, at most {GAP_TOLERANCE:.0%} of it in gaps); "
            f"have {format_duration(max(have_span, pd.Timedelta(0)))} in {len(series)} readings"
        )


def coarsen(series: pd.Series, step: pd.Timedelta) -> pd.Series:
    """The mean of each ``step`` of ``series``, labelled by the step's end and aligned so the
    last step ends at the last reading (a forecast then starts one ``step`` after it); steps
    with no reading are left out, as gaps."""
    if series.empty:
        return series
    coarse = series.resample(step, closed="right", label="right", origin="end").mean()
    return coarse.dropna()


def regularize(
    series: pd.Series, interval: pd.Timedelta, max_gap: int = 4, season_steps: int = 0
) -> pd.Series:
    """Resample to ``interval`` (mean per bucket) and fill the holes, for regular-step models.

    Gaps of up to ``max_gap`` steps are interpolated linearly. Longer gaps would turn into
    straight lines across whole cycles, so they take the value one season earlier (or later)
    first; whatever is left is interpolated.
    """
    s = series.resample(interval, origin="start").mean()
    if not s.isna().any():
        return s
    filled = s.interpolate(limit=max_gap, limit_area="inside")
    if season_steps > 0:
        for _ in range(3):
            if not filled.isna().any():
                break
            filled = filled.fillna(filled.shift(season_steps)).fillna(filled.shift(-season_steps))
    return filled.interpolate(limit_direction="both")
