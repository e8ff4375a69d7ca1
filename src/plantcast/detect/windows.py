"""Window lengths for the pattern detectors (from the season or the autocorrelation) and the
seasonal profile they remove, in readings of the series' own interval: never a fixed day."""

from __future__ import annotations

import numpy as np
import pandas as pd

from plantcast.core.timeutil import parse_duration
from plantcast.forecast.features import fourier_terms

MIN_WINDOW = 8  # readings: shorter windows say nothing about a shape
CYCLE_ACF = 0.3  # an autocorrelation peak this high after the first trough is a cycle


def step_of(index: pd.DatetimeIndex) -> pd.Timedelta:
    """The median time between readings (1 s with fewer than two readings)."""
    if len(index) < 2:
        return pd.Timedelta("1s")
    ns = int(np.median(np.diff(index.as_unit("ns").asi8)))
    return pd.Timedelta(max(ns, 1), unit="ns")


def season_points(
    index: pd.DatetimeIndex, periods: tuple[str | pd.Timedelta, ...], *, cycles: int = 2
) -> tuple[int, str] | None:
    """The shortest given period, in readings, that ``index`` holds ``cycles`` times over
    (and is at least ``MIN_WINDOW`` readings long); None when no period fits."""
    if len(index) < 2:
        return None
    step = step_of(index)
    span = index[-1] - index[0]
    fits = []
    for p in periods:
        period = parse_duration(p, field="periods")
        points = round(period / step)
        if points >= MIN_WINDOW and period * cycles <= span:
            fits.append((points, f"season {p}"))
    return min(fits) if fits else None


def autocorrelation(values: np.ndarray, max_lag: int) -> np.ndarray:
    """The sample autocorrelation at lags 0 … ``max_lag`` (by FFT)."""
    x = np.asarray(values, dtype=np.float64) - float(np.mean(values))
    n = len(x)
    size = 1 << int(np.ceil(np.log2(max(2 * n, 2))))
    spec = np.fft.rfft(x, size)
    acov = np.fft.irfft(spec * np.conj(spec), size)[: max_lag + 1]
    if acov[0] <= 0:
        flat: np.ndarray = np.r_[1.0, np.zeros(max_lag)]
        return flat
    acf: np.ndarray = acov / acov[0]
    return acf


def acf_window(values: np.ndarray, max_points: int) -> tuple[int, str]:
    """A window from the autocorrelation: the lag of its first peak above ``CYCLE_ACF`` after
    it first turns negative (a cycle), else four times its decorrelation length (the lag
    where it falls below 1/e), within ``MIN_WINDOW`` … ``max_points``."""
    max_lag = max(min(max_points, len(values) // 3), MIN_WINDOW)
    acf = autocorrelation(values, max_lag)
    negative = np.flatnonzero(acf < 0)
    if len(negative):
        a = acf[negative[0] :]
        peaks = np.flatnonzero((a[1:-1] > a[:-2]) & (a[1:-1] >= a[2:]) & (a[1:-1] > CYCLE_ACF))
        if len(peaks):
            lag = int(negative[0] + peaks[0] + 1)
            if MIN_WINDOW <= lag <= max_points:
                return lag, f"autocorrelation cycle of {lag} readings"
    below = np.flatnonzero(acf < np.exp(-1.0))
    corr = int(below[0]) if len(below) else max_lag
    lag = int(np.clip(4 * corr, MIN_WINDOW, max(max_points, MIN_WINDOW)))
    return lag, f"4 x autocorrelation length ({corr} readings)"


def window_points(
    series: pd.Series, periods: tuple[str | pd.Timedelta, ...], max_points: int
) -> tuple[int, str]:
    """The detector window in readings and where it came from: the season when one is given
    and fits the series twice over and within ``max_points``, else the autocorrelation."""
    season = season_points(series.index, periods)
    if season is not None and season[0] <= max_points:
        return season
    return acf_window(series.to_numpy(), max_points)


class SeasonalProfile:
    """The seasonal shape of a training window: a least-squares sum of ``harmonics`` sines per
    period (only periods the window holds twice), plus a constant; a constant alone when no
    period fits (a sensor without a season is modelled without one)."""

    def __init__(self, periods: tuple[str | pd.Timedelta, ...], harmonics: int = 3) -> None:
        self.periods = periods
        self.harmonics = harmonics
        self.used: tuple[pd.Timedelta, ...] = ()
        self.coef = np.zeros(1)

    def _design(self, index: pd.DatetimeIndex) -> np.ndarray:
        terms = fourier_terms(index, self.used, self.harmonics)  # the forecasters' own terms
        return np.column_stack([np.ones(len(index)), terms])

    def fit(self, series: pd.Series) -> SeasonalProfile:
        span = series.index[-1] - series.index[0] if len(series) > 1 else pd.Timedelta(0)
        step = step_of(series.index)
        periods = (parse_duration(p, field="periods") for p in self.periods)
        self.used = tuple(p for p in periods if 2 * p <= span and p >= 4 * step)
        design = self._design(series.index)
        if len(series) <= design.shape[1]:
            self.used = ()
            design = self._design(series.index)
        self.coef, *_ = np.linalg.lstsq(design, series.to_numpy(), rcond=None)
        return self

    def predict(self, index: pd.DatetimeIndex) -> np.ndarray:
        out: np.ndarray = self._design(index) @ self.coef
        return out


def with_context(tail: pd.Series, series: pd.Series) -> tuple[pd.Series, int]:
    """``series`` preceded by the training ``tail`` readings before its start (so trailing
    windows are full from its first reading), and how many readings were prepended."""
    before = tail[tail.index < series.index[0]] if len(series) else tail.iloc[:0]
    if before.empty:
        return series, 0
    return pd.concat([before, series]), len(before)
