"""Stuck sensors: a run of repeated readings longer than the sensor's history makes plausible."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from plantcast.detect.base import DEFAULT_BUDGET, Detector
from plantcast.detect.episodes import EpisodePolicy


def flat_runs(values: np.ndarray, tol: float) -> tuple[np.ndarray, np.ndarray]:
    """For each reading: how many steps in a row ended within ``tol`` of the previous value,
    and the position of the first repeated reading of that run."""
    n = len(values)
    same = np.zeros(n, dtype=bool)
    same[1:] = np.abs(np.diff(values)) <= tol
    pos = np.arange(n)
    last_break = np.maximum.accumulate(np.where(same, 0, pos))
    return pos - last_break, np.minimum(last_break + 1, n - 1)


def resting_values(values: np.ndarray, tol: float, share: float) -> np.ndarray:
    """Values the sensor holds for at least ``share`` of its readings (an idle 0, a setpoint)."""
    if len(values) == 0:
        return np.empty(0)
    rounded = np.round(values / max(tol, 1e-12)) * max(tol, 1e-12) if tol > 0 else values
    uniq, counts = np.unique(rounded, return_counts=True)
    return uniq[counts >= share * len(values)]


class StuckDetector(Detector):
    """Flags readings once ``min_run`` consecutive steps changed by at most ``tol``.

    With ``min_run=None`` it must be fitted: ``fit`` measures how often a step is flat in the
    training window (``p``) and picks the shortest run expected less than ``false_rate`` times
    per 10,000 readings (at least ``floor``), then raises it to the sensor's own run lengths
    within the ``budget`` (alerts per 30 days). A run at a *resting value*, one the sensor holds
    for at least ``rest_share`` of its training readings (a pump's idle 0, a setpoint), is not
    stuck: the score is 0 there. Covers stuck sensors.
    """

    name = "stuck"
    policy = EpisodePolicy(cooldown="1h")
    calibration_block = "1d"

    def __init__(
        self,
        min_run: int | None = None,
        *,
        tol: float = 0.0,
        false_rate: float = 0.01,
        floor: int = 2,
        rest_share: float = 0.1,
        budget: float | None = DEFAULT_BUDGET,
        train_window: str | pd.Timedelta = "14d",
    ) -> None:
        self.min_run = min_run
        self.tol = tol
        self.false_rate = false_rate
        self.floor = floor
        self.rest_share = rest_share
        self.budget = budget
        self.train_window = train_window

    @property
    def requires_fit(self) -> bool:
        return self.min_run is None

    def _fit_core(self, series: pd.Series) -> None:
        values = series.to_numpy()
        steps = np.abs(np.diff(values))
        self.p_flat_ = float(np.mean(steps <= self.tol)) if len(steps) else 0.0
        p = min(max(self.p_flat_, 1e-12), 0.999)
        by_chance = max(self.floor, int(np.ceil(np.log(self.false_rate / 1e4) / np.log(p))))
        self.resting_ = resting_values(values, self.tol, self.rest_share)
        run = pd.Series(self._runs(values), index=series.index)
        self.threshold_ = self._calibrate(run, by_chance)
        self.min_run_ = int(np.ceil(self.threshold_))

    def _threshold_changed(self) -> None:
        self.min_run_ = int(np.ceil(self.threshold_))

    def _runs(self, values: np.ndarray) -> np.ndarray:
        run, first = flat_runs(values, self.tol)
        resting = getattr(self, "resting_", np.empty(0))
        if len(resting):
            at_rest = np.isclose(
                values[first][:, None], resting[None, :], atol=max(self.tol, 1e-9)
            ).any(axis=1)
            run = np.where(at_rest, 0, run)
        return run

    def context_points(self) -> int | None:
        """A flat run long enough to flag (its score, the run's length, is capped there)."""
        min_run = self.min_run if self.min_run is not None else self.min_run_
        return int(min_run) + 1

    def _score_parts(self, series: pd.Series) -> dict[str, Any]:
        min_run = self.min_run if self.min_run is not None else self.min_run_
        values = series.to_numpy()
        run = self._runs(values)

        def since() -> pd.Index:  # a frame's column only: built when something is flagged
            return series.index[flat_runs(values, self.tol)[1]]

        return {"score": run, "flag": run >= min_run, "since": since}
