"""Split-conformal prediction intervals per horizon step, from backtest residuals."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

import numpy as np
import pandas as pd
from sklearn.isotonic import isotonic_regression

if TYPE_CHECKING:
    from plantcast.forecast.base import Forecaster

_F = TypeVar("_F", bound="Forecaster")

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
        cls,
        residuals: np.ndarray,
        levels: Sequence[int] = DEFAULT_LEVELS,
        min_samples: int = MIN_SAMPLES,
        mask: np.ndarray | None = None,
        monotone: bool = False,
    ) -> ConformalIntervals:
        """From a (origins × horizon) residual matrix (NaN where an actual is missing).

        ``mask`` (same shape, True = leave out) drops residuals that should not calibrate,
        e.g. those whose target time was covered by an injected event. If it would leave
        nothing, every residual is used (a band from disturbed data beats no band).

        Each step's quantile uses a window of neighbouring steps of constant width, wide
        enough to hold about ``min_samples`` residuals (with few origins a per-step conformal
        quantile is just the largest residual, whatever the level asked). At the ends of the
        horizon the window slides inward rather than shrinking: a window cut in half at the
        last steps held too few residuals for its rank, so the 95 % band there was the single
        largest residual (bands widened at the end of the horizon). With ``monotone=True``
        the per-step quantiles are also made non-decreasing in the step (isotonic fit); off
        by default because on the real series of tests/data it lowered cross-fold coverage by
        about one point (errors of daily-cycle series need not grow with the step). A step
        with no residual at all borrows the quantile pooled over every step.
        """
        res = np.abs(np.atleast_2d(np.asarray(residuals, dtype=np.float64)))
        if mask is not None:
            kept = np.where(np.asarray(mask, dtype=bool), np.nan, res)
            if np.isfinite(kept).any():
                res = kept
        n_origins, horizon = res.shape
        width = min(horizon, 2 * max(0, math.ceil((min_samples / max(1, n_origins) - 1) / 2)) + 1)
        q = np.empty((len(levels), horizon))
        for i, level in enumerate(levels):
            pooled = _quantile(res.ravel(), level)
            for step in range(horizon):
                first = min(max(0, step - width // 2), horizon - width)
                value = _quantile(res[:, first : first + width].ravel(), level)
                q[i, step] = pooled if math.isnan(value) else value
            if monotone and np.isfinite(q[i]).all():
                q[i] = isotonic_regression(q[i], increasing=True)
        return cls(tuple(int(v) for v in levels), q, int(n_origins))

    @property
    def horizon(self) -> int:
        return int(self.quantiles.shape[1])

    def half_widths(self, level: int, horizon: int) -> np.ndarray:
        """Band half-widths for steps 1..horizon; steps past calibration reuse the last one."""
        q = self.quantiles[self.levels.index(level)]
        if horizon <= len(q):
            head: np.ndarray = q[:horizon]
            return head
        return np.concatenate([q, np.full(horizon - len(q), q[-1])])

    def apply(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Add ``lower_L``/``upper_L`` columns around ``mean`` (row i is step i + 1)."""
        out = frame.copy()
        for level in self.levels:
            w = self.half_widths(level, len(frame))
            out[f"lower_{level}"] = out["mean"].to_numpy() - w
            out[f"upper_{level}"] = out["mean"].to_numpy() + w
        return out


def with_intervals(model: _F, intervals: ConformalIntervals) -> _F:
    """Attach calibrated intervals to a fitted forecaster: its ``predict`` then adds bands.

    The intervals belong to that fit; refitting the model forgets them.
    """
    model._check_fitted()
    model.intervals_ = intervals
    return model


def cross_fold(
    residuals: np.ndarray,
    levels: Sequence[int] = DEFAULT_LEVELS,
    folds: int = 2,
    mask: np.ndarray | None = None,
) -> dict[int, np.ndarray]:
    """Half-widths for each origin, calibrated on the other blocks of origins (honest coverage).

    Origins are cut into ``folds`` contiguous blocks in time; each block is covered by bands
    calibrated on the rest. (Leave-one-origin-out is not used: with exchangeable residuals it
    covers exactly the nominal share by construction, so it would prove nothing.) ``mask`` is
    passed on to ``calibrate``: left-out residuals calibrate no fold.
    """
    res = np.atleast_2d(np.asarray(residuals, dtype=np.float64))
    out = {level: np.full(res.shape, np.nan) for level in levels}
    if res.shape[0] < 2:
        return out
    blocks = np.array_split(np.arange(res.shape[0]), min(folds, res.shape[0]))
    for block in blocks:
        rest = None if mask is None else np.delete(np.asarray(mask), block, axis=0)
        cal = ConformalIntervals.calibrate(np.delete(res, block, axis=0), levels, mask=rest)
        for j, level in enumerate(levels):
            out[level][block] = cal.quantiles[j]
    return out
