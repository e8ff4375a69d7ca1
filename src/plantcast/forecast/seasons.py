"""Season detection: which cycles a series holds (24h, 7d, a 10h batch, …), and how strongly.

Candidates are the calendar cycles of ``CANDIDATES`` and the periods the data proposes
(periodogram peaks, ``plantcast.forecast.cycles``, with at least ``SEARCH_MIN_CYCLES`` cycles
of history); a proposal within ``SAME_AS_CALENDAR`` of a calendar candidate is that calendar
cycle. For each candidate period P that the sampling step and the history allow (P of at
least ``MIN_STEPS`` steps, at least ``MIN_CYCLES`` whole cycles), shortest first:

1. resample the series to a grid of P/B (B ≤ ``MAX_BINS`` phase bins; gaps stay empty —
   filling them would copy a season into the holes and invent the very cycle we test for);
2. detrend lightly: a least-squares line, then a centred moving average one period long, so
   anything slower than P (drift, a random walk's wander, weather) is not taken for a season;
3. average the detrended values per phase of P (seasonal means) and measure the seasonal
   strength F_s = 1 − Var(R)/Var(S + R) (Hyndman & Athanasopoulos), here *adjusted* for the
   bins' degrees of freedom (the adjusted R² of a one-way ANOVA on the phase bins): plain F_s
   of pure noise is about 1/cycles (0.5 with two cycles), the adjusted one about 0;
4. keep P when its strength is at least ``MIN_STRENGTH`` and the ANOVA's F test is
   significant (p ≤ ``MAX_P_VALUE`` per candidate), then remove its seasonal means before the
   next, longer candidate is tested, so a weekly test sees only what the daily cycle leaves.

A kept period that divides a longer kept one 2, 3 or 4 times (12h, 8h, 6h under 24h) is a
harmonic of that cycle's shape, not a cycle of its own, and is dropped; 24h under 7d (7
times) is kept, as MSTL wants both. Strengths are then measured again on the kept periods
alone. The result is ordered by period, shortest first, as periods are written ("24h,7d"):
single-season models (seasonal_naive, ets) take the first, the cycle a bounded training
window holds most repetitions of.

The thresholds were chosen by measurement (see ``MIN_STRENGTH``). The cost is bounded by
using only the latest ``MAX_POINTS`` readings: numpy only, 50–200 ms for 20k readings and
every candidate on a 2-core machine.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import fdtrc

from plantcast.core.errors import InputError
from plantcast.core.timeutil import DurationLike, format_duration, parse_duration
from plantcast.forecast.cycles import regular_grid, spectral_periods
from plantcast.forecast.features import infer_interval
from plantcast.forecast.preprocess import clean, tail

# Calendar cycles of plants and their surroundings: sub-daily batches and shifts, the day,
# the week, the year. Only those the step and the history allow are tested (see eligible).
CANDIDATES = ("1h", "2h", "4h", "6h", "8h", "12h", "24h", "7d", "365d")
MIN_STEPS = 4  # a period must span at least this many sampling steps
MIN_CYCLES = 2  # whole cycles of history needed to test a period
MAX_POINTS = 20_000  # latest readings used: bounds the cost (365d needs 2 years, so hourly)
MAX_CELLS = 10 * MAX_POINTS  # grid cells per test: a bound for readings spread over gaps
MAX_BINS = 168  # phase bins per period (7d in hours): long periods are tested on a coarser grid
# Adjusted seasonal strength needed to keep a period: an effect-size floor, below which a cycle
# is not worth a model's seasonal terms. Measured with 40 seeds of a daily sinusoid in white
# noise over 4 and 8 weeks at 30 min: true strength 0.15 is found 40/40 times at 0.1 (about
# half at 0.15); 0.05 never. Telling chance from a cycle is the F test's job, not this floor's:
# cycle-free series (white noise, AR(1) φ = 0.9, random walk, linear and quadratic trends, a
# level shift; 100 seeds each at 30 min over 2 and 12 weeks, 1 h over 1 and 2 years, 10 min
# over 20k readings) reach adjusted strengths up to 0.8 (a random walk over exactly two
# cycles), yet none of those 3,000 series was given a season.
MIN_STRENGTH = 0.1
MAX_P_VALUE = 1e-4  # per-candidate F-test level (about 1e-3 over all candidates, Bonferroni)
HARMONIC_RATIOS = (2, 3, 4)
# Cycles the data proposes need more history than calendar ones: they are chosen as the
# periodogram's peaks, so the test sees the best of many frequencies, not one fixed guess.
SEARCH_MIN_CYCLES = 4
SAME_AS_CALENDAR = 0.025  # relative distance under which a proposal is the calendar cycle


@dataclass(frozen=True)
class Season:
    """One seasonal period found in a series, with its strength in [0, 1]."""

    period: pd.Timedelta
    strength: float

    @property
    def label(self) -> str:
        return format_duration(self.period)

    def to_dict(self) -> dict[str, Any]:
        return {"period": self.label, "strength": round(float(self.strength), 3)}


def format_periods(seasons: Iterable[Season]) -> tuple[str, ...]:
    """The periods as strings models accept: ('24h', '7d')."""
    return tuple(s.label for s in seasons)


def eligible_periods(
    index: pd.DatetimeIndex,
    candidates: Iterable[DurationLike] = CANDIDATES,
    interval: pd.Timedelta | None = None,
) -> tuple[pd.Timedelta, ...]:
    """Candidates of at least ``MIN_STEPS`` steps with ``MIN_CYCLES`` whole cycles in ``index``."""
    if len(index) < 2:
        return ()
    step = interval or infer_interval(index)
    span = index[-1] - index[0] + step
    periods = sorted({parse_duration(p, field="periods") for p in candidates})
    return tuple(p for p in periods if p >= MIN_STEPS * step and span >= MIN_CYCLES * p)


def detect_seasons(
    series: pd.Series,
    *,
    candidates: Iterable[DurationLike] = CANDIDATES,
    min_strength: float = MIN_STRENGTH,
    max_points: int = MAX_POINTS,
    search: bool = True,
) -> tuple[Season, ...]:
    """The seasonal periods of ``series`` (tz-aware UTC index), shortest first; () if none.

    ``search``: also test the periods the data proposes (see the module docstring), not only
    ``candidates``.
    """
    if not 0 <= min_strength < 1:
        raise InputError("min_strength must be in [0, 1)", field="min_strength")
    if max_points < 2 * MIN_STEPS:
        raise InputError(f"max_points must be at least {2 * MIN_STEPS}", field="max_points")
    x = clean(tail(series, max_points) if isinstance(series, pd.Series) else series)
    if len(x) < 2 * MIN_STEPS or np.ptp(x.to_numpy()) == 0:
        return ()
    step = infer_interval(x.index)
    periods = eligible_periods(x.index, candidates, step)
    t, v = x.index.as_unit("ns").asi8, x.to_numpy()
    levels = dict.fromkeys(periods, MAX_P_VALUE)
    if search:
        proposed, tried = _proposed(t, v, step, candidates)
        levels |= {p: MAX_P_VALUE / tried for p in proposed if p not in levels}
        periods = tuple(sorted(levels))
    kept = [s.period for s in _select(t, v, levels, min_strength, periods, step)]
    kept = [p for p in kept if not any(_is_harmonic(p, q) for q in kept)]
    return tuple(_select(t, v, {p: levels[p] for p in kept}, min_strength, periods, step))


def _proposed(
    t: np.ndarray, v: np.ndarray, step: pd.Timedelta, candidates: Iterable[pd.Timedelta]
) -> tuple[list[pd.Timedelta], int]:
    """Periods the periodogram proposes that are no calendar candidate (any, eligible or not),
    and how many frequencies they were picked from: their F test's level is divided by it
    (Bonferroni), as each is the best of that many (without it, 4 in 1,440 cycle-free series
    were given a season, all strongly persistent or random walks)."""
    y = regular_grid(t, v, step, MAX_CELLS)
    if y is None:
        return [], 1

    def strength(period: pd.Timedelta) -> float:
        test = _seasonal_means(t, v, period, step)
        return 0.0 if test is None else test[0]

    calendar = [parse_duration(c, field="candidates") for c in candidates]
    found = spectral_periods(
        y, step, min_steps=MIN_STEPS, min_cycles=SEARCH_MIN_CYCLES, strength=strength
    )
    tried = max(1, len(y) // MIN_STEPS - SEARCH_MIN_CYCLES)
    return [
        p for p in found if not any(abs(p - c) <= SAME_AS_CALENDAR * c for c in calendar)
    ], tried


def _is_harmonic(short: pd.Timedelta, long: pd.Timedelta) -> bool:
    return long > short and any(long == r * short for r in HARMONIC_RATIOS)


def _select(
    t: np.ndarray,
    v: np.ndarray,
    levels: dict[pd.Timedelta, float],
    min_strength: float,
    pool: Iterable[pd.Timedelta],
    step: pd.Timedelta,
) -> list[Season]:
    """Test periods (``levels``: period → F-test level) shortest first; each kept one's
    seasonal means leave the series.

    A period is tested on what its longest non-harmonic divisor in ``pool`` leaves (7d on
    the series without its 24h means), kept or not: otherwise a week, which contains
    seven days, would be found for a daily cycle too weak to pass on its own.
    """
    found: list[Season] = []
    for period in sorted(levels):
        base = _divisor(period, pool)
        y = v
        if base is not None and all(s.period != base for s in found):
            under = _seasonal_means(t, v, base, step)
            y = v if under is None else v - under[2]
        test = _seasonal_means(t, y, period, step)
        if test is None:
            continue
        strength, p_value, remove = test
        if strength >= min_strength and p_value <= levels[period]:
            found.append(Season(period, strength))
            v = v - remove
    return found


def _divisor(period: pd.Timedelta, pool: Iterable[pd.Timedelta]) -> pd.Timedelta | None:
    """The longest period in ``pool`` that divides ``period`` more than 4 times, if any."""
    fits = [
        q
        for q in pool
        if q < period and period.value % q.value == 0 and period / q > max(HARMONIC_RATIOS)
    ]
    return max(fits, default=None)


def _seasonal_means(
    t: np.ndarray, v: np.ndarray, period: pd.Timedelta, step: pd.Timedelta
) -> tuple[float, float, np.ndarray] | None:
    """(adjusted strength, F-test p-value, seasonal means at times ``t``), or None.

    ``t`` are epoch nanoseconds (ascending), ``v`` the values. Cells of the grid are means of
    the readings they hold; empty cells stay NaN.
    """
    bins = int(min(MAX_BINS, max(1, round(period / step))))
    width = period.value // bins
    cell = t // width
    rel = cell - cell[0]
    size = int(rel[-1]) + 1
    if size > MAX_CELLS:  # readings scattered over a span far longer than they fill
        return None
    counts = np.bincount(rel, minlength=size)
    y = np.bincount(rel, weights=v, minlength=size) / np.maximum(counts, 1)
    y[counts == 0] = np.nan
    phase = np.minimum(((cell[0] + np.arange(size)) * width % period.value) // width, bins - 1)
    d = _detrend(y, phase, bins)
    ok = np.isfinite(d)
    d, b = d[ok], phase[ok]
    counts = np.bincount(b, minlength=bins)
    n, groups = len(d), int((counts > 0).sum())
    df_within, df_between = n - groups, groups - 1
    if df_between < 1 or df_within < groups:  # under ~2 cycles of usable cells
        return None
    means = np.bincount(b, weights=d, minlength=bins) / np.maximum(counts, 1)
    ss_total = float(((d - d.mean()) ** 2).sum())
    ss_resid = float(((d - means[b]) ** 2).sum())
    if ss_total <= 0:
        return None
    strength = max(0.0, 1.0 - (ss_resid / df_within) / (ss_total / (n - 1)))
    f_stat = ((ss_total - ss_resid) / df_between) / max(ss_resid / df_within, 1e-300)
    # Neighbouring phases of a persistent residual (a random walk's wander) move together, so
    # the F test has fewer independent degrees of freedom than bins: Bartlett's (1-ρ)/(1+ρ).
    resid = np.full(len(ok), np.nan)
    resid[ok] = d - means[b]
    shrink = _effective_fraction(resid)
    p_value = float(fdtrc(df_between * shrink, df_within * shrink, f_stat))
    profile = np.where(counts > 0, means - np.average(means, weights=counts), 0.0)
    return strength, p_value, profile[phase[rel]]


def _effective_fraction(resid: np.ndarray) -> float:
    """(1 − ρ)/(1 + ρ) for the lag-1 autocorrelation ρ ≥ 0 of ``resid`` (NaN pairs skipped)."""
    a, b = resid[:-1], resid[1:]
    pair = np.isfinite(a) & np.isfinite(b)
    if pair.sum() < 3:
        return 1.0
    a, b = a[pair] - a[pair].mean(), b[pair] - b[pair].mean()
    denom = float(np.sqrt((a * a).sum() * (b * b).sum()))
    rho = min(max(float((a * b).sum()) / denom, 0.0), 0.99) if denom > 0 else 0.0
    return (1.0 - rho) / (1.0 + rho)


def _detrend(y: np.ndarray, phase: np.ndarray, bins: int) -> np.ndarray:
    """y minus a least-squares line and a centred moving average one period long (NaNs kept).

    Two passes, as in classical decomposition: the moving average is taken again on the
    series without its first seasonal estimate, because near the ends its window is cut short
    and would otherwise mistake part of the cycle for trend.
    """
    ok = np.isfinite(y)
    if ok.sum() >= 2:
        pos = np.arange(len(y), dtype=np.float64)
        p, q = pos[ok] - pos[ok].mean(), y[ok] - y[ok].mean()
        slope = float((p * q).sum() / (p * p).sum())
        y = y - y[ok].mean() - slope * (pos - pos[ok].mean())
    d = y - _moving_average(y, bins)
    good = np.isfinite(d)
    counts = np.bincount(phase[good], minlength=bins)
    means = np.bincount(phase[good], weights=d[good], minlength=bins) / np.maximum(counts, 1)
    out: np.ndarray = y - _moving_average(y - means[phase], bins)
    return out


def _moving_average(y: np.ndarray, window: int) -> np.ndarray:
    """Centred mean of ``window`` cells, over the non-NaN ones (at least half a window)."""
    ok = np.isfinite(y)
    sums = np.concatenate([[0.0], np.cumsum(np.where(ok, y, 0.0))])
    counts = np.concatenate([[0], np.cumsum(ok)])
    start = np.arange(len(y)) - window // 2
    lo, hi = np.clip(start, 0, len(y)), np.clip(start + window, 0, len(y))
    n = counts[hi] - counts[lo]
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = (sums[hi] - sums[lo]) / n
    return np.where(n >= max(1, window // 2), mean, np.nan)
