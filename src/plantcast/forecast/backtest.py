"""Rolling-origin backtest: refit before each origin, score, and calibrate conformal bands.

Every (model, origin) pair is an independent fit, so ``backtest_many`` can run them in worker
processes (joblib/loky) and give the same numbers as the serial loop: each task is a pure
function of the series, the model's parameters and the origin.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

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

if TYPE_CHECKING:
    from plantcast.forecast.base import Forecaster

METRICS = ("mae", "rmse", "mase", "smape")

# Intervals of time whose readings should not calibrate bands (injected events): (start, end),
# end None while the event is still active.
Exclusions = Sequence[tuple[pd.Timestamp, pd.Timestamp | None]]


@dataclass
class BacktestResult:
    """Per-origin forecasts vs actuals, their metrics, and the calibrated intervals.

    ``forecasts`` has one row per (origin, step): ``origin``, ``ts``, ``step``, ``y``,
    ``mean``, ``scale`` (the MASE denominator of that origin), ``excluded`` (the target time
    falls in an excluded interval, e.g. an injected event) and ``lower_L``/``upper_L`` bands
    cross-calibrated in two blocks of origins (earlier and later half: a band never saw
    residuals of its own block).
    ``coverage`` is the empirical coverage of those honest bands on the rows not excluded;
    ``intervals`` is calibrated on every origin (excluded rows left out), to attach to a
    model fitted on the full series. Accuracy metrics are over every row: events happened.
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


@dataclass(frozen=True)
class _Plan:
    """One model's backtest: the grid step, the MASE season in steps and the origins."""

    model: Forecaster
    interval: pd.Timedelta
    season_steps: int
    origins: list[pd.Timestamp]


def _origins(
    s: pd.Series, interval: pd.Timedelta, horizon: int, step: int, windows: int
) -> list[pd.Timestamp]:
    last_origin = s.index[-1] - horizon * interval
    times = [last_origin - j * step * interval for j in range(windows)]
    return sorted(t for t in times if t > s.index[0])


def _plan(s: pd.Series, model: Forecaster, horizon: int, step: int, windows: int) -> _Plan:
    interval = parse_duration(model.interval) if model.interval else infer_interval(s.index)
    season = model.seasonal_period()
    season_steps = max(1, round(season / interval)) if season is not None else 1
    return _Plan(model, interval, season_steps, _origins(s, interval, horizon, step, windows))


def _one_origin(
    s: pd.Series,
    model: Forecaster,
    origin: pd.Timestamp,
    horizon: int,
    interval: pd.Timedelta,
    season_steps: int,
) -> pd.DataFrame:
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


class FitFailed(Exception):
    """A model's fit or forecast raised at an origin: that model is reported as failed (with
    why), the other models' backtests go on."""


def _task(
    s: pd.Series,
    model: Forecaster,
    origin: pd.Timestamp,
    horizon: int,
    interval: pd.Timedelta,
    season_steps: int,
) -> pd.DataFrame | NotEnoughData | FitFailed:
    """One fit and forecast; a lack of history is returned, not raised (it skips the origin),
    and so is a model that could not be fitted (it fails that model only)."""
    try:
        return _one_origin(s, model, origin, horizon, interval, season_steps)
    except NotEnoughData as exc:
        return exc
    except Exception as exc:  # a library's refusal (e.g. statsforecast's) sinks its model only
        return FitFailed(f"{type(exc).__name__}: {exc}")


def excluded_mask(ts: pd.DatetimeIndex | pd.Series, exclude: Exclusions | None) -> np.ndarray:
    """True where a timestamp falls in ``[start, end]`` of any excluded interval."""
    t = pd.DatetimeIndex(ts)
    out = np.zeros(len(t), dtype=bool)
    for start, end in exclude or ():
        hit = t >= start
        if end is not None:
            hit &= t <= end
        out |= np.asarray(hit)
    return out


def _assemble(
    plan: _Plan,
    frames: list[pd.DataFrame],
    horizon: int,
    levels: Sequence[int],
    exclude: Exclusions | None,
) -> BacktestResult:
    forecasts = pd.concat(frames, ignore_index=True)
    forecasts["excluded"] = excluded_mask(forecasts["ts"], exclude)
    residuals = (forecasts["y"] - forecasts["mean"]).to_numpy().reshape(len(frames), horizon)
    mask = forecasts["excluded"].to_numpy().reshape(len(frames), horizon)
    honest = cross_fold(residuals, levels, mask=mask)
    for level in levels:
        forecasts[f"lower_{level}"] = forecasts["mean"] - honest[level].ravel()
        forecasts[f"upper_{level}"] = forecasts["mean"] + honest[level].ravel()
    metrics = evaluate(forecasts, METRICS)
    cover = {}
    kept = forecasts[~forecasts["excluded"]]
    for level in levels:
        ok = kept[f"lower_{level}"].notna() & kept["y"].notna()
        inside = kept["y"].between(kept[f"lower_{level}"], kept[f"upper_{level}"])
        cover[level] = float(inside[ok].mean()) if ok.any() else float("nan")
        metrics[f"coverage_{level}"] = cover[level]
    return BacktestResult(
        model_name=plan.model.name,
        horizon=horizon,
        interval=plan.interval,
        forecasts=forecasts,
        metrics=metrics,
        intervals=ConformalIntervals.calibrate(residuals, levels, mask=mask),
        coverage=cover,
    )


