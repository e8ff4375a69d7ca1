"""Stuck sensors: a run of repeated readings longer than the noise makes plausible."""

from __future__ import annotations

import numpy as np
import pandas as pd

from plantcast.detect.base import Detector, score_frame


def flat_runs(values: np.ndarray, tol: float) -> tuple[np.ndarray, np.ndarray]:
    """For each reading: how many steps in a row ended within ``tol`` of the previous value,
    and the position of the first repeated reading of that run."""
    n = len(values)
    same = np.zeros(n, dtype=bool)
    same[1:] = np.abs(np.diff(values)) <= tol
    pos = np.arange(n)
    last_break = np.maximum.accumulate(np.where(same, 0, pos))
    return pos - last_break, np.minimum(last_break + 1, n - 1)


class StuckDetector(Detector):
    """Flags readings once ``min_run`` consecutive steps changed by at most ``tol``.

    With ``min_run=None`` it must be fitted: ``fit`` measures how often a step is flat in the
    training window (``p``) and picks the shortest run expected less than ``false_rate`` times
    per 10,000 readings (at least ``floor``). Covers stuck sensors.
    """

    name = "stuck"

    def __init__(
        self,
        min_run: int | None = None,
        *,
        tol: float = 0.0,
        false_rate: float = 0.01,
        floor: int = 2,
        train_window: str | pd.Timedelta = "14d",
    ) -> None:
        self.min_run = min_run
        self.tol = tol
        self.false_rate = false_rate
        self.floor = floor
        self.train_window = train_window

    @property
    def requires_fit(self) -> bool:
        return self.min_run is None

    def _fit_core(self, series: pd.Series) -> None:
        steps = np.abs(np.diff(series.to_numpy()))
        self.p_flat_ = float(np.mean(steps <= self.tol)) if len(steps) else 0.0
        p = min(max(self.p_flat_, 1e-12), 0.999)
        self.min_run_ = max(self.floor, int(np.ceil(np.log(self.false_rate / 1e4) / np.log(p))))

    def _detect_core(self, series: pd.Series) -> pd.DataFrame:
        min_run = self.min_run if self.min_run is not None else self.min_run_
        run, first = flat_runs(series.to_numpy(), self.tol)
        flag = run >= min_run
        return score_frame(series, run, flag, since=series.index[first])
