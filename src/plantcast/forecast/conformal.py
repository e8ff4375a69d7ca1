"""Split-conformal prediction intervals per horizon step, from backtest residuals."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

DEFAULT_LEVELS = (80, 95)
MIN_SAMPLES = 40  # residuals behind each step's quantile (pooled over nearby steps)


def _quantile(abs_residuals: np.ndarray, level: float) -> float:
    """The conformal quantile: the ⌈(n+1)·level⌉-th smallest residual (capped at the largest)."""
    r = abs_residuals[np.isfinite(abs_residuals)]
    if len(r) == 0:
        return float("nan")
    rank = min(len(r), math.ceil((len(r) + 1) * level / 100.0))
    return float(np.sort(r)[rank - 1])


@dataclass(frozen=True)
class ConformalIntervals:
    """Symmetric bands mean ± q[level][step], q from |residuals| of earlier origins."""

    levels: tuple[int, ...]
    quantiles: np.ndarray  # shape (len(levels), horizon)
    n_calibration: int

    @classmethod
    def calibrate(
        cls, residuals: np.ndarray, levels=DEFAULT_LEVELS, min_samples: int = MIN_SAMPLES
    ) -> ConformalIntervals:
        """From a (origins × horizon) residual matrix (NaN where an actual is missing).

        Each step's quantile uses that step's residuals, pooled with neighbouring steps
        (±w) until about ``min_samples`` residuals are in hand: with few origins a per-step
        conformal quantile is just the largest residual, whatever the level asked. With
        enough origins (``origins >= min_samples``) w is 0: purely per step. A step with no
        residual at all borrows the quantile pooled over every step.
        """
        res = np.abs(np.atleast_2d(np.asarray(residuals, dtype=np.float64)))
        n_origins, horizon = res.shape
        half = max(0, math.ceil((min_samples / max(1, n_origins) - 1) / 2))
        q = np.empty((len(levels), horizon))
        for i, level in enumerate(levels):
            pooled = _quantile(res.ravel(), level)
            for step in range(horizon):
                near = res[:, max(0, step - half) : step + half + 1]
                value = _quantile(near.ravel(), level)
                q[i, step] = pooled if math.isnan(value) else value
        return cls(tuple(int(v) for v in levels), q, int(n_origins))

    @property
    def horizon(self) -> int:
        return self.quantiles.shape[1]

    def half_widths(self, level: int, horizon: int) -> np.ndarray:
        """Band half-widths for steps 1..horizon; steps past calibration reuse the last one."""
        q = self.quantiles[self.levels.index(level)]
        if horizon <= len(q):
            return q[:horizon]
        return np.concatenate([q, np.full(horizon - len(q), q[-1])])

    def apply(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Add ``lower_L``/``upper_L`` columns around ``mean`` (row i is step i + 1)."""
        out = frame.copy()
        for level in self.levels:
            w = self.half_widths(level, len(frame))
            out[f"lower_{level}"] = out["mean"].to_numpy() - w
            out[f"upper_{level}"] = out["mean"].to_numpy() + w
        return out


def with_intervals(model, intervals: ConformalIntervals):
    """Attach calibrated intervals to a fitted forecaster: its ``predict`` then adds bands.

    The intervals belong to that fit; refitting the model forgets them.
    """
    model._check_fitted()
    model.intervals_ = intervals
    return model


def cross_fold(residuals: np.ndarray, levels=DEFAULT_LEVELS, folds: int = 2) -> dict:
    """Half-widths for each origin, calibrated on the other blocks of origins (honest coverage).

    Origins are cut into ``folds`` contiguous blocks in time; each block is covered by bands
    calibrated on the rest. (Leave-one-origin-out is not used: with exchangeable residuals it
    covers exactly the nominal share by construction, so it would prove nothing.)
    """
    res = np.atleast_2d(np.asarray(residuals, dtype=np.float64))
    out = {level: np.full(res.shape, np.nan) for level in levels}
    if res.shape[0] < 2:
        return out
    blocks = np.array_split(np.arange(res.shape[0]), min(folds, res.shape[0]))
    for block in blocks:
        cal = ConformalIntervals.calibrate(np.delete(res, block, axis=0), levels)
        for j, level in enumerate(levels):
            out[level][block] = cal.quantiles[j]
    return out
