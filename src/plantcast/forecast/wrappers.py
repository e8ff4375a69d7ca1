"""Forecasters made of forecasters: ``auto`` (best or blend by backtest), ensembles, bands."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from plantcast.core.errors import NotEnoughData, Refused
from plantcast.core.timeutil import DurationLike
from plantcast.forecast.backtest import BacktestResult, backtest
from plantcast.forecast.base import Forecaster
from plantcast.forecast.catalog import base_model
from plantcast.forecast.conformal import DEFAULT_LEVELS, with_intervals
from plantcast.forecast.features import Periods, future_index

# Every family: statistical (mstl, ets, theta), lag models (follow the level, learn shapes), the
# demo's time-feature models and the seasonal naive baseline. Choosing costs one backtest of each.
DEFAULT_CANDIDATES = (
    "mstl",
    "lag_gbm",
    "lag_linear",
    "ets",
    "theta",
    "fourier_linear",
    "svr",
    "random_forest",
    "seasonal_naive",
)
ENSEMBLE_SIZES = (2, 3)  # blends of the best few tried beside the single best
# A blend must beat the best single model by this factor: with a few inner origins, blends
# won by noise (taylor, 14 origins: auto 0.182 with blends on equal terms vs mstl 0.155).
BLEND_MARGIN = 0.95


def forecast_after(model: Forecaster, series: pd.Series, horizon: int) -> pd.DataFrame:
    """``horizon`` steps after ``series``' last reading from an earlier fit, without refitting.

    Lag and time-feature models forecast from the latest readings (``forecast_from``); models
    with only ``predict_at`` evaluate it on the new grid; the rest (mstl, ets) extend their own
    forecast from the fit's last reading and keep the steps that lie ahead.
    """
    if hasattr(model, "forecast_from"):
        return model.forecast_from(series, horizon)
    index = future_index(series.index[-1], model.interval_, horizon)
    if hasattr(model, "predict_at"):
        return pd.DataFrame({"mean": model.predict_at(index)}, index=index)
    behind = max(0, round((series.index[-1] - model.last_ts_) / model.interval_))
    mean = model.predict(horizon + behind)["mean"].to_numpy()[behind:]
    return pd.DataFrame({"mean": mean}, index=index)


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
        expected: np.ndarray = self.model_.predict_at(index)
        return expected

    def forecast_from(self, series: pd.Series, horizon: int) -> pd.DataFrame:
        """See ``forecast_after``: the inner model's forecast after ``series``' last reading."""
        self._check_fitted()
        return forecast_after(self.model_, series, horizon)

    def _adopt(self, fitted: Forecaster) -> None:
        self.model_ = fitted
        self.interval_, self.last_ts_ = fitted.interval_, fitted.last_ts_
        self.n_train_ = fitted.n_train_


class EnsembleForecaster(Forecaster):
    """A weighted mean (or the median) of fitted forecasters; made by ``AutoForecaster``."""

    def __init__(
        self,
        members: Sequence[Forecaster] = (),
        weights: Sequence[float] | None = None,
        combine: str = "mean",
    ) -> None:
        self.members = members
        self.weights = weights
        self.combine = combine

    @property
    def interval(self) -> DurationLike | None:  # type: ignore[override]  # the members'
        return self.members[0].interval if self.members else None

    def seasonal_period(self) -> pd.Timedelta | None:
        return self.members[0].seasonal_period() if self.members else None

    def fit(self, series: pd.Series) -> EnsembleForecaster:
        self._forget_fit()
        self.members_ = [m.clone().fit(series) for m in self.members]
        first = self.members_[0]
        self.interval_, self.last_ts_ = first.interval_, first.last_ts_
        self.n_train_ = max(m.n_train_ for m in self.members_)
        return self

    def _blend(self, columns: list[np.ndarray]) -> np.ndarray:
        stack = np.vstack(columns)
        if self.combine == "median":
            median: np.ndarray = np.median(stack, axis=0)
            return median
        w = np.ones(len(columns)) if self.weights is None else np.asarray(self.weights, float)
        mean: np.ndarray = (w / w.sum()) @ stack
        return mean

    def predict(self, horizon: int) -> pd.DataFrame:
        self._check_fitted()
        frames = [m.predict(horizon) for m in self.members_]
        out = pd.DataFrame({"mean": self._blend([f["mean"].to_numpy() for f in frames])})
        out.index = frames[0].index
        intervals = getattr(self, "intervals_", None)
        return intervals.apply(out) if intervals is not None else out

    def forecast_from(self, series: pd.Series, horizon: int) -> pd.DataFrame:
        """Each member's ``forecast_after`` the latest reading, blended."""
        self._check_fitted()
        frames = [forecast_after(m, series, horizon) for m in self.members_]
        mean = self._blend([f["mean"].to_numpy() for f in frames])
        return pd.DataFrame({"mean": mean}, index=frames[0].index)


