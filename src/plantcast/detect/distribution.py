"""Distribution changes: the scale of the noise, and the shape of the seasonal cycle."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from plantcast.core.errors import NotEnoughData
from plantcast.detect.base import DEFAULT_BUDGET, Detector
from plantcast.detect.episodes import EpisodePolicy
from plantcast.detect.rolling import rolling_mean
from plantcast.detect.windows import SeasonalProfile, window_points, with_context

MAX_OCTAVES = 8.0  # a scale ratio beyond 2^8 either way scores as 2^8
CLIP = 5.0  # steps are winsorised at 5 x their training median: one spike is not a scale


class _WindowedDetector(Detector):
    """Shared by both: ``periods``, a window in readings (``window`` or from the season /
    autocorrelation, at least ``min_window``), a threshold floor, the budget."""

    episode_gap = 2
    policy = EpisodePolicy(exit_ratio=0.8, cooldown="1h")
    min_train_points = 32

    def __init__(
        self,
        periods: tuple[str, ...] = (),
        *,
        window: int | None = None,
        min_window: int = 32,
        max_window: int = 512,
        threshold: float = 0.5,
        tail_factor: float = 1.25,
        budget: float | None = DEFAULT_BUDGET,
        train_window: str | pd.Timedelta = "14d",
    ) -> None:
        self.periods = tuple(periods)
        self.window = window
        self.min_window = min_window
        self.max_window = max_window
        self.threshold = threshold
        self.tail_factor = tail_factor
        self.budget = budget
        self.train_window = train_window

    @property
    def requires_fit(self) -> bool:
        return True

    def _window(self, series: pd.Series, windows: int) -> int:
        if self.window is not None:
            m, source = int(self.window), "fixed"
        else:
            m, source = window_points(series, self.periods, self.max_window)
            if m < self.min_window:
                m, source = self.min_window, f"{source}, raised to min_window"
        if len(series) < windows * m:
            raise NotEnoughData(
                f"{type(self).__name__} needs at least {windows * m} training readings"
                f" ({windows} windows of {m}), got {len(series)}",
                needed=windows * m,
            )
        self.window_, self.window_source_ = m, source
        return m

    def _threshold(self, score: np.ndarray, index: pd.DatetimeIndex, valid: int) -> float:
        ok = score[valid:]
        q99 = float(np.quantile(ok, 0.99)) if len(ok) else 0.0
        floor = max(self.threshold, self.tail_factor * q99)
        return self._calibrate(pd.Series(score, index=index), floor)

    def explain(self) -> dict[str, Any]:
        info = super().explain()
        info.pop("tail", None)
        info.pop("profile", None)
        return info


class ScaleChangeDetector(_WindowedDetector):
    """Scores ``log2(s_t / s_train)``: the scale of the last ``window`` readings' steps (mean
    absolute first difference of the deseasonalised series, each step winsorised at 5 × the
    training median step, so one spike is not a change of scale; the level and slow seasonal
    misfit drop out of a difference) against the same on the training window. 1 = the scale
    doubled; variance tripling is 0.79. Only a growing scale scores unless ``both_ways`` (a
    sensor going quiet is the stuck detector's). A winsorised mean, not a median: its spread
    over a window is about 1.6 × smaller, which is what separates a tripling from chance.
    Needs 3 windows of training (``min_window`` 64 readings).
    """

    name = "scale_change"

    def __init__(
        self, periods: tuple[str, ...] = (), *, both_ways: bool = False, **kw: Any
    ) -> None:
        kw.setdefault("min_window", 64)
        kw.setdefault("threshold", 0.6)
        kw.setdefault("tail_factor", 1.5)
        super().__init__(periods, **kw)
        self.both_ways = both_ways

    def _steps(self, series: pd.Series) -> np.ndarray:
        resid = series.to_numpy() - self.profile_.predict(series.index)
        steps: np.ndarray = np.abs(np.diff(resid, prepend=resid[0] if len(resid) else 0.0))
        return steps

    def _score(self, series: pd.Series) -> np.ndarray:
        steps = np.minimum(self._steps(series), self.clip_)
        local = rolling_mean(steps, self.window_, self.window_)
        ratio = np.log2(np.maximum(local, 1e-300) / self.base_)
        change = np.abs(ratio) if self.both_ways else np.maximum(ratio, 0.0)
        score: np.ndarray = np.nan_to_num(np.minimum(change, MAX_OCTAVES))
        return score

    def _fit_core(self, series: pd.Series) -> None:
        m = self._window(series, 3)
        self.profile_ = SeasonalProfile(self.periods).fit(series)
        steps = self._steps(series)[1:]
        med = float(np.median(steps))
        self.clip_ = CLIP * (med if med > 0 else max(float(np.mean(steps)), 1e-12))
        self.base_ = max(float(np.mean(np.minimum(steps, self.clip_))), 1e-300)
        self.tail_ = series.iloc[-m:]
        self.threshold_ = self._threshold(self._score(series), series.index, m)

    def context_points(self) -> int | None:
        """A window of steps, each from the reading before."""
        return int(self.window_) + 1

    def _score_parts(self, series: pd.Series) -> dict[str, Any]:
        full, skip = with_context(self.tail_, series)
        score = self._score(full)[skip:]
        expected = self.profile_.predict(series.index)
        return {"score": score, "flag": self._flags(score), "expected": expected}


class ProfileChangeDetector(_WindowedDetector):
    """Scores how far the last cycle's shape departs from its recent norm: the residual of
    each reading against the median of the same phase in the ``cycles`` cycles before it (a
    seasonal-naive norm, by position: regular sampling is assumed), less its mean over the
    last cycle (a level change is the shift detectors' job), as an RMS over the last cycle,
    over that RMS's median on the training window (1 is ordinary). The cycle is the season in
    readings, else the autocorrelation cycle; a sensor with neither gets the autocorrelation
    window and a norm that is its own recent past (the score then follows the noise's
    structure, i.e. a new oscillation). Needs ``cycles`` + 2 cycles of training (at least 4).
    """

    name = "profile_change"

    def __init__(self, periods: tuple[str, ...] = (), *, cycles: int = 5, **kw: Any) -> None:
        kw.setdefault("threshold", 1.5)
        kw.setdefault("min_window", 8)
        super().__init__(periods, **kw)
        self.cycles = cycles

    def _rms(self, values: np.ndarray) -> np.ndarray:
        p, k = self.window_, self.cycles_
        n = len(values)
        past = np.full((k, n), np.nan)
        for j in range(1, k + 1):
            past[j - 1, j * p :] = values[: n - j * p] if n > j * p else []
        # The median of the past cycles there are (NaN before the first): reading t has
        # c = min(k, t // p) of them, the first rows of ``past``. Sorted down each column
        # (NaN last), the median is the middle one of the first c, or the mean of the middle
        # two: the float np.median gives (np.nanmedian's masked arrays cost several times
        # more, and a median per count ``k`` calls). ``values`` holds no NaN
        # (``validate_series`` drops them), so the NaN sorted last are the missing cycles.
        count = np.minimum(k, np.arange(n) // p)
        ordered = np.sort(past, axis=0)
        cols = np.arange(n)
        upper = ordered[np.maximum(count // 2, 0).clip(max=k - 1), cols]
        lower = ordered[np.maximum((count - 1) // 2, 0), cols]
        norm = np.where(count % 2 == 1, upper, (lower + upper) / 2)
        norm[count == 0] = np.nan
        e = values - norm
        shape = e - rolling_mean(e, p, p)
        rms: np.ndarray = np.sqrt(rolling_mean(shape**2, p, p))
        return rms

    def _fit_core(self, series: pd.Series) -> None:
        p = self._window(series, 4)
        self.cycles_ = int(min(self.cycles, len(series) // p - 2))
        rms = self._rms(series.to_numpy())
        valid = (self.cycles_ + 1) * p
        ok = rms[np.isfinite(rms)]
        self.typical_ = max(float(np.median(ok)) if len(ok) else 1.0, 1e-12)
        score = np.nan_to_num(rms / self.typical_)
        self.tail_ = series.iloc[-(self.cycles_ + 2) * p :]
        self.threshold_ = self._threshold(score, series.index, valid)

    def context_points(self) -> int | None:
        """The norm's past cycles, and the last cycle's mean and RMS over the one before."""
        return (int(self.cycles_) + 2) * int(self.window_)

    def _score_parts(self, series: pd.Series) -> dict[str, Any]:
        tail = self.tail_
        before = tail.to_numpy()[: tail.index.searchsorted(series.index[0])]  # as with_context
        full = np.concatenate([before, series.to_numpy()]) if len(before) else series.to_numpy()
        score = np.nan_to_num(self._rms(full) / self.typical_)[len(before) :]
        return {"score": score, "flag": self._flags(score)}
