"""The base models by name (every forecaster not made of other forecasters), and their factory."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from plantcast.core.errors import InputError
from plantcast.forecast.base import Forecaster
from plantcast.forecast.baselines import SeasonalNaiveForecaster
from plantcast.forecast.lags import LagForecaster
from plantcast.forecast.regression import RegressionForecaster
from plantcast.forecast.statistical import ETSForecaster, MSTLForecaster, ThetaForecaster


def _regression(regressor: str) -> Callable[..., Forecaster]:
    def make(**params: Any) -> Forecaster:
        return RegressionForecaster(regressor=regressor, **params)

    return make


def _lags(regressor: str, **defaults: Any) -> Callable[..., Forecaster]:
    def make(**params: Any) -> Forecaster:
        return LagForecaster(regressor=regressor, **{**defaults, **params})

    return make


# Every one takes ``periods`` (see ``Forecaster``): the one way seasons reach a model.
BASE_MODELS: dict[str, Callable[..., Forecaster]] = {
    "seasonal_naive": SeasonalNaiveForecaster,
    "fourier_linear": _regression("linear"),
    "svr": _regression("svr"),
    "random_forest": _regression("random_forest"),
    "mstl": MSTLForecaster,
    "ets": ETSForecaster,
    "theta": ThetaForecaster,
    # lags 1..24 and one season back, on the seasonal difference (see forecast/lags.py)
    "lag_gbm": _lags("lightgbm", lags=24, diff="season"),
    "lag_linear": _lags("linear", lags=24, diff="season"),
}


def build(models: dict[str, Callable[..., Forecaster]], name: str, **params: Any) -> Forecaster:
    """An unfitted forecaster ``name`` from ``models``, tagged with its registry name."""
    if name not in models:
        raise InputError(f"unknown model {name!r}; choose from {', '.join(models)}", field="model")
    try:
        model = models[name](**params)
    except TypeError as exc:
        raise InputError(f"bad parameters for {name!r}: {exc}", field="params") from None
    model.registry_name = name
    return model


def base_model(name: str, **params: Any) -> Forecaster:
    """An unfitted base model by name (what ``auto`` and ensembles are made of)."""
    return build(BASE_MODELS, name, **params)
