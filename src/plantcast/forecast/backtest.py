"""Rolling-origin backtest: refit before each origin, score, and calibrate conformal bands."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from plantcast.core.errors import InputError, NotEnoughData
from plantcast.core.timeutil import parse_duration
from plantcast.forecast.conformal import (
    DEFAULT_LEVELS,
    ConformalIntervals,
    cross_fold,
)
from plantcast.forecast.features import infer_interval
from plantcast.forecast.metrics import evaluate, naive_scale
from plantcast.forecast.preprocess import clean, tail

METRICS = ("mae", "rmse", "mase", "smape")


@dataclass
class BacktestResult:
    """Per-origin forecasts vs actuals, their metrics, and the calibrated intervals.

    ``forecasts`` has one row per (origin, step): ``origin``, ``ts``, ``step``, ``y``,
    ``mean``, ``scale`` (the MASE denominator of that origin) and ``lower_L``/``upper_L``
    bands cross-calibrated in two blocks of origins (earlier and later half: a band never
    saw residuals of its own block).
    ``coverage`` is the empirical coverage of those honest bands; ``intervals`` is calibrated
    on every origin, to attach to a model fitted on the full series.
    """

    model_name: str
    horizon: int
    interval: pd.Timedelta
    forecasts: pd.DataFrame
    metrics: dict[str, float]
    intervals: ConformalIntervals
    coverage: dict[int, float] = field(default_factory=dict)

    @property
    def origins(self) -> list[pd.Timestamp]:
        return list(self.forecasts["origin"].unique())

    def per_origin(self) -> pd.DataFrame:
        return evaluate(self.forecasts, METRICS, by="origin")

    def per_step(self) -> pd.DataFrame:
        return evaluate(self.forecasts, METRICS, by="step")


def _origins(s: pd.Series, interval, horizon: int, step: int, windows: int) -> list:
    last_origin = s.index[-1] - horizon * interval
    times = [last_origin - j * step * interval for j in range(windows)]
    return sorted(t for t in times if t > s.index[0])


def _one_origin(s, model, origin, horizon, interval, season_steps) -> pd.DataFrame:
    train = s[s.index <= origin]
    fitted = model.clone().fit(train)
    fc = fitted.predict(horizon)[["mean"]]
    where = s.index.get_indexer(fc.index, method="nearest", tolerance=interval / 2)
    y = np.where(where >= 0, s.to_numpy()[np.maximum(where, 0)], np.nan)
    window = tail(train, (fitted.n_train_ or len(train)) + season_steps).to_numpy()
    return pd.DataFrame(
        {
            "origin": origin,
            "ts": fc.index,
            "step": np.arange(1, horizon + 1),
            "y": y,
            "mean": fc["mean"].to_numpy(),
            "scale": naive_scale(window, season_steps),
        }
    )


def backtest(
    series: pd.Series,
    model,
    horizon: int,
    step: int | None = None,
    windows: int = 5,
    levels=DEFAULT_LEVELS,
) -> BacktestResult:
    """Score ``model`` at ``windows`` rolling origins ``step`` readings apart (default: horizon).

    The last origin leaves exactly ``horizon`` steps of actuals. Each origin fits a fresh clone
    on readings up to and including the origin only — no look-ahead. Origins that lack the
    history the model needs are skipped; if none is left, NotEnoughData says so.
    """
    if horizon < 1 or windows < 1:
        raise InputError("horizon and windows must be positive")
    s = clean(series)
    if len(s) < 3:
        raise NotEnoughData(f"need at least 3 readings to backtest, have {len(s)}")
    interval = parse_duration(model.interval) if model.interval else infer_interval(s.index)
    season = model.seasonal_period()
    season_steps = max(1, round(season / interval)) if season is not None else 1
    frames, skipped = [], None
    for origin in _origins(s, interval, horizon, step or horizon, windows):
        try:
            frames.append(_one_origin(s, model, origin, horizon, interval, season_steps))
        except NotEnoughData as exc:
            skipped = exc
    if not frames:
        raise NotEnoughData(f"no backtest origin has enough history: {skipped}")
    forecasts = pd.concat(frames, ignore_index=True)
    residuals = (forecasts["y"] - forecasts["mean"]).to_numpy().reshape(len(frames), horizon)
    honest = cross_fold(residuals, levels)
    for level in levels:
        forecasts[f"lower_{level}"] = forecasts["mean"] - honest[level].ravel()
        forecasts[f"upper_{level}"] = forecasts["mean"] + honest[level].ravel()
    metrics = evaluate(forecasts, METRICS)
    cover = {}
    for level in levels:
        ok = forecasts[f"lower_{level}"].notna() & forecasts["y"].notna()
        inside = forecasts["y"].between(forecasts[f"lower_{level}"], forecasts[f"upper_{level}"])
        cover[level] = float(inside[ok].mean()) if ok.any() else float("nan")
        metrics[f"coverage_{level}"] = cover[level]
    return BacktestResult(
        model_name=model.name,
        horizon=horizon,
        interval=interval,
        forecasts=forecasts,
        metrics=metrics,
        intervals=ConformalIntervals.calibrate(residuals, levels),
        coverage=cover,
    )
