"""Level shifts and drifts: the recent level of the residuals against their level before it."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from plantcast.core.timeutil import parse_duration
from plantcast.detect.base import DEFAULT_BUDGET, robust_location_scale
from plantcast.detect.episodes import EpisodePolicy
from plantcast.detect.residual import (
    ResidualDetector,
    run_age_below,
    trailing_median,
    trailing_time_median,
)
from plantcast.detect.rolling import rolling_median


class LevelShiftDetector(ResidualDetector):
    """Scores ``|fast − slow|``: the median of the last ``fast`` standardised residuals against
    their median over the ``baseline`` of time before those, in units of that difference's own
    spread on the training window. The baseline holds at most ``baseline_points`` readings
    (336: at 5-min steps or slower a whole day; a 1 s sensor's last 5.6 minutes), so the
    history a score needs is bounded in readings (:meth:`context_points`) and a fast sensor's
    pass reads minutes, not days.

    A step lifts the fast median within about ``fast / 2`` readings. Readings inside an episode
    are kept out of the baseline for its first ``accept_after``, so a shift that comes back is
    judged against the level before it (its return is not a second alert); a shift that
    persists is accepted as the new normal after ``accept_after``, and its episode ends by
    itself once the baseline has caught up (about half the ``baseline`` later) rather than
    lasting until a refit. Drifts keep the two apart while they last. Hysteresis (enter at
    ``threshold_``, leave below half of it) and a 6-hour merge gap keep one change one episode.
    Covers level shifts and drifts (and long noise bursts).
    """

    name = "level_shift"
    episode_gap = 2
    policy = EpisodePolicy(exit_ratio=0.5, merge_gap="6h", cooldown="6h")
    calibration_block = "1d"
    passes = 4

    def __init__(
        self,
        forecaster: Any = "fourier_linear",
        forecaster_params: dict[str, Any] | None = None,
        *,
        fast: int = 4,
        baseline: str | pd.Timedelta = "1d",
        baseline_points: int = 336,
        accept_after: str | pd.Timedelta = "1d",
        threshold: float = 5.0,
        window: int = 336,
        adaptive: bool = True,
        budget: float | None = DEFAULT_BUDGET,
        train_window: str | pd.Timedelta = "14d",
    ) -> None:
        super().__init__(forecaster, forecaster_params, train_window)
        self.fast = fast
        self.baseline = baseline
        self.baseline_points = baseline_points
        self.accept_after = accept_after
        self.window = window
        self.adaptive = adaptive
        self.threshold = threshold
        self.budget = budget

    def _difference(
        self,
        series: pd.Series,
        held_out: np.ndarray | None = None,
        expected: np.ndarray | None = None,
    ) -> np.ndarray:
        """fast − slow in σ units; ``held_out`` readings are left out of the baseline."""
        _, resid = self.residuals(series, expected)
        u = (resid - self.loc_) / self.scale_
        n = max(int(self.fast), 1)
        fast = rolling_median(u, n, 1)
        base = parse_duration(self.baseline, field="baseline")
        quiet = u if held_out is None else np.where(held_out, np.nan, u)
        before = trailing_time_median(quiet, series.index, base, 0.0, self.baseline_points)
        # the baseline ends where the fast window begins
        slow = np.r_[np.zeros(min(n - 1, len(u))), before[: len(u) - n + 1]] if n > 1 else before
        diff: np.ndarray = fast - slow
        return diff

    def _score(
        self, series: pd.Series, expected: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Score against a baseline that leaves young episodes out (a few passes to settle)."""
        diff = self._difference(series, expected=expected)
        accept = parse_duration(self.accept_after, field="accept_after")
        held = np.zeros(len(diff), dtype=bool)
        spread = self._spread(diff)  # of the latest diff: computed once for each
        for _ in range(self.passes):
            flags = self._flags(np.abs(diff) / spread)
            young = run_age_below(series.index, flags, accept)
            if np.array_equal(young, held):
                break
            held = young
            diff = self._difference(series, held, expected)
            spread = self._spread(diff)
        return diff, np.abs(diff) / spread

    def _spread(self, diff: np.ndarray) -> np.ndarray | float:
        """The difference's recent robust spread (a week of readings), never below half the
        training one: in a restless stretch (weather, a busy shift) the bar rises with it."""
        fill = self.diff_scale_ / 1.4826  # until half a window is in, the training spread
        recent = 1.4826 * trailing_median(np.abs(diff), self.window, self.window // 2, fill)
        return np.maximum(recent, 0.5 * self.diff_scale_) if self.adaptive else self.diff_scale_

    def _fit_core(self, series: pd.Series) -> None:
        super()._fit_core(series)
        diff = self._difference(series)
        _, spread = robust_location_scale(diff)
        self.diff_scale_ = max(spread, 1e-9)
        score = np.abs(diff) / self._spread(diff)
        self.threshold_ = self._calibrate(pd.Series(score, index=series.index), self.threshold)

    def context_points(self) -> int | None:
        """The spread's window of differences, each of a fast median and the baseline before."""
        return int(self.window) + int(self.baseline_points) + max(int(self.fast), 1)

    def _score_parts(self, series: pd.Series) -> dict[str, Any]:
        expected = self._expected(series.index)
        diff, score = self._score(series, expected)
        flag = self._flags(score)
        return {"score": score, "flag": flag, "expected": expected, "shift": diff * self.scale_}
