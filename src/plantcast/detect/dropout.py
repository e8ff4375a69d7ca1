"""Dropouts: gaps between readings longer than ``k`` nominal intervals."""

from __future__ import annotations

import numpy as np
import pandas as pd

from plantcast.core.errors import InputError
from plantcast.core.timeutil import parse_duration
from plantcast.detect.base import Detector, score_frame


def median_interval(index: pd.DatetimeIndex) -> pd.Timedelta | None:
    """The median step between timestamps (None with fewer than two)."""
    if len(index) < 2:
        return None
    return pd.Timedelta(int(np.median(np.diff(index.asi8))), unit="ns")


class DropoutDetector(Detector):
    """Flags the first reading after a gap of more than ``k × interval``.

    The score is the gap in intervals (1 on a regular grid). The nominal ``interval`` is given,
    learned by ``fit`` (optional), or inferred from the median step of the series scored. The
    frame's ``since`` is the first missing slot and ``detected_at`` the moment a live system
    would have known (``k`` intervals after the last reading). A gap still open at the end of
    the series is not seen here (a service that knows "now" adds it). Covers dropouts.
    """

    name = "dropout"

    def __init__(
        self,
        interval: str | pd.Timedelta | None = None,
        *,
        k: float = 2.0,
        train_window: str | pd.Timedelta = "14d",
    ) -> None:
        self.interval = interval
        self.k = k
        self.train_window = train_window

    def _fit_core(self, series: pd.Series) -> None:
        self.interval_ = median_interval(series.index)

    def _step(self, index: pd.DatetimeIndex) -> pd.Timedelta | None:
        if self.interval is not None:
            return parse_duration(self.interval, field="interval")
        return getattr(self, "interval_", None) or median_interval(index)

    def _detect_core(self, series: pd.Series) -> pd.DataFrame:
        idx = series.index
        step = self._step(idx)
        if step is None or step <= pd.Timedelta(0):
            if len(idx) < 2:
                return score_frame(series, np.ones(len(idx)), np.zeros(len(idx), bool))
            raise InputError("cannot infer the nominal interval: give interval=")
        ns = idx.asi8
        prev = np.concatenate([ns[:1] - step.value, ns[:-1]])
        gap = (ns - prev) / step.value
        flag = gap > self.k
        since = pd.DatetimeIndex(prev + step.value, tz="UTC")
        known = pd.DatetimeIndex(prev + int(self.k * step.value), tz="UTC")
        return score_frame(series, gap, flag, since=since, detected_at=known)
