"""The model registry: names to factories, ``get_model(name, **params)`` returns it unfitted.

The base models live in ``catalog``; ``auto`` (``wrappers``) is built from them, so the
imports point one way: catalog ← wrappers ← registry.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from plantcast.forecast.base import Forecaster
from plantcast.forecast.catalog import BASE_MODELS, build
from plantcast.forecast.wrappers import AutoForecaster

MODELS: dict[str, Callable[..., Forecaster]] = {**BASE_MODELS, "auto": AutoForecaster}


def available_models() -> list[str]:
    """Registered model names."""
    return list(MODELS)


def get_model(name: str, **params: Any) -> Forecaster:
    """An unfitted forecaster by registry name, e.g. ``get_model("svr", periods=("24h",))``."""
    return build(MODELS, name, **params)
