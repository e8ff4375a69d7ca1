"""Thresholds calibrated to a false-alarm budget: at most N alerts per 30 days on data like this.

A detector's score on its training window is cut into blocks; the block maxima above their
median are fitted with an exponential tail (peaks over threshold), and the threshold is where
the fitted rate of blocks that would alert falls to the budget. Extrapolating the tail is what
lets two weeks of history speak for a month: counting alerts directly would need months.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

DAYS_PER_BUDGET = 30.0
# The threshold aims at half the budget: the tail is estimated from a few weeks, and the weeks
# after them are never quite like them (seasons drift), so aiming at the budget itself would
# overspend it about as often as not.
SAFETY = 0.5
MIN_BLOCKS = 8  # block maxima needed for a tail fit


def block_maxima(score: pd.Series, block: pd.Timedelta) -> np.ndarray:
    """The largest finite score in each ``block`` of time (empty blocks left out)."""
    s = score[np.isfinite(score.to_numpy(dtype=np.float64))]
    if s.empty:
        return np.empty(0)
    maxima: np.ndarray = s.resample(block, origin="start").max().dropna().to_numpy(dtype=np.float64)
    return maxima


def allowed_exceedances(budget: float, days: float) -> int:
    """How many alerting blocks a training window of ``days`` may hold within the budget:
    at least one, since a training window (a young sensor's, scored in-sample) may hold the
    very anomaly to be found."""
    return max(1, int(budget * SAFETY * days / DAYS_PER_BUDGET))


def order_threshold(values: np.ndarray, budget: float, days: float, floor: float) -> float:
    """The threshold only the ``allowed_exceedances`` largest of ``values`` exceed (≥ floor):
    for discrete scores (gap lengths) where a fitted tail has nothing to hold on to."""
    v = np.sort(np.asarray(values, dtype=np.float64)[np.isfinite(values)])[::-1]
    k = allowed_exceedances(budget, days)
    return max(float(floor), float(v[k])) if len(v) > k else float(floor)


def budget_threshold(
    score: pd.Series,
    budget: float,
    *,
    block: pd.Timedelta,
    floor: float,
    cap: float | None = None,
) -> float:
    """The lowest threshold ≥ ``floor`` expected to be crossed in at most ``budget`` blocks a
    month (aiming at ``SAFETY`` × budget), by an exponential tail fitted to the upper half of
    the training block maxima.

    ``score`` is indexed by time; ``block`` is about the length of one alert's episode (the
    unit of independence); a training window of fewer than ``MIN_BLOCKS`` blocks is cut into
    shorter ones. Too little training even then keeps the floor.
    """
    maxima = block_maxima(score, block)
    days = (score.index[-1] - score.index[0]) / pd.Timedelta(days=1) if len(score) > 1 else 0.0
    while 0 < len(maxima) < MIN_BLOCKS and block > pd.Timedelta("1min"):
        block = block / 2  # a young sensor: shorter blocks, so its tail still speaks
        maxima = block_maxima(score, block)
    if len(maxima) < MIN_BLOCKS or days <= 0 or budget <= 0:
        return float(floor)
    target = budget * SAFETY
    u0 = float(np.median(maxima))
    excess = maxima[maxima > u0] - u0
    rate0 = len(excess) / days * DAYS_PER_BUDGET  # blocks a month above u0
    if len(excess) == 0 or rate0 <= target:
        # At most half the blocks ever exceed the median: the budget holds above it.
        threshold = u0 if len(excess) else float(maxima.max())
    else:
        beta = max(float(np.mean(excess)), 1e-12)
        threshold = u0 + beta * math.log(rate0 / target)
    # The tail fit must not contradict the training itself: the threshold sits at least at the
    # block maximum ranked just past the blocks the budget allows in the training window.
    allowed = allowed_exceedances(budget, days)
    if allowed < len(maxima):
        threshold = max(threshold, float(np.sort(maxima)[::-1][allowed]))
    threshold = max(float(floor), threshold)
    return threshold if cap is None else min(threshold, float(cap))
