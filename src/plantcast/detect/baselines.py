"""Baselines to beat: a static threshold, a rolling z-score and random scores."""

from __future__ import annotations

import numpy as np
import pandas as pd

from plantcast.core.timeutil import parse_duration
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


class RollingZDetector(Detector):
    """Rolling z-score: ``z = (x − mean) / std`` of the trailing ``window`` (default one day).

    Mean and std come from the readings of the ``window`` before each one (time-based, so gaps
    are allowed; the reading itself is left out); flags ``|z| > threshold`` once ``min_points``
    readings are in the window. The common first try on a plant's data, and the issue's
    measure: what the production detectors must beat on every figure. Needs no fit; with a
    ``budget`` (alerts per 30 days) ``fit`` raises the threshold above ``threshold`` until the
    training window's |z| would alert at most that often, as the production detectors are
    calibrated, so the two are compared at the same alert budget.
    """

    name = "rolling_z"

    def __init__(
        self,
        window: str | pd.Timedelta = "1D",
        *,
        threshold: float = 4.0,
        min_points: int = 10,
        budget: float | None = None,
        train_window: str | pd.Timedelta = "14d",
    ) -> None:
        self.window = window
        self.threshold = threshold
        self.min_points = min_points
        self.budget = budget
        self.train_window = train_window

    def _z(self, series: pd.Series) -> tuple[np.ndarray, np.ndarray]:
        window = parse_duration(self.window, field="window")
        roll = series.rolling(window, closed="left", min_periods=self.min_points)
        mean, std = roll.mean().to_numpy(), roll.std().to_numpy()
        with np.errstate(divide="ignore", invalid="ignore"):
            z = (series.to_numpy() - mean) / std
        # A flat window (std 0) makes any change infinitely surprising: score it as such.
        z = np.where(std == 0, np.where(series.to_numpy() == mean, 0.0, np.inf), z)
        return np.nan_to_num(z, nan=0.0, posinf=1e12, neginf=-1e12), mean

    def _fit_core(self, series: pd.Series) -> None:
        z, _ = self._z(series)
        self.threshold_ = self._calibrate(pd.Series(np.abs(z), index=series.index), self.threshold)

    def _detect_core(self, series: pd.Series) -> pd.DataFrame:
        z, mean = self._z(series)
        threshold = getattr(self, "threshold_", self.threshold)
        return score_frame(series, np.abs(z), np.abs(z) > threshold, mean, z=z)
