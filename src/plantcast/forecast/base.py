"""The estimator protocol shared by every forecaster: validate once, bound, fit, predict."""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from plantcast.core.errors import InputError, NotEnoughData, PlantcastError
from plantcast.core.timeutil import DurationLike, parse_duration
from plantcast.forecast.features import as_periods, future_index, infer_interval
from plantcast.forecast.preprocess import clean, require_history, rolling_mean, tail

if TYPE_CHECKING:
    from plantcast.forecast.conformal import ConformalIntervals

DEFAULT_MAX_TRAIN_POINTS = 2016  # six weeks at 30 min; a bound that keeps refits flat in cost


class NotFitted(PlantcastError):
    """``predict`` was called before ``fit``."""


class Forecaster:
    """Template method: ``fit`` validates, bounds and smooths once; subclasses write ``_fit``.

    Common parameters (subclasses list them in their own ``__init__``):

    * ``interval``: the step of the forecast grid; inferred as the median diff when None.
    * ``max_train_points``: fit on at most this many of the latest readings, widened when a
      model needs more to see ``min_periods`` whole periods (so cost is flat in history length).
    * ``smooth``: None (default) fits the raw readings. A window (points or '2h') fits a
      trailing rolling mean instead. Raw is the default because smoothing lags the signal by
      half a window and correlates the noise: the reference demo measured about twice the
      MAE when fitting smoothed readings.

    Seasons: every model takes ``periods`` (one duration or several, '24h' or ('24h', '7d'),
    shortest first as detection orders them; empty for none) and nothing else names them.
    Single-season models (``single_season = True``) model the first and need history for it
    only; the others model every period.

    Subclasses set ``min_periods`` (whole periods of ``season_`` needed) and implement
    ``_fit(series)`` and either ``predict_at(index)`` (time-feature models) or
    ``_predict_steps(horizon)`` (regular-step models).
    """

    min_periods = 2
    single_season = False
    interval: DurationLike | None = None
    max_train_points: int | None = DEFAULT_MAX_TRAIN_POINTS
    smooth: int | DurationLike | None = None
    registry_name: str  # set by the registry (get_model), absent otherwise
    intervals_: ConformalIntervals  # attached by conformal.with_intervals, absent otherwise

    # --- estimator manners -------------------------------------------------------------
    @classmethod
    def _param_names(cls) -> list[str]:
        sig = inspect.signature(cls.__init__)
        return [p for p in sig.parameters if p != "self" and not p.startswith("_")]

    def get_params(self) -> dict[str, Any]:
        """The constructor parameters (cache keys and cloning are built from these)."""
        return {name: getattr(self, name) for name in self._param_names()}

    def clone(self) -> Forecaster:
        """A new, unfitted forecaster with the same parameters."""
        twin = type(self)(**self.get_params())
        if hasattr(self, "registry_name"):
            twin.registry_name = self.registry_name
        return twin

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"

    @property
    def name(self) -> str:
        return getattr(self, "registry_name", type(self).__name__)

    def seasonal_period(self) -> pd.Timedelta | None:
        """The main season (used for MASE and by single-season models): the first of the
        model's ``periods`` when it has that parameter; None when there is none."""
        periods = as_periods(getattr(self, "periods", None))
        return periods[0] if periods else None

    def history_period(self) -> pd.Timedelta | None:
        """The longest season modelled: ``min_periods`` of it are needed to fit."""
        periods = as_periods(getattr(self, "periods", None))
        if self.single_season or not periods:
            return self.seasonal_period()
        return max(periods)

    # --- fit ----------------------------------------------------------------------------
    def _window(self, interval: pd.Timedelta) -> int | None:
        """How many of the latest readings to train on."""
        if self.max_train_points is None:
            return None
        season = self.history_period()
        need = 0 if season is None else int(np.ceil(self.min_periods * season / interval)) + 1
        return max(int(self.max_train_points), need)

    def _forget_fit(self) -> None:
        """Drop learned state (``name_``), attached intervals included: refitting starts clean."""
        for attr in [a for a in vars(self) if a.endswith("_") and not a.startswith("_")]:
            delattr(self, attr)

    def fit(self, series: pd.Series) -> Forecaster:
        """Learn from ``series`` (float values on a tz-aware UTC index); returns ``self``."""
        self._forget_fit()
        # Bounded before cleaning, so a 1M-point history costs what a few thousand do.
        budget = 4 * self.max_train_points if self.max_train_points else None
        s = clean(tail(series, budget))
        if len(s) < 2:
            raise NotEnoughData(f"need at least 2 readings to forecast, have {len(s)}")
        interval = (
            parse_duration(self.interval, field="interval") if self.interval else None
        ) or infer_interval(s.index)
        window = self._window(interval)
        if window is not None and budget is not None and window > len(s) and len(series) > budget:
            s = clean(tail(series, 2 * window))  # a long season needs a wider window
        s = tail(s, window)
        if self.smooth is not None:
            s = rolling_mean(s, self.smooth)
        season = self.history_period()
        if season is not None:
            require_history(s, season, self.min_periods, interval)
        self.interval_ = interval
        self.last_ts_ = s.index[-1]
        self.n_train_ = len(s)
        self._fit(s)
        return self

    def _fit(self, series: pd.Series) -> None:
        raise NotImplementedError

    # --- predict ------------------------------------------------------------------------
    def _check_fitted(self) -> None:
        if not hasattr(self, "last_ts_"):
            raise NotFitted(f"{type(self).__name__} is not fitted yet: call fit(series) first")

    def predict(self, horizon: int) -> pd.DataFrame:
        """The next ``horizon`` steps: column ``mean``, plus bands when intervals are attached.

        Any positive horizon is served, even far beyond the history: time-feature models
        extrapolate their cycles, regular-step models iterate their recursion.
        """
        self._check_fitted()
        if int(horizon) != horizon or horizon < 1:
            raise InputError(f"horizon must be a positive integer, got {horizon!r}")
        horizon = int(horizon)
        index = future_index(self.last_ts_, self.interval_, horizon)
        if hasattr(self, "predict_at"):
            mean = self.predict_at(index)
        else:
            mean = self._predict_steps(horizon)
        frame = pd.DataFrame({"mean": np.asarray(mean, dtype=np.float64)}, index=index)
        intervals = getattr(self, "intervals_", None)
        return intervals.apply(frame) if intervals is not None else frame

    def _predict_steps(self, horizon: int) -> np.ndarray:
        raise NotImplementedError
