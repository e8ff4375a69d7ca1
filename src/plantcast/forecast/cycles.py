"""Cycle periods proposed by the data itself: periodogram peaks, refined and snapped to round.

Plants run on cycles that are not calendar ones (a 10 h batch, a 37 min compressor cycle).
``spectral_periods`` proposes them; ``plantcast.forecast.seasons`` tests every proposal with
the same F test as the calendar candidates, so this module only has to find, not to judge:

1. the readings are averaged onto a grid of the sampling step, short holes interpolated;
2. a least-squares line and a Hann window go before the FFT (leakage from a trend or the
   edges would otherwise bury short cycles);
3. a peak is a local maximum of the power standing ``MIN_PROMINENCE`` times above the median
   power of its neighbourhood (so the 1/f² rise of a random walk is not a peak); peaks at a
   multiple of a stronger peak's frequency are its harmonics (a cycle's shape) and dropped;
4. a peak's frequency is refined between bins (a parabola through the log power), giving a
   period in steps; among the whole-step periods within the FFT's resolution of it, the one
   whose phase means explain most (``strength``) wins, a round duration (10h, not 9h58min)
   when it explains as much.

Numpy only; the FFT of 20,000 readings takes a few milliseconds.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

MIN_PROMINENCE = 8.0  # peak power over the median power of its neighbourhood
NEIGHBOURS = 8  # bins each side that make a peak's neighbourhood
MAX_PEAKS = 3  # proposals per series (the strongest, harmonics left out)
MAX_TRIES = 12  # whole-step periods tried around one peak
ROUND_UNITS = tuple(
    pd.Timedelta(u) for u in ("1d", "12h", "1h", "30min", "15min", "10min", "5min", "1min", "1s")
)


def regular_grid(
    t: np.ndarray, v: np.ndarray, step: pd.Timedelta, max_cells: int
) -> np.ndarray | None:
    """Means per step-wide cell from the first reading, holes interpolated; None if too sparse."""
    cell = (t - t[0]) // step.value
    size = int(cell[-1]) + 1
    if size > max_cells:
        return None
    counts = np.bincount(cell, minlength=size)
    sums = np.bincount(cell, weights=v, minlength=size)
    have = counts > 0
    if have.sum() < max(8, size // 2):  # mostly holes: interpolation would invent the cycle
        return None
    pos = np.arange(size)
    return np.interp(pos, pos[have], sums[have] / counts[have])


def _peaks(power: np.ndarray, k_min: int, k_max: int) -> list[int]:
    """Bins of prominent local maxima in [k_min, k_max], strongest first, harmonics dropped."""
    found = []
    for k in range(max(k_min, 1), min(k_max, len(power) - 2) + 1):
        if power[k] < power[k - 1] or power[k] < power[k + 1]:
            continue
        lo, hi = max(1, k - NEIGHBOURS), min(len(power), k + NEIGHBOURS + 1)
        around = np.concatenate([power[lo : max(lo, k - 1)], power[k + 2 : hi]])
        if len(around) and power[k] >= MIN_PROMINENCE * np.median(around):
            found.append(k)
    kept: list[int] = []
    for k in sorted(found, key=lambda b: -power[b]):
        harmonic = any(abs(k / f - round(k / f)) * f <= 1.0 and k > f * 1.5 for f in kept)
        if not harmonic:
            kept.append(k)
        if len(kept) == MAX_PEAKS:
            break
    return kept


def _refined_bin(power: np.ndarray, k: int) -> float:
    """The peak's frequency between bins: vertex of a parabola through the log power."""
    a, b, c = np.log(power[k - 1 : k + 2] + 1e-300)
    denom = a - 2 * b + c
    shift = 0.5 * (a - c) / denom if denom < 0 else 0.0
    return k + float(np.clip(shift, -0.5, 0.5))


def _roundness(period: pd.Timedelta) -> int:
    """0 for a whole number of days, higher for periods only a finer unit divides."""
    for rank, unit in enumerate(ROUND_UNITS):
        if period.value % unit.value == 0:
            return rank
    return len(ROUND_UNITS)


def spectral_periods(
    y: np.ndarray,
    step: pd.Timedelta,
    *,
    min_steps: int,
    min_cycles: float,
    strength: Callable[[pd.Timedelta], float],
) -> list[pd.Timedelta]:
    """Periods (whole steps, at least ``min_steps``, ``min_cycles`` of them in ``y``) where the
    regular series ``y`` holds a cycle; ``strength(period)`` scores the whole-step choices."""
    n = len(y)
    if n < 4 * min_steps:
        return []
    pos = np.arange(n, dtype=np.float64)
    z = y - np.polyval(np.polyfit(pos, y, 1), pos)
    power = np.abs(np.fft.rfft(z * np.hanning(n))) ** 2
    k_min = int(np.ceil(min_cycles))
    k_max = int(n // min_steps)
    out: list[pd.Timedelta] = []
    for k in _peaks(power, k_min, k_max):
        center = n / _refined_bin(power, k)  # period in steps
        reach = max(1.0, 0.5 * center / k)  # half a bin's width, in steps
        lo, hi = max(min_steps, int(np.floor(center - reach))), int(np.ceil(center + reach))
        if hi < lo or n / max(lo, 1) < min_cycles:
            continue
        steps = np.unique(np.linspace(lo, hi, min(MAX_TRIES, hi - lo + 1)).round().astype(int))
        tries = {int(m) * step for m in steps}
        tries |= _round_periods(center * step, reach * step, step)
        scored = {p: strength(p) for p in tries if n * step >= min_cycles * p}
        if not scored:
            continue
        best = max(scored.values())
        if best <= 0:
            continue
        good = [p for p, s in scored.items() if s >= 0.98 * best]
        out.append(min(good, key=lambda p: (_roundness(p), -scored[p])))
    return sorted(set(out))


def _round_periods(
    center: pd.Timedelta, reach: pd.Timedelta, step: pd.Timedelta
) -> set[pd.Timedelta]:
    """Round durations (whole steps) within ``reach`` of ``center``."""
    out = set()
    for unit in ROUND_UNITS:
        if unit.value % step.value:
            continue
        near = round(center / unit) * unit
        if near > pd.Timedelta(0) and abs(near - center) <= reach:
            out.add(near)
    return out
