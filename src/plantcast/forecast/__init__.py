"""Forecasting: pure models, backtests and prediction intervals on one sensor's series.

Every function here takes a ``pandas.Series`` of floats on a tz-aware UTC ``DatetimeIndex``
and returns frames; nothing does I/O or keeps global state (the cache is an explicit object).

The roles:

* **Forecaster** — the estimator protocol (``base.Forecaster``): ``fit(series) -> self``,
  ``predict(horizon) -> DataFrame`` indexed by the next ``horizon`` timestamps at the series'
  interval, column ``mean`` (and ``lower_80``/``upper_80``/``lower_95``/``upper_95`` when
  intervals are attached). ``__init__`` stores parameters, learned state ends in ``_``,
  ``get_params()`` feeds cache keys. Fitting uses a bounded window of the latest readings.
* **Time-feature models** — ``RegressionForecaster`` turns any scikit-learn regressor plus
  Fourier terms of time into a forecaster; ``fourier_linear``, ``svr`` and ``random_forest``
  are three configurations of it. With ``seasonal_naive`` they offer ``predict_at(index)``:
  expected values at any timestamp, which is what residual-based detectors need.
* **Regular-step models** — ``mstl``, ``ets`` and ``theta`` (statsforecast) resample to the
  interval.
* **Seasons** — every model takes ``periods`` ('24h' or ('24h', '7d'), shortest first; () for
  none), the one way seasons reach a model; single-season models use the first.
* **Registry** — ``get_model(name, **params)``, ``MODELS``, ``available_models()``; the base
  models are in ``catalog``; ``auto`` backtests candidates and becomes the best one per series.
* **Evaluation** — ``backtest`` (rolling origin, no look-ahead) returns a ``BacktestResult``
  with metrics (plain functions in ``metrics``) and conformal intervals; attach them with
  ``with_intervals`` or use ``ConformalForecaster``.
* **Cache** — ``ForecastCache.get_or_fit``: a refresh without new data refits nothing.
"""

from plantcast.forecast.backtest import BacktestResult, backtest
from plantcast.forecast.base import Forecaster, NotFitted
from plantcast.forecast.baselines import SeasonalNaiveForecaster
from plantcast.forecast.cache import ForecastCache
from plantcast.forecast.conformal import ConformalIntervals, with_intervals
from plantcast.forecast.features import fourier_terms, infer_interval, time_features
from plantcast.forecast.metrics import coverage, evaluate, mae, mase, rmse, smape
from plantcast.forecast.preprocess import rolling_mean
from plantcast.forecast.registry import MODELS, available_models, get_model
from plantcast.forecast.regression import REGRESSORS, RegressionForecaster
from plantcast.forecast.statistical import ETSForecaster, MSTLForecaster, ThetaForecaster
from plantcast.forecast.wrappers import AutoForecaster, ConformalForecaster

__all__ = [
    "MODELS",
    "REGRESSORS",
    "AutoForecaster",
    "BacktestResult",
    "ConformalForecaster",
    "ConformalIntervals",
    "ETSForecaster",
    "ForecastCache",
    "Forecaster",
    "MSTLForecaster",
    "NotFitted",
    "RegressionForecaster",
    "SeasonalNaiveForecaster",
    "ThetaForecaster",
    "available_models",
    "backtest",
    "coverage",
    "evaluate",
    "fourier_terms",
    "get_model",
    "infer_interval",
    "mae",
    "mase",
    "rmse",
    "rolling_mean",
    "smape",
    "time_features",
    "with_intervals",
]
