"""The model registry: names to factories, ``get_model(name, **params)`` returns it unfitted."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from plantcast.core.errors import InputError
from plantcast.forecast.base import Forecaster
from plantcast.forecast.baselines import SeasonalNaiveForecaster
from plantcast.forecast.features import Periods, as_periods
from plantcast.forecast.lags import LagForecaster
from plantcast.forecast.regression import RegressionForecaster
from plantcast.forecast.statistical import ETSForecaster, MSTLForecaster
from plantcast.forecast.wrappers import AutoForecaster


def _regression(regressor: str) -> Callable[..., Forecaster]:
    def make(**params: Any) -> Forecaster:
        return RegressionForecaster(regressor=regressor, **params)

    return make


def _one_period(cls: Callable[..., Forecaster]) -> Callable[..., Forecaster]:
    """Single-season models also accept ``periods`` and use the first one."""

    def make(periods: Periods = None, **params: Any) -> Forecaster:
        if periods is not None and "period" not in params:
            params["period"] = as_periods(periods)[0]
        return cls(**params)

    return make


def _lags(regressor: str, **defaults: Any) -> Callable[..., Forecaster]:
    def make(**params: Any) -> Forecaster:
        return LagForecaster(regressor=regressor, **{**defaults, **params})

    return make


MODELS: dict[str, Callable[..., Forecaster]] = {
    "seasonal_naive": _one_period(SeasonalNaiveForecaster),
    "fourier_linear": _regression("linear"),
    "svr": _regression("svr"),
    "random_forest": _regression("random_forest"),
    "mstl": MSTLForecaster,
    "ets": _one_period(ETSForecaster),
    # lags 1..24 and one season back, on the seasonal difference (see forecast/lags.py)
    "lag_gbm": _lags("lightgbm", lags=24, diff="season"),
    "lag_linear": _lags("linear", lags=24, diff="season"),
    "auto": AutoForecaster,
}


def available_models() -> list[str]:
    """Registered model names."""
    return list(MODELS)


def get_model(name: str, **params: Any) -> Forecaster:
    """An unfitted forecaster by registry name, e.g. ``get_model("svr", periods=("24h",))``."""
    if name not in MODELS:
        raise InputError(f"unknown model {name!r}; choose from {', '.join(MODELS)}", field="model")
    try:
        model = MODELS[name](**params)
    except TypeError as exc:
        raise InputError(f"bad parameters for {name!r}: {exc}", field="params") from None
    model.registry_name = name
    return model
