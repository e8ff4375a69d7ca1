"""Dropouts: gaps between readings longer than ``k`` nominal intervals."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from plantcast.core.errors import InputError
from plantcast.core.timeutil import parse_duration
from plantcast.detect.base import DEFAULT_BUDGET, Detector
from plantcast.detect.calibration import missing_run_threshold, routine_run_threshold
from plantcast.detect.episodes import EpisodePolicy


def median_interval(index: pd.DatetimeIndex) -> pd.Timedelta | None:
    """The median step between timestamps (None with fewer than two)."""
    if len(index) < 2:
        return None
    return pd.Timedelta(int(np.median(np.diff(index.asi8))), unit=index.unit)  # asi8: its unit


class DropoutDetector(Detector):
    """Flags the first reading after a gap of more than ``k × interval``.

    The score is the gap in intervals (1 on a regular grid). The nominal ``interval`` is given,
    learned by ``fit`` (optional), or inferred from the median step of the series scored. The
    frame's ``since`` is the first missing slot and ``detected_at`` the moment a live system
    would have known (``k`` intervals after the last reading). A gap still open at the end of
    the series is not seen here (a service that knows "now" adds it). Covers dropouts.

    Fitted, ``k`` is a floor: a sensor whose history is full of short gaps (a gateway that
    drops a reading now and then) gets the run of missed readings it reaches at most
    ``budget`` times a month by a geometric model of its runs
    (:func:`~plantcast.detect.calibration.missing_run_threshold`), so routine misses are not
    alerts while an outage still is; and, when the history's longest runs come back again and
    again (a sensor quiet every night), past the longest of them that the budget does not set
    aside (:func:`~plantcast.detect.calibration.routine_run_threshold`), so the sensor's own
    routine gaps are not alerts while a longer outage is. ``threshold_`` counts missed
    readings: a gap of ``g`` intervals misses ``g − 1`` readings and is flagged when
    ``g > threshold_``.
    """

    name = "dropout"
    policy = EpisodePolicy(cooldown="1h")
    calibration_block = "1d"
    memoryless = True  # a gap is scored on the one reading that ends it

    def __init__(
        self,
        interval: str | pd.Timedelta | None = None,
        *,
        k: float = 2.0,
        budget: float | None = DEFAULT_BUDGET,
        train_window: str | pd.Timedelta = "14d",
    ) -> None:
        self.interval = interval
        self.k = k
        self.budget = budget
        self.train_window = train_window

    def _fit_core(self, series: pd.Series) -> None:
        self.interval_ = median_interval(series.index)
        step = self._step(series.index)
        if step is None or step <= pd.Timedelta(0) or len(series) < 2:
            self.threshold_ = float(self.k)
            return
        gaps = np.diff(series.index.as_unit("ns").asi8) / step.value
        self.floor_ = float(self.k)
        if self.budget is None:
            self.threshold_ = self.floor_
            return
        # gap lengths are whole steps, too discrete for a fitted tail: a model of the runs
        days = (series.index[-1] - series.index[0]) / pd.Timedelta(days=1)
        missed = np.rint(gaps) - 1
        runs = missed[missed >= 1]
        self.threshold_ = max(
            missing_run_threshold(runs, self.budget, days, self.k),
            routine_run_threshold(runs, self.budget, days),
        )

    def _step(self, index: pd.DatetimeIndex) -> pd.Timedelta | None:
        if self.interval is not None:
            return parse_duration(self.interval, field="interval")
        return getattr(self, "interval_", None) or median_interval(index)

    def context_points(self) -> int | None:
        """The reading before: a gap is scored on the reading that ends it."""
        return 1

    def _score_parts(self, series: pd.Series) -> dict[str, Any]:
        idx = series.index
        step = self._step(idx)
        if step is None or step <= pd.Timedelta(0):
            if len(idx) < 2:
                return {"score": np.ones(len(idx)), "flag": np.zeros(len(idx), bool)}
            raise InputError("cannot infer the nominal interval: give interval=")
        ns = idx.as_unit("ns").asi8
        k = getattr(self, "threshold_", self.k)
        prev = np.concatenate([ns[:1] - step.value, ns[:-1]])
        gap = (ns - prev) / step.value
        flag = gap > k
        return {
            "score": gap,
            "flag": flag,
            "since": lambda: pd.DatetimeIndex(prev + step.value, tz="UTC"),
            "detected_at": lambda: pd.DatetimeIndex(prev + int(k * step.value), tz="UTC"),
        }
