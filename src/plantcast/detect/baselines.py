"""Baselines to beat: a static threshold and random scores."""

from __future__ import annotations

import numpy as np
import pandas as pd

from plantcast.detect.base import Detector, score_frame


class ThresholdDetector(Detector):
    """Static bounds: fixed ``low``/``high``, or (fitted) mean ± ``k``·std of the training window.

    The score is the distance outside the band in sensor units (negative inside); flags > 0.
    """

    name = "static_threshold"

    def __init__(
        self,
        low: float | None = None,
        high: float | None = None,
        *,
        k: float = 3.0,
        train_window: str | pd.Timedelta = "14d",
    ) -> None:
        self.low = low
        self.high = high
        self.k = k
        self.train_window = train_window

    @property
    def requires_fit(self) -> bool:
        return self.low is None and self.high is None

    def _fit_core(self, series: pd.Series) -> None:
        mean, std = float(series.mean()), float(series.std(ddof=1))
        self.low_, self.high_ = mean - self.k * std, mean + self.k * std

    def bounds(self) -> tuple[float, float]:
        if self.low is None and self.high is None:
            return self.low_, self.high_
        low = -np.inf if self.low is None else self.low
        return low, np.inf if self.high is None else self.high

    def _detect_core(self, series: pd.Series) -> pd.DataFrame:
        low, high = self.bounds()
        v = series.to_numpy()
        score = np.maximum(v - high, low - v)
        return score_frame(series, score, score > 0)


class RandomDetector(Detector):
    """Uniform random scores, seeded; flags the top ``rate`` fraction. An evaluation floor."""

    name = "random"

    def __init__(self, rate: float = 0.01, *, seed: int = 0) -> None:
        self.rate = rate
        self.seed = seed

    def _detect_core(self, series: pd.Series) -> pd.DataFrame:
        score = np.random.default_rng(self.seed).random(len(series))
        return score_frame(series, score, score > 1.0 - self.rate)
