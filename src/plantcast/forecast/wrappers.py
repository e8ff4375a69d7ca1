"""Forecasters made of forecasters: ``auto`` (best by backtest) and conformal bands."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from plantcast.core.errors import NotEnoughData, Refused
from plantcast.forecast.backtest import backtest
from plantcast.forecast.base import DEFAULT_MAX_TRAIN_POINTS, Forecaster
from plantcast.forecast.conformal import DEFAULT_LEVELS, with_intervals
from plantcast.forecast.features import as_periods

DEFAULT_CANDIDATES = ("fourier_linear", "seasonal_naive", "svr", "random_forest")


class _Delegating(Forecaster):
    """Predicts with the fitted inner model ``model_``."""

    def predict(self, horizon: int) -> pd.DataFrame:
        self._check_fitted()
        return self.model_.predict(horizon)

    def predict_at(self, index: pd.DatetimeIndex) -> np.ndarray:
        """Delegated to the inner model; Refused when it has no time-based expectation."""
        self._check_fitted()
        if not hasattr(self.model_, "predict_at"):
            raise Refused(f"{self.model_.name} forecasts steps ahead only, not at timestamps")
        return self.model_.predict_at(index)

    def _adopt(self, fitted: Forecaster) -> None:
        self.model_ = fitted
        self.interval_, self.last_ts_ = fitted.interval_, fitted.last_ts_
        self.n_train_ = fitted.n_train_


class AutoForecaster(_Delegating):
    """Per series, backtests each candidate and becomes the one with the lowest mean MASE.

    Candidates are registry names sharing ``periods``; the default list is the cheap,
    time-feature models plus the seasonal naive baseline (the statistical models cost
    ~0.3 s per fit, too slow to backtest on every dashboard refresh). The chosen name is
    ``chosen_``, all scores ``scores_``. If no candidate can be backtested (short history)
    the first candidate is used.
    """

    def __init__(
        self,
        candidates=DEFAULT_CANDIDATES,
        periods=("24h",),
        horizon: int = 48,
        windows: int = 3,
        step: int | None = None,
        interval=None,
        max_train_points: int | None = DEFAULT_MAX_TRAIN_POINTS,
    ) -> None:
        self.candidates = candidates
        self.periods = periods
        self.horizon = horizon
        self.windows = windows
        self.step = step
        self.interval = interval
        self.max_train_points = max_train_points

    def seasonal_period(self) -> pd.Timedelta | None:
        periods = as_periods(self.periods)
        return periods[0] if periods else None

    def _candidate(self, name: str) -> Forecaster:
        from plantcast.forecast.registry import get_model

        return get_model(
            name,
            periods=self.periods,
            interval=self.interval,
            max_train_points=self.max_train_points,
        )

    def fit(self, series: pd.Series) -> AutoForecaster:
        self._forget_fit()
        scores = {}
        for name in self.candidates:
            try:
                result = backtest(
                    series, self._candidate(name), self.horizon, self.step, self.windows
                )
                scores[name] = result.metrics["mase"]
            except NotEnoughData:
                continue
        finite = {k: v for k, v in scores.items() if not math.isnan(v)}
        self.scores_ = scores
        self.chosen_ = min(finite, key=finite.get) if finite else self.candidates[0]
        self._adopt(self._candidate(self.chosen_).fit(series))
        return self


class ConformalForecaster(_Delegating):
    """``model`` with 80/95 % bands calibrated by a backtest on the same series.

    ``fit`` backtests ``windows`` origins ``step`` readings apart, fits ``model`` on the whole
    series and attaches the per-step residual quantiles; ``predict`` returns the bands.
    ``backtest_`` keeps the backtest (its ``coverage`` is the honest, cross-fold figure).
    Cost: windows + 1 fits — cached with the model, so paid once per new reading.
    """

    def __init__(
        self,
        model: Forecaster,
        horizon: int = 48,
        windows: int = 10,
        step: int | None = None,
        levels=DEFAULT_LEVELS,
    ) -> None:
        self.model = model
        self.horizon = horizon
        self.windows = windows
        self.step = step
        self.levels = levels

    @property
    def interval(self):
        return self.model.interval

    def seasonal_period(self) -> pd.Timedelta | None:
        return self.model.seasonal_period()

    def fit(self, series: pd.Series) -> ConformalForecaster:
        self._forget_fit()
        step = self.step or max(1, self.horizon // 4)
        self.backtest_ = backtest(series, self.model, self.horizon, step, self.windows, self.levels)
        self._adopt(with_intervals(self.model.clone().fit(series), self.backtest_.intervals))
        return self
