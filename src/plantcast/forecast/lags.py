"""Lag-based forecasters (the mlforecast manner): a regressor on recent and seasonal lags.

Features at step t: the lags y[t-1..t-k], one season back (y[t-s] for each period's s steps),
optional trailing rolling means, and the Fourier terms of time from ``features``. Multi-step
forecasts are **recursive**: one model, each predicted step fed back as the next step's lag
1 (direct forecasting would need one model per step, 48 fits for a day at 30 min).

With ``relative=True`` (the default for tree models) every lag and the target are taken
relative to the mean of the last k readings, so the model learns shapes, not levels: a tree
cannot predict outside the range it was trained on, and after a level shift the forecast
starts from where the sensor is.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.linear_model import Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from plantcast.core.errors import InputError
from plantcast.core.timeutil import DurationLike
from plantcast.forecast.base import DEFAULT_MAX_TRAIN_POINTS
from plantcast.forecast.features import Periods, as_periods, fourier_terms
from plantcast.forecast.preprocess import regularize
from plantcast.forecast.regression import build_regressor, linear_predict
from plantcast.forecast.statistical import _RegularStepForecaster, season_steps


def _hgb(random_state: int, **kw: Any) -> BaseEstimator:
    defaults = {"max_iter": 200, "learning_rate": 0.05, "max_leaf_nodes": 31}
    return HistGradientBoostingRegressor(**{**defaults, "random_state": random_state, **kw})


def _lightgbm(random_state: int, **kw: Any) -> BaseEstimator:
    from lightgbm import LGBMRegressor

    # 80 trees of 15 leaves at rate 0.1: 4x less fitting than 200 x 31 at 0.05, and no less
    # accurate on the real series of tests/data (14 origins, periods given, MASE before ->
    # after: taylor 0.281 -> 0.246, seattle 0.281 -> 0.269, sf 0.358 -> 0.361, water 0.097 ->
    # 0.089): fewer, smaller trees also overfit the recursion's own errors less.
    defaults = {"n_estimators": 80, "learning_rate": 0.1, "num_leaves": 15, "verbose": -1}
    return LGBMRegressor(**{**defaults, "random_state": random_state, "n_jobs": 1, **kw})


def _ridge(random_state: int, **kw: Any) -> BaseEstimator:
    return make_pipeline(StandardScaler(), Ridge(**{"alpha": 1.0, **kw}))


LAG_REGRESSORS = {"hgb": _hgb, "lightgbm": _lightgbm, "linear": _ridge}


def one_step(model: Any) -> Callable[[np.ndarray], float]:
    """The fitted regressor's prediction for one row, as ``model.predict`` gives it, without
    scikit-learn's input checks where the arithmetic is plain (a standardising linear
    pipeline: ``regression.linear_predict``) or LightGBM's booster does it: the recursion
    asks once a step, and the checks cost more than the prediction."""
    booster = getattr(model, "booster_", None) if type(model).__name__ == "LGBMRegressor" else None
    if booster is not None:
        return lambda x: float(booster.predict(x)[0])

    def predict(x: np.ndarray) -> float:
        out = linear_predict(model, x) if hasattr(model, "steps") else None
        return float((model.predict(x) if out is None else out)[0])

    return predict


def lag_set(k: int, seasons: list[int]) -> list[int]:
    """Lags 1..k and one season back for each season (in steps), sorted and unique."""
    return sorted({*range(1, int(k) + 1), *(int(s) for s in seasons if s >= 1)})


def lag_features(
    y: np.ndarray, lags: list[int], rolling: tuple[int, ...] = (), ref_lags: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """The lag matrix for every t ≥ the longest lag (or window): rows of y[t-l] and means.

    Returns ``(X, ref)``: X has one column per lag, then one per rolling window (the mean of
    y[t-w..t-1]); ``ref`` is the mean of y[t-ref_lags..t-1] (zeros when ``ref_lags`` is 0), the
    level that relative features subtract. Row i is step t = start + i, start = longest reach.
    """
    y = np.asarray(y, dtype=np.float64)
    start = max([*lags, *rolling, ref_lags, 1])
    n = len(y) - start
    if n <= 0:
        return np.empty((0, len(lags) + len(rolling))), np.empty(0)
    cols = [y[start - lag : len(y) - lag] for lag in lags]
    csum = np.concatenate([[0.0], np.cumsum(y)])
    t = np.arange(start, len(y))
    cols += [(csum[t] - csum[t - w]) / w for w in rolling]
    ref = (csum[t] - csum[t - ref_lags]) / ref_lags if ref_lags else np.zeros(n)
    return np.column_stack(cols), ref


class LagForecaster(_RegularStepForecaster):
    """A regressor on lags, seasonal lags, rolling means and Fourier terms; recursive steps.

    ``regressor`` is a name from ``LAG_REGRESSORS`` ('hgb', 'lightgbm', 'linear') or an
    unfitted scikit-learn estimator. ``lags`` is k (lags 1..k); ``periods`` add the seasonal
    lags and the Fourier terms (``harmonics`` per period); ``rolling`` are trailing windows in
    steps. The series is regularised to the interval first (lags are counted in steps).
    """

    def __init__(
        self,
        regressor: str | BaseEstimator = "hgb",
        periods: Periods = ("24h",),
        lags: int = 6,
        harmonics: int = 2,
        rolling: tuple[int, ...] = (),
        relative: bool | None = None,
        diff: str | int | None = None,
        regressor_params: dict[str, Any] | None = None,
        random_state: int = 0,
        interval: DurationLike | None = None,
        max_train_points: int | None = DEFAULT_MAX_TRAIN_POINTS,
        smooth: int | DurationLike | None = None,
    ) -> None:
        self.regressor = regressor
        self.periods = periods
        self.lags = lags
        self.harmonics = harmonics
        self.rolling = rolling
        self.relative = relative
        self.diff = diff
        self.regressor_params = regressor_params
        self.random_state = random_state
        self.interval = interval
        self.max_train_points = max_train_points
        self.smooth = smooth

    def _make_regressor(self) -> BaseEstimator:
        return build_regressor(
            self.regressor, LAG_REGRESSORS, self.random_state, self.regressor_params
        )

    def _is_relative(self) -> bool:
        if self.relative is not None:
            return bool(self.relative)
        return bool(self.regressor != "linear")  # trees cannot extrapolate a level; linear can

    def _diff_steps(self, seasons: list[int]) -> int:
        if self.diff in (None, 0, False):
            return 0
        if self.diff == "season":
            return seasons[0] if seasons else 1
        if int(self.diff) < 1:
            raise InputError("diff must be 'season' or a positive number of steps", field="diff")
        return int(self.diff)

    def _design(self, y: np.ndarray, index: pd.DatetimeIndex) -> tuple[np.ndarray, np.ndarray]:
        lagged, ref = lag_features(y, self.lags_, self.rolling_, self.ref_lags_)
        if self.ref_lags_:
            lagged = lagged - ref[:, None]
        time = fourier_terms(index[len(y) - len(lagged) :], self.periods_, int(self.harmonics))
        return np.hstack([lagged, time]), ref

    def _fit(self, series: pd.Series) -> None:
        if int(self.lags) < 1:
            raise InputError("lags must be at least 1", field="lags")
        self.periods_ = as_periods(self.periods)
        seasons = [season_steps(p, self.interval_) for p in self.periods_]
        self.lags_ = lag_set(int(self.lags), seasons)
        self.rolling_ = tuple(int(w) for w in self.rolling)
        self.ref_lags_ = int(self.lags) if self._is_relative() else 0
        season = self.seasonal_period()
        steps = season_steps(season, self.interval_) if season is not None else 0
        regular = regularize(series, self.interval_, max_gap=self.max_gap, season_steps=steps)
        y = regular.to_numpy(dtype=np.float64)
        self.diff_ = self._diff_steps(seasons)
        self.reach_ = max([*self.lags_, *self.rolling_, self.ref_lags_, 1])
        self.grid_last_ = regular.index[-1]
        d = self.diff_
        if len(y) <= self.reach_ + d + 1:  # too short for the longest lag: persistence
            self.model_, self.history_ = None, y
            return
        z = y[d:] - y[:-d] if d else y
        x, ref = self._design(z, regular.index[d:])
        self.model_ = self._make_regressor().fit(x, z[self.reach_ :] - ref)
        self.history_ = y[-(self.reach_ + d) :]

    def _recurse(self, history: np.ndarray, last: pd.Timestamp, horizon: int) -> np.ndarray:
        """Predict step by step, each prediction appended as the next step's newest lag."""
        if self.model_ is None:
            return np.full(horizon, history[-1])
        d = self.diff_
        y = np.concatenate([history, np.empty(horizon)])
        buf = y.copy()  # the modelled series: y, or its difference at d steps
        if d:
            buf[d:] = y[d:] - y[:-d]
        n0 = len(history)
        future = pd.date_range(last + self.interval_, periods=horizon, freq=self.interval_)
        time = fourier_terms(future, self.periods_, int(self.harmonics))
        lag_idx = np.asarray(self.lags_)
        predict = one_step(self.model_)
        for j in range(horizon):
            t = n0 + j
            row = list(buf[t - lag_idx])
            row += [buf[t - w : t].mean() for w in self.rolling_]
            ref = buf[t - self.ref_lags_ : t].mean() if self.ref_lags_ else 0.0
            lagged = np.asarray(row) - ref
            x = np.concatenate([lagged, time[j]])[None, :]
            buf[t] = predict(x) + ref
            y[t] = buf[t] + (y[t - d] if d else 0.0)
        return y[n0:]

    def _predict_steps(self, horizon: int) -> np.ndarray:
        return self._recurse(self.history_, self.grid_last_, horizon)

    def forecast_from(self, series: pd.Series, horizon: int) -> pd.DataFrame:
        """The next ``horizon`` steps after ``series``' last reading, with this fit (no refit).

        The lags come from ``series``' latest readings, so a fit a few readings old still
        forecasts from where the sensor is now (the live page's refresh path).
        """
        self._check_fitted()
        from plantcast.forecast.features import future_index
        from plantcast.forecast.preprocess import clean, tail

        s = clean(tail(series, 4 * self.reach_ + 8))
        steps = season_steps(self.seasonal_period(), self.interval_) if self.periods_ else 0
        regular = regularize(s, self.interval_, max_gap=self.max_gap, season_steps=steps)
        y = regular.to_numpy(dtype=np.float64)
        need = self.reach_ + self.diff_
        if len(y) < need:
            y = np.concatenate([self.history_[: need - len(y)], y])
        mean = self._recurse(y[-need:], regular.index[-1], horizon)
        index = future_index(s.index[-1], self.interval_, horizon)
        return pd.DataFrame({"mean": mean}, index=index)