def _workers(n_jobs: int | None, tasks: int) -> int:
    """joblib's convention (-1: every core), capped by the number of tasks."""
    cores = os.cpu_count() or 1
    n = cores if n_jobs is None or n_jobs == -1 else (cores + 1 + n_jobs if n_jobs < 0 else n_jobs)
    return max(1, min(n, tasks))


def backtest_many(
    series: pd.Series,
    models: Sequence[Forecaster],
    horizon: int,
    step: int | None = None,
    windows: int = 5,
    levels: Sequence[int] = DEFAULT_LEVELS,
    *,
    exclude: Exclusions | None = None,
    n_jobs: int | None = 1,
    on_progress: Callable[[int, int, str], None] | None = None,
) -> tuple[dict[str, BacktestResult], dict[str, str]]:
    """Backtest several models on the same origins: results by name, and failures with why.

    ``n_jobs`` > 1 (or -1: every core) runs the (model, origin) fits in worker processes
    (joblib, loky); the results are those of the serial loop (each fit is a pure function of
    its inputs; random models carry their own seed). Tasks are dispatched origin-major, so the
    expensive models spread over the workers instead of queuing at the end. ``exclude`` lists
    intervals of time left out of interval calibration (see ``BacktestResult``).
    ``on_progress(done, total, label)`` is called as fits complete.
    """
    if horizon < 1 or windows < 1:
        raise InputError("horizon and windows must be positive")
    s = clean(series)
    if len(s) < 3:
        raise NotEnoughData(f"need at least 3 readings to backtest, have {len(s)}")
    plans = [_plan(s, model, horizon, step or horizon, windows) for model in models]
    tasks = [
        (i, j)
        for j in range(max((len(p.origins) for p in plans), default=0))
        for i, p in enumerate(plans)
        if j < len(p.origins)
    ]
    outputs: dict[tuple[int, int], object] = {}

    def args(i: int, j: int) -> tuple[pd.Series, Forecaster, pd.Timestamp, int, pd.Timedelta, int]:
        p = plans[i]
        return (s, p.model, p.origins[j], horizon, p.interval, p.season_steps)

    def done(key: tuple[int, int], value: object) -> None:
        outputs[key] = value
        if on_progress:
            plan = plans[key[0]]
            label = f"{plan.model.name} {key[1] + 1}/{len(plan.origins)}"
            on_progress(len(outputs), len(tasks), label)

    workers = _workers(n_jobs, len(tasks))
    if workers == 1:
        for key in tasks:
            done(key, _task(*args(*key)))
    else:
        from joblib import Parallel, delayed

        run = Parallel(n_jobs=workers, backend="loky", return_as="generator_unordered")
        labelled = (delayed(_keyed)(key, *args(*key)) for key in tasks)
        for key, value in run(labelled):
            done(key, value)

    results, failed = {}, {}
    for i, plan in enumerate(plans):
        got = [outputs[(i, j)] for j in range(len(plan.origins))]
        frames = [g for g in got if isinstance(g, pd.DataFrame)]
        broken = next((g for g in got if isinstance(g, FitFailed)), None)
        if broken is not None:
            failed[plan.model.name] = f"could not be fitted: {broken}"
        elif frames:
            results[plan.model.name] = _assemble(plan, frames, horizon, levels, exclude)
        else:
            skipped = next((g for g in reversed(got) if isinstance(g, Exception)), None)
            why = (
                skipped
                if skipped is not None
                else f"the series is shorter than one horizon ({horizon} steps) plus training"
            )
            failed[plan.model.name] = f"no backtest origin has enough history: {why}"
    return results, failed


def _keyed(
    key: tuple[int, int], *args: Any
) -> tuple[tuple[int, int], pd.DataFrame | NotEnoughData | FitFailed]:
    return key, _task(*args)


def backtest(
    series: pd.Series,
    model: Forecaster,
    horizon: int,
    step: int | None = None,
    windows: int = 5,
    levels: Sequence[int] = DEFAULT_LEVELS,
    *,
    exclude: Exclusions | None = None,
    n_jobs: int | None = 1,
) -> BacktestResult:
    """Score ``model`` at ``windows`` rolling origins ``step`` readings apart (default: horizon).

    The last origin leaves exactly ``horizon`` steps of actuals. Each origin fits a fresh clone
    on readings up to and including the origin only — no look-ahead. Origins that lack the
    history the model needs are skipped; if none is left, NotEnoughData says so.
    """
    results, failed = backtest_many(
        series, [model], horizon, step, windows, levels, exclude=exclude, n_jobs=n_jobs
    )
    if failed:
        raise NotEnoughData(next(iter(failed.values())))
    return next(iter(results.values()))
