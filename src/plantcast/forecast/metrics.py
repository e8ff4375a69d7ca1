"""Forecast metrics as plain functions of arrays, and ``evaluate`` over a backtest frame."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np
import numpy.typing as npt
import pandas as pd

# A metric function: f(y, yhat) -> a number.
Metric = Callable[[npt.ArrayLike, npt.ArrayLike], float]


def _pair(y: npt.ArrayLike, yhat: npt.ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    y, yhat = np.asarray(y, dtype=np.float64), np.asarray(yhat, dtype=np.float64)
    if y.shape != yhat.shape:
        raise ValueError(f"shapes differ: {y.shape} vs {yhat.shape}")
    return y, yhat


def mae(y: npt.ArrayLike, yhat: npt.ArrayLike) -> float:
    """Mean absolute error."""
    y, yhat = _pair(y, yhat)
    return float(np.mean(np.abs(y - yhat)))


def rmse(y: npt.ArrayLike, yhat: npt.ArrayLike) -> float:
    """Root mean squared error."""
    y, yhat = _pair(y, yhat)
    return float(np.sqrt(np.mean((y - yhat) ** 2)))


def smape(y: npt.ArrayLike, yhat: npt.ArrayLike) -> float:
    """Symmetric MAPE in percent, 0..200; a point where both are 0 counts as no error."""
    y, yhat = _pair(y, yhat)
    denom = np.abs(y) + np.abs(yhat)
    ratio = np.divide(2.0 * np.abs(y - yhat), denom, out=np.zeros_like(denom), where=denom > 0)
    return float(100.0 * np.mean(ratio))


def naive_scale(insample: npt.ArrayLike, season: int) -> float:
    """In-sample MAE of the seasonal naive forecast (naive-1 when the season exceeds history).

    Floored at a tiny multiple of the level, so a constant series gives a finite MASE.
    """
    x = np.asarray(insample, dtype=np.float64)
    m = season if 1 <= season < len(x) else 1
    if len(x) <= m:
        return float("nan")
    scale = float(np.mean(np.abs(x[m:] - x[:-m])))
    return max(scale, 1e-9 * max(1.0, float(np.mean(np.abs(x)))))


def mase(y: npt.ArrayLike, yhat: npt.ArrayLike, insample: npt.ArrayLike, season: int) -> float:
    """Mean absolute scaled error: MAE over the in-sample seasonal-naive MAE."""
    return mae(y, yhat) / naive_scale(insample, season)


def coverage(y: npt.ArrayLike, lower: npt.ArrayLike, upper: npt.ArrayLike) -> float:
    """Share of actuals inside [lower, upper]."""
    y, lower = _pair(y, lower)
    _, upper = _pair(y, upper)
    return float(np.mean((y >= lower) & (y <= upper)))


def _scaled_mae(frame: pd.DataFrame) -> float:
    return float(np.mean(np.abs(frame["y"] - frame["mean"]) / frame["scale"]))


def _apply(metric: str | Metric, frame: pd.DataFrame) -> tuple[str, float]:
    name = metric if isinstance(metric, str) else metric.__name__
    if name == "mase":  # needs each origin's own scale, carried in the frame's 'scale' column
        return name, _scaled_mae(frame)
    if name.startswith("coverage_"):
        level = name.removeprefix("coverage_")
        return name, coverage(frame["y"], frame[f"lower_{level}"], frame[f"upper_{level}"])
    fn = {"mae": mae, "rmse": rmse, "smape": smape}.get(name, metric)
    if not callable(fn):
        raise ValueError(f"unknown metric {name!r}")
    return name, fn(frame["y"], frame["mean"])


def evaluate(
    frame: pd.DataFrame,
    metrics: Iterable[str | Metric] = ("mae", "rmse", "mase", "smape"),
    by: str | None = None,
) -> dict[str, float] | pd.DataFrame:
    """Metrics over a frame with columns ``y`` and ``mean`` (and ``scale`` for MASE).

    Metrics are names ('mae', 'rmse', 'mase', 'smape', 'coverage_80') or functions
    ``f(y, yhat)``. With ``by`` (e.g. 'origin' or 'step') returns one row per group.
    """
    metrics = list(metrics)
    frame = frame.dropna(subset=["y", "mean"])
    if by is None:
        return dict(_apply(m, frame) for m in metrics)
    rows = {key: dict(_apply(m, grp) for m in metrics) for key, grp in frame.groupby(by)}
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis(by)
