"""Slow drift: an EWMA of the deseasonalised residuals, thresholds from the sensor's history."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from plantcast.core.errors import NotEnoughData
from plantcast.detect.base import DEFAULT_BUDGET, Detector, robust_location_scale
from plantcast.detect.episodes import EpisodePolicy
from plantcast.detect.rolling import ewm_mean
from plantcast.detect.windows import SeasonalProfile, window_points

CLIP = 4.0  # residuals are clipped at ±4σ: a spike must not pass for a drift


def ewma(u: np.ndarray, span: int, start: float = 0.0) -> np.ndarray:
    """Exponentially weighted mean with ``alpha = 2 / (span + 1)``, started at ``start``."""
    alpha = 2.0 / (span + 1.0)
    out: np.ndarray = ewm_mean(np.r_[start, u], alpha)[1:]
    return out


class DriftDetector(Detector):
    """Scores ``|EWMA(u)| / σ_EWMA``: ``u`` the residuals against the training window's seasonal
    profile (a Fourier fit of ``periods``; a constant without a season), standardised by their
    robust location and σ and clipped at ±4; the EWMA's span is ``span`` readings, or
    ``span_windows`` × the detector window (season or autocorrelation, as for the other pattern
    detectors) within ``min_span`` … a quarter of the training. σ_EWMA is the larger of white
    noise's (``sqrt(α / (2 − α))``) and the EWMA's own robust spread on the training window, so
    residuals that wander (weather, load) need a larger excursion.

    An EWMA rather than a CUSUM: it forgets (an accepted new level ends its episode by
    itself instead of accumulating until a refit), it needs one parameter, and its spread on
    the history gives the threshold directly. A drift of a few σ over a day, where each
    reading alone is within the noise, reaches it. Needs 4 spans of training.
    """

    name = "drift"
    episode_gap = 2
    policy = EpisodePolicy(exit_ratio=0.5, cooldown="6h")
    min_train_points = 32

    def __init__(
        self,
        periods: tuple[str, ...] = (),
        *,
        span: int | None = None,
        span_windows: float = 1.0,
        min_span: int = 32,
        max_window: int = 512,
        threshold: float = 5.0,
        tail_factor: float = 1.25,
        budget: float | None = DEFAULT_BUDGET,
        train_window: str | pd.Timedelta = "14d",
    ) -> None:
        self.periods = tuple(periods)
        self.span = span
        self.span_windows = span_windows
        self.min_span = min_span
        self.max_window = max_window
        self.threshold = threshold
        self.tail_factor = tail_factor
        self.budget = budget
        self.train_window = train_window

    @property
    def requires_fit(self) -> bool:
        return True

    def _u(self, series: pd.Series) -> np.ndarray:
        resid = series.to_numpy() - self.profile_.predict(series.index)
        u: np.ndarray = np.clip((resid - self.loc_) / self.scale_, -CLIP, CLIP)
        return u

    def _fit_core(self, series: pd.Series) -> None:
        if self.span is not None:
            span, source = int(self.span), "fixed"
        else:
            m, source = window_points(series, self.periods, self.max_window)
            span = int(max(self.min_span, min(self.span_windows * m, len(series) // 4)))
        if len(series) < 4 * span:
            raise NotEnoughData(
                f"{type(self).__name__} needs at least {4 * span} training readings"
                f" (4 spans of {span}), got {len(series)}",
                needed=4 * span,
            )
        self.span_, self.span_source_ = span, source
        self.profile_ = SeasonalProfile(self.periods).fit(series)
        resid = series.to_numpy() - self.profile_.predict(series.index)
        self.loc_, scale = robust_location_scale(resid)
        self.scale_ = max(scale, 1e-9 * (1.0 + float(np.median(np.abs(series.to_numpy())))))
        z = ewma(self._u(series), span)
        alpha = 2.0 / (span + 1.0)
        white = float(np.sqrt(alpha / (2.0 - alpha)))
        _, spread = robust_location_scale(z[span:])
        self.ewma_scale_ = max(white, spread)
        self.last_ = float(z[-1])
        self.end_ = series.index[-1]
        score = np.abs(z) / self.ewma_scale_
        floor = max(self.threshold, self.tail_factor * float(np.quantile(score[span:], 0.99)))
        self.threshold_ = self._calibrate(pd.Series(score, index=series.index), floor)

    def context_points(self) -> int | None:
        """Eight spans: the EWMA, restarted at the series' start from where training left it,
        has forgotten that start to within (1 − α)^(8·span) ≈ e^-16 of its weight."""
        return 8 * int(self.span_)

    def _score_parts(self, series: pd.Series) -> dict[str, Any]:
        # scoring that carries on from the training window starts where the training ended
        start = self.last_ if series.index[0] > self.end_ else 0.0
        z = ewma(self._u(series), self.span_, start)
        score = np.abs(z) / self.ewma_scale_
        return {
            "score": score,
            "flag": self._flags(score),
            # the frame's columns only: most calls flag nothing and build none
            "expected": lambda: self.profile_.predict(series.index) + self.loc_,
            "drift": lambda: z * self.scale_,
        }

    def explain(self) -> dict[str, Any]:
        info = super().explain()
        info.pop("profile", None)
        return info
