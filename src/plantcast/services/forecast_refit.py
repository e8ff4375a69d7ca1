"""One sensor's refit for the forecast store: fit, forecast, calibrate bands, score (pure).

``auto`` chooses its model by backtesting every candidate, which costs many times a plain
fit; the store keeps the choice (:class:`Choice`) so most refits fit only the chosen model or
blend. Bands and scores come from a backtest of what was chosen, never of ``auto`` itself
(that would re-choose at every origin). No store here: this runs in-process or on a Dask worker.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from plantcast.core.errors import NotEnoughData
from plantcast.forecast import backtest, get_model
from plantcast.forecast.base import Forecaster
from plantcast.forecast.catalog import base_model
from plantcast.forecast.wrappers import AutoForecaster, EnsembleForecaster
from plantcast.services.forecasting import ForecastSpec, SensorData

BAND_COLUMNS = ("mean", "lower_80", "upper_80", "lower_95", "upper_95")


@dataclass(frozen=True)
class Choice:
    """``auto``'s choice: one base model, or a blend of a few (``members``, ``weights``,
    ``combine``), with the backtest MASE of every candidate behind it. ``first``: not a choice
    but a sensor's first forecast, made with one quick base model before ``auto`` has chosen
    (the next refresh chooses)."""

    chosen: str
    members: tuple[str, ...] = ()
    weights: tuple[float, ...] | None = None
    combine: str = "mean"
    scores: dict[str, float] = field(default_factory=dict)
    first: bool = False

    def to_json(self) -> str:
        return json.dumps(
            {
                "chosen": self.chosen,
                "members": list(self.members),
                "weights": None if self.weights is None else list(self.weights),
                "combine": self.combine,
                "scores": finite(self.scores),
                **({"first": True} if self.first else {}),
            }
        )

    @classmethod
    def from_json(cls, text: str | None) -> Choice | None:
        if not text:
            return None
        d = json.loads(text)
        weights = d.get("weights")
        return cls(
            d["chosen"],
            tuple(d.get("members") or ()),
            None if weights is None else tuple(weights),
            d.get("combine", "mean"),
            dict(d.get("scores") or {}),
            bool(d.get("first", False)),
        )


@dataclass
class Refit:
    """What a refit made: the forecast (``BAND_COLUMNS`` by time), how, and how well."""

    sensor: str
    model: str  # asked for
    chosen: str  # what forecast
    horizon: int
    frame: pd.DataFrame
    fitted_on: int
    trained_until: pd.Timestamp
    scores: dict[str, float]  # the chosen model's backtest metrics (empty: too short to score)
    choice: Choice | None  # auto only
    reselected: bool  # auto chose anew in this refit


def finite(values: dict[str, Any]) -> dict[str, float]:
    return {k: float(v) for k, v in values.items() if v is not None and math.isfinite(float(v))}


def _bound(spec: ForecastSpec) -> dict[str, Any]:
    return {} if spec.max_train_points is None else {"max_train_points": spec.max_train_points}


def _candidate(name: str, spec: ForecastSpec) -> Forecaster:
    """A base model as ``auto`` builds its candidates (its periods, its training bound)."""
    return base_model(name, periods=spec.periods, **_bound(spec))


def build_model(spec: ForecastSpec, choice: Choice | None) -> Forecaster:
    """The unfitted model a refit fits: ``spec.model``, or ``auto``'s kept choice."""
    if choice is None:
        return get_model(spec.model, **spec.model_params())
    if choice.members:
        members = [_candidate(n, spec) for n in choice.members]
        return EnsembleForecaster(members, choice.weights, choice.combine)
    return _candidate(choice.chosen, spec)


def choice_of(auto: AutoForecaster) -> Choice:
    """What a fitted ``auto`` chose, in a form a later refit can rebuild without choosing."""
    inner = auto.model_
    scores = finite(getattr(auto, "scores_", {}) or {})
    if isinstance(inner, EnsembleForecaster):
        names = tuple(m.name for m in inner.members)
        weights = None if inner.weights is None else tuple(float(w) for w in inner.weights)
        return Choice(auto.chosen_, names, weights, inner.combine, scores)
    return Choice(auto.chosen_, scores=scores)


def refit_data(data: SensorData, spec: ForecastSpec, kept: Choice | None = None) -> Refit:
    """Fit and forecast ``data``: for ``auto``, choose anew unless ``kept`` is given."""
    series = data.series
    reselected = spec.model == "auto" and kept is None
    if reselected:
        auto = get_model("auto", **spec.model_params())
        assert isinstance(auto, AutoForecaster)
        auto.fit(series)
        choice: Choice | None = choice_of(auto)
        fitted: Forecaster = auto.model_
    else:
        choice = kept if spec.model == "auto" else None
        fitted = build_model(spec, choice).fit(series)
    frame = fitted.predict(spec.horizon)[["mean"]]
    scores: dict[str, float] = {}
    if spec.intervals:
        try:
            result = backtest(
                series,
                build_model(spec, choice),
                spec.horizon,
                max(1, spec.horizon // 4),
                spec.windows,
                exclude=list(data.exclude),
            )
            frame = result.intervals.apply(frame)
            scores = finite(result.metrics)
        except NotEnoughData:
            pass  # too short to calibrate: the forecast goes without bands rather than fail
    return Refit(
        sensor=data.sensor,
        model=spec.model,
        chosen=choice.chosen if choice else spec.model,
        horizon=spec.horizon,
        frame=frame,
        fitted_on=fitted.n_train_,
        trained_until=series.index[-1],
        scores=scores,
        choice=choice,
        reselected=reselected,
    )


def points_json(frame: pd.DataFrame) -> str:
    """The forecast as the API serves it: [{"ts", "mean", "lower_80", …}], NaN as null."""
    cols = [c for c in BAND_COLUMNS if c in frame]
    points = []
    for ts, row in zip(frame.index, frame[cols].to_numpy().tolist(), strict=True):
        values = {c: (v if math.isfinite(v) else None) for c, v in zip(cols, row, strict=True)}
        if values["mean"] is not None:
            points.append({"ts": ts.isoformat(), **values})
    return json.dumps(points, separators=(",", ":"))


__all__ = ["BAND_COLUMNS", "Choice", "Refit", "build_model", "points_json", "refit_data"]
