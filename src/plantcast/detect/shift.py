"""Level shifts and drifts: a two-sided CUSUM with reset on standardised forecast residuals."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from plantcast.detect.base import score_frame
from plantcast.detect.residual import ResidualDetector

_MAX_BLOCK = 1 << 16


def cusum_with_reset(x: np.ndarray, h: float, block: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """Upper CUSUM ``S_t = max(0, S_{t-1} + x_t)``, alarm when ``S_t > h``, then ``S`` restarts.

    Vectorised by blocks: between alarms ``S_t = c_t − min(0, min_{s≤t} c_s)`` with ``c`` the
    running sum from the last restart (Lindley's identity), so the Python loop runs once per
    alarm or per block, not per reading. Returns (S before any reset, alarm flags).
    """
    n = len(x)
    s = np.empty(n)
    alarm = np.zeros(n, dtype=bool)
    i, carry, b = 0, 0.0, block
    while i < n:
        j = min(n, i + b)
        c = carry + np.cumsum(x[i:j])
        seg = c - np.minimum(np.minimum.accumulate(c), 0.0)
        hit = np.flatnonzero(seg > h)
        if hit.size:
            a = int(hit[0])
            s[i : i + a + 1] = seg[: a + 1]
            alarm[i + a] = True
            i, carry, b = i + a + 1, 0.0, block
        else:
            s[i:j] = seg
            i, carry, b = j, float(seg[-1]), min(2 * b, _MAX_BLOCK)
    return s, alarm


class LevelShiftDetector(ResidualDetector):
    """Two-sided CUSUM with reset on ``(r − loc_) / scale_`` (residuals in fitted σ units).

    ``k`` is the allowance (half the smallest shift worth catching, in σ), ``h`` the decision
    interval. A sustained shift alarms every few readings, so episodes bridge ``episode_gap``
    quiet readings. Covers level shifts and drifts (and long noise bursts).
    """

    name = "level_shift"
    episode_gap = 6

    def __init__(
        self,
        forecaster: Any = "fourier_linear",
        forecaster_params: dict | None = None,
        *,
        k: float = 0.5,
        h: float = 12.0,
        train_window: str | pd.Timedelta = "14d",
    ) -> None:
        super().__init__(forecaster, forecaster_params, train_window)
        self.k = k
        self.h = h

    def _detect_core(self, series: pd.Series) -> pd.DataFrame:
        expected, resid = self.residuals(series)
        z = (resid - self.loc_) / self.scale_
        up, up_alarm = cusum_with_reset(z - self.k, self.h)
        down, down_alarm = cusum_with_reset(-z - self.k, self.h)
        return score_frame(
            series,
            np.maximum(up, down),
            up_alarm | down_alarm,
            expected,
            cusum_up=up,
            cusum_down=down,
        )
