"""Statistical baselines from statsforecast (MSTL, AutoETS, AutoTheta) on a regularised series."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from plantcast.core.timeutil import DurationLike
from plantcast.forecast.base import DEFAULT_MAX_TRAIN_POINTS, Forecaster
from plantcast.forecast.features import Periods, as_periods
from plantcast.forecast.preprocess import regularize


def season_steps(period: pd.Timedelta, interval: pd.Timedelta) -> int:
    """A period in steps of the interval (at least 1)."""
    steps: int = round(period / interval)
    return max(1, steps)


def stl_jumps(season_lengths: list[int]) -> dict[str, int]:
    """R's ``stl`` defaults for its loess jumps (``ceiling(window / 10)``), sized on the shortest
    season so every season gets at most that jump (statsforecast's MSTL passes one set of STL
    arguments to all seasons). statsmodels' default jump of 1 evaluates every loess at every
    point: on 4 weeks at 30 min with seasons 48 and 336 that is ~7x the work for the same
    forecasts (MASE within 0.001 on the real series of tests/data).
    """
    m = min(season_lengths)
    trend = math.ceil(1.5 * m / (1 - 1.5 / 11))  # statsmodels' trend window for seasonal=11
    return {
        "seasonal_jump": 2,
        "trend_jump": math.ceil(trend / 10),
        "low_pass_jump": math.ceil((m + 1) / 10),
    }


class _RegularStepForecaster(Forecaster):
    """Resamples to the interval (mean per step) and fills gaps before the model sees it."""

    max_gap = 4
    model_: Any  # the fitted statsforecast (or, for lag models, scikit-learn) model

    def _regular(self, series: pd.Series) -> np.ndarray:
        season = self.seasonal_period()
        steps = season_steps(season, self.interval_) if season is not None else 0
        y = regularize(series, self.interval_, max_gap=self.max_gap, season_steps=steps)
        out: np.ndarray = y.to_numpy(dtype=np.float64)
        return out

    def _predict_steps(self, horizon: int) -> np.ndarray:
        return np.asarray(self.model_.predict(h=horizon)["mean"], dtype=np.float64)


class MSTLForecaster(_RegularStepForecaster):
    """MSTL: one seasonal component per period (in steps), trend forecast by AutoETS.

    A constant series is fitted as a flat line: STL on zero variance has nothing to find.
    """

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
        from statsforecast.models import MSTL, Naive

        y = self._regular(series)
        steps = sorted({season_steps(p, self.interval_) for p in as_periods(self.periods)})
        steps = [m for m in steps if m > 1]
        if np.ptp(y) == 0 or not steps:
            self.model_ = Naive().fit(y)
            return
        self.season_lengths_ = steps
        self.model_ = MSTL(season_length=steps, stl_kwargs=stl_jumps(steps)).fit(y)


class ETSForecaster(_RegularStepForecaster):
    """AutoETS with one season length, the first of ``periods`` (none when ``periods`` is
    empty): additive error and season, the trend (none, additive, damped) chosen by AICc.

    ``model="AZA"`` rather than the fully automatic "ZZZ": on the real series in
    ``tests/data`` (14 daily origins) AICc's pick of a multiplicative season was both slower and
    far worse — MASE 1.35 vs 5.71 on half-hourly electricity demand, 0.52 vs 0.59 on hourly
    temperature, at 3x less fitting time — and an additive season also serves sensors whose
    readings cross zero.
    """

    def __init__(
        self,
        periods: Periods = ("24h",),
        model: str = "AZA",
        interval: DurationLike | None = None,
        max_train_points: int | None = 1008,
        smooth: int | DurationLike | None = None,
    ) -> None:
        self.periods = periods
        self.model = model
        self.interval = interval
        self.max_train_points = max_train_points
        self.smooth = smooth

    single_season = True

    def _fit(self, series: pd.Series) -> None:
        from statsforecast.models import AutoETS, Naive

        y = self._regular(series)
        season = self.seasonal_period()
        m = season_steps(season, self.interval_) if season is not None else 1
        if np.ptp(y) == 0:
            self.model_ = Naive().fit(y)
            return
        self.season_length_ = m
        # A period no longer than one step (a daily season on weekly readings) is no season:
        # fit the same error and trend without one, as MSTL drops such a period.
        model = self.model if m > 1 else self.model[:2] + "N"
        self.model_ = AutoETS(season_length=m, model=model).fit(y)


class ThetaForecaster(_RegularStepForecaster):
    """AutoTheta (statsforecast): the Theta models (standard, optimised, dynamic) chosen by
    in-sample MSE, on the series deseasonalised by the first of ``periods`` when its seasonal
    test passes (multiplicative, additive for data that is not positive); none when
    ``periods`` is empty or the period is no longer than one step.

    Fitted on the latest 1,008 readings, as ets: on the real series of tests/data (14 daily
    origins) that is 3.5x less fitting than 2,016 and MASE 1.90 -> 0.78 on hourly Seattle
    temperature, 5.40 -> 2.18 on San Francisco's, 0.96 -> 1.03 on electricity demand and
    0.098 -> 0.118 on water flow: Theta's one drift follows the recent weeks better.
    """

    single_season = True

    def __init__(
        self,
        periods: Periods = ("24h",),
        interval: DurationLike | None = None,
        max_train_points: int | None = 1008,
        smooth: int | DurationLike | None = None,
    ) -> None:
        self.periods = periods
        self.interval = interval
        self.max_train_points = max_train_points
        self.smooth = smooth

    def _fit(self, series: pd.Series) -> None:
        from statsforecast.models import AutoTheta, Naive

        y = self._regular(series)
        season = self.seasonal_period()
        m = season_steps(season, self.interval_) if season is not None else 1
        if np.ptp(y) == 0 or len(y) < 4:
            self.model_ = Naive().fit(y)
            return
        self.season_length_ = m
        self.model_ = AutoTheta(season_length=m).fit(y)
