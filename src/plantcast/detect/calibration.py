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
    """The largest finite score in each ``block`` of time (empty blocks left out): the blocks
    of ``score.resample(block, origin="start")``, each from the first finite reading on."""
    return _Blocks(score).maxima(block)


class _Blocks:
    """A score's finite values and their times, cut into blocks of any length.

    A calibration asks for a dozen block sizes and a young sensor's fit for several
    calibrations: through ``resample`` this was most of the time a fit took, so a sorted index
    (every detector's score) is read once and cut with ``np.maximum.reduceat``."""

    def __init__(self, score: pd.Series) -> None:
        values = score.to_numpy(dtype=np.float64)
        finite = np.isfinite(values)
        index = score.index
        self.score = score[finite]
        self.values = values[finite]
        self.ns: np.ndarray | None = None  # None: unsorted, resampled instead
        if isinstance(index, pd.DatetimeIndex) and index.is_monotonic_increasing:
            self.ns = index.as_unit("ns").asi8[finite]

    def maxima(self, block: pd.Timedelta) -> np.ndarray:
        if not len(self.values):
            return np.empty(0)
        if self.ns is None:
            resampled = self.score.resample(block, origin="start").max().dropna()
            maxima: np.ndarray = resampled.to_numpy(dtype=np.float64)
            return maxima
        k = (self.ns - self.ns[0]) // block.value
        starts = np.flatnonzero(np.r_[True, k[1:] != k[:-1]])
        return np.maximum.reduceat(self.values, starts)


def allowed_exceedances(budget: float, days: float) -> int:
    """How many alerting blocks a training window of ``days`` may hold within the budget:
    at least one, since a training window (a young sensor's, scored in-sample) may hold the
    very anomaly to be found."""
    return max(1, int(budget * SAFETY * days / DAYS_PER_BUDGET))


RUN_CENSOR = 10  # missing runs longer than this count as "long": an outage, not a habit


def missing_run_threshold(runs: np.ndarray, budget: float, days: float, floor: float) -> float:
    """The shortest run of missed readings expected at most ``SAFETY`` × ``budget`` times in
    30 days (≥ ``floor``), from a geometric model of the training window's runs.

    A sensor that misses readings at random (a gateway that drops one now and then) makes
    runs of ``m`` or more missed readings at a rate of ``runs per slot × p^(m−1)``, ``p`` the
    chance that a run goes on one more reading. ``p`` is estimated with runs longer than
    ``RUN_CENSOR`` censored there, so one real outage in the training window (a young
    sensor's, scored in-sample) does not teach the detector to ignore outages. Two weeks of
    routine misses thus speak for a month, as a fitted tail does for continuous scores.
    ``runs`` are the lengths (in readings) of the window's runs of missed readings, ``days``
    its length.
    """
    runs = np.asarray(runs, dtype=np.float64)
    runs = runs[np.isfinite(runs) & (runs >= 1)]
    if len(runs) == 0 or days <= 0 or budget <= 0:
        return float(floor)
    censored = np.minimum(runs, RUN_CENSOR)
    goes_on = float((censored - 1).sum())
    stops = float((runs < RUN_CENSOR).sum())
    if stops == 0:  # every run is an outage: nothing routine to learn the tail from
        return float(floor)
    p = goes_on / (goes_on + stops)
    rate = len(runs) / days * DAYS_PER_BUDGET  # runs a month
    target = budget * SAFETY
    if rate <= target or p <= 0.0:
        m = 1 if rate <= target else 2
    else:
        m = 1 + math.ceil(math.log(target / rate) / math.log(p))
    return max(float(floor), float(m))


def routine_run_threshold(runs: np.ndarray, budget: float, days: float) -> float:
    """The run of missed readings the sensor's own history makes routine: one more than the
    longest run left once the ``allowed_exceedances`` longest are set aside (0 when the window
    holds no more runs than that).

    A sensor that goes quiet every night, or whose gateway parks for hours most days, makes
    long runs of missed readings again and again: each is longer than a geometric model of
    short misses allows, yet none is an outage. Setting the budget's share of the longest runs
    aside keeps one real outage in the training window (a young sensor's, scored in-sample)
    from teaching the detector to ignore outages; what is left is the sensor's habit. ``runs``
    are the lengths (in readings) of the window's runs of missed readings, ``days`` its length.
    """
    runs = np.asarray(runs, dtype=np.float64)
    runs = np.sort(runs[np.isfinite(runs) & (runs >= 1)])[::-1]
    if days <= 0 or budget <= 0:
        return 0.0
    allowed = allowed_exceedances(budget, days)
    return float(runs[allowed]) + 1.0 if len(runs) > allowed else 0.0


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
    blocks = _Blocks(score)
    maxima = blocks.maxima(block)
    days = (score.index[-1] - score.index[0]) / pd.Timedelta(days=1) if len(score) > 1 else 0.0
    while 0 < len(maxima) < MIN_BLOCKS and block > pd.Timedelta("1min"):
        block = block / 2  # a young sensor: shorter blocks, so its tail still speaks
        maxima = blocks.maxima(block)
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
