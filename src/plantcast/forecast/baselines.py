"""Seasonal naive: the value one season earlier, matched by timestamp (works across gaps)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from plantcast.core.timeutil import DurationLike
from plantcast.forecast.base import DEFAULT_MAX_TRAIN_POINTS, Forecaster
from plantcast.forecast.features import Periods, as_periods

_LOOKBACK = 4  # seasons to look back when the matching reading fell in a gap


class SeasonalNaiveForecaster(Forecaster):
    """ŷ(t) = y(t − kP) with the smallest k ≥ 1 that lands on an observed reading.

    P is the first of ``periods``, or the longest one when every other divides it and the
    history covers it (24h and 7d: last week's value, which holds the day's shape and the
    weekday's; on half-hourly electricity demand, 14 daily origins, the day before scored
    MASE 1.05 — Monday repeating Sunday — and led ``auto`` into blends that failed on such
    days). With no period at all, P is one interval: the naive forecast (the last reading
    repeated). The MASE scale stays that of the first period (``seasonal_period``), as for
    every model.

    For a future t, k is large enough that t − kP is in the history (the last season repeated).
    Readings are matched by timestamp within half an interval, so gaps and irregular sampling
    are fine; a season lost in a gap is taken from an earlier one. In-sample timestamps of the
    first season have nothing before them and take the season after instead; whatever is
    still unmatched gets the training mean.
    """

    min_periods = 1
    single_season = True

    def __init__(
        self,
        periods: Periods = ("24h",),
        interval: DurationLike | None = None,
        max_train_points: int | None = DEFAULT_MAX_TRAIN_POINTS,
        smooth: int | DurationLike | None = None,
    ) -> None:
        self.periods = periods
        self.interval = interval
        self.max_train_points = max_train_points
        self.smooth = smooth

    def _fit(self, series: pd.Series) -> None:
        self.period_ = self._repeated_period(series) or self.interval_
        self.history_ = series
        self.mean_ = float(series.mean())

    def _repeated_period(self, series: pd.Series) -> pd.Timedelta | None:
        periods = as_periods(self.periods)
        if not periods:
            return None
        longest = max(periods)
        span = series.index[-1] - series.index[0] + self.interval_
        if span >= longest and all(longest.value % p.value == 0 for p in periods):
            return longest
        return periods[0]

    def _lookup(self, ns: np.ndarray) -> np.ndarray:
        """Reading nearest to each timestamp (ns), NaN when none is within half an interval."""
        target = pd.DatetimeIndex(pd.to_datetime(ns, unit="ns", utc=True))
        where = self.history_.index.get_indexer(
            target, method="nearest", tolerance=self.interval_ / 2
        )
        out = np.full(len(ns), np.nan)
        found = where >= 0
        out[found] = self.history_.to_numpy()[where[found]]
        return out

    def predict_at(self, index: pd.DatetimeIndex) -> np.ndarray:
        """Expected values at arbitrary timestamps (future or in-sample)."""
        self._check_fitted()
        t = pd.DatetimeIndex(index).as_unit("ns").asi8
        p = self.period_.value
        last = self.last_ts_.as_unit("ns").value
        first = self.history_.index[0].as_unit("ns").value
        k = np.maximum(1, -((last - t) // p))  # ceil((t - last) / P), at least one season
        backward = [-(k + j) for j in range(_LOOKBACK)]
        forward = [np.full(len(t), j) for j in range(1, _LOOKBACK + 1)]
        out = np.full(len(t), np.nan)
        for seasons in backward + forward:
            todo = np.isnan(out)
            if not todo.any():
                break
            src = t[todo] + seasons[todo] * p
            ok = (src >= first) & (src <= last)
            vals = np.full(len(src), np.nan)
            if ok.any():
                vals[ok] = self._lookup(src[ok])
            out[todo] = vals
        return np.where(np.isnan(out), self.mean_, out)