def blend_scores(
    results: dict[str, BacktestResult], sizes: Sequence[int] = ENSEMBLE_SIZES
) -> dict[str, dict[str, Any]]:
    """Backtest MASE of blends of the best few candidates, on the origins they share.

    Returns {label: {"members": [...], "weights": [...] | None, "combine": ..., "mase": ...}}
    for the inverse-MASE weighted mean of the best 2 and 3 and the median of the best 3.
    """
    ranked = sorted(
        (n for n, r in results.items() if np.isfinite(r.metrics["mase"])),
        key=lambda n: results[n].metrics["mase"],
    )
    out = {}
    for size in sizes:
        names = ranked[:size]
        if len(names) < size:
            break
        keys = ["origin", "step"]
        merged = results[names[0]].forecasts[[*keys, "y", "scale"]]
        for n in names:
            part = results[n].forecasts[[*keys, "mean"]].rename(columns={"mean": n})
            merged = merged.merge(part, on=keys)
        if merged.empty:
            continue
        inv = np.array([1.0 / max(results[n].metrics["mase"], 1e-9) for n in names])
        stack = merged[names].to_numpy().T
        options = {"mean": (inv / inv.sum()) @ stack}
        if size >= 3:
            options["median"] = np.median(stack, axis=0)
        for combine, blend in options.items():
            err = np.abs(merged["y"].to_numpy() - blend) / merged["scale"].to_numpy()
            label = f"{combine}({'+'.join(names)})"
            out[label] = {
                "members": names,
                "weights": list(inv / inv.sum()) if combine == "mean" else None,
                "combine": combine,
                "mase": float(np.nanmean(err)),
            }
    return out


class AutoForecaster(_Delegating):
    """Per series, backtests each candidate and becomes the best one, or a blend of the best few.

    Candidates are registry names sharing ``periods``, scored by mean MASE over a rolling-origin
    backtest (``windows`` origins ``step`` readings apart, ``horizon`` steps) on the series' own
    latest history. Blends of the best 2–3 (inverse-MASE weighted mean, median of 3) are scored
    on the same origins and win only when they score below ``BLEND_MARGIN`` × the best single
    model. ``chosen_`` names the winner, ``scores_`` holds every score behind the choice
    (candidates and blends), ``skipped_`` the candidates that could not be backtested. If none
    can be, the first candidate that can be fitted is used. The cost is ``windows`` fits per
    candidate: a background fit, never one for a page's refresh path (``fits_slowly``).
    """

    fits_slowly = True

    def __init__(
        self,
        candidates: Sequence[str] = DEFAULT_CANDIDATES,
        periods: Periods = ("24h",),
        horizon: int = 48,
        windows: int = 3,
        step: int | None = None,
        ensemble: bool = True,
        interval: DurationLike | None = None,
        max_train_points: int | None = None,
    ) -> None:
        self.candidates = candidates
        self.periods = periods
        self.horizon = horizon
        self.windows = windows
        self.step = step
        self.ensemble = ensemble
        self.interval = interval
        self.max_train_points = max_train_points

    def _candidate(self, name: str) -> Forecaster:
        """A candidate with auto's periods and interval; its own training bound unless auto
        was given one (``max_train_points=None``: 2,016 readings, ets and theta 1,008)."""
        bound = {} if self.max_train_points is None else {"max_train_points": self.max_train_points}
        return base_model(name, periods=self.periods, interval=self.interval, **bound)

    def fit(self, series: pd.Series) -> AutoForecaster:
        self._forget_fit()
        results, skipped = {}, {}
        for name in self.candidates:
            try:
                model = self._candidate(name)
                results[name] = backtest(series, model, self.horizon, self.step, self.windows)
            except NotEnoughData as exc:
                skipped[name] = str(exc)
        scores = {name: float(r.metrics["mase"]) for name, r in results.items()}
        blends = blend_scores(results) if self.ensemble else {}
        scores.update({label: b["mase"] for label, b in blends.items()})
        finite = {k: v for k, v in scores.items() if not math.isnan(v)}
        self.scores_, self.skipped_ = scores, skipped
        if not finite:
            self._fit_fallback(series)
            return self
        best = min((k for k in finite if k in results), key=finite.__getitem__)
        blend = min((k for k in finite if k in blends), key=finite.__getitem__, default=None)
        won = blend is not None and finite[blend] < BLEND_MARGIN * finite[best]
        self.chosen_ = blend if won and blend is not None else best
        if self.chosen_ in blends:
            b = blends[self.chosen_]
            members = [self._candidate(n) for n in b["members"]]
            ens = EnsembleForecaster(members, b["weights"], b["combine"])
            self._adopt(ens.fit(series))
        else:
            self._adopt(self._candidate(self.chosen_).fit(series))
        return self

    def _fit_fallback(self, series: pd.Series) -> None:
        """No backtest possible (short history): the first candidate that fits at all."""
        last = None
        for name in self.candidates:
            try:
                self._adopt(self._candidate(name).fit(series))
                self.chosen_ = name
                return
            except NotEnoughData as exc:
                last = exc
        raise last or NotEnoughData("no candidate could be fitted")


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
        levels: Sequence[int] = DEFAULT_LEVELS,
    ) -> None:
        self.model = model
        self.horizon = horizon
        self.windows = windows
        self.step = step
        self.levels = levels

    @property
    def interval(self) -> DurationLike | None:  # type: ignore[override]  # the model's
        return self.model.interval

    def seasonal_period(self) -> pd.Timedelta | None:
        return self.model.seasonal_period()

    def fit(self, series: pd.Series) -> ConformalForecaster:
        self._forget_fit()
        step = self.step or max(1, self.horizon // 4)
        self.backtest_ = backtest(series, self.model, self.horizon, step, self.windows, self.levels)
        self._adopt(with_intervals(self.model.clone().fit(series), self.backtest_.intervals))
        return self
