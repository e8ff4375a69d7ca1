"""Discords: a subsequence unlike any in the training history, by a matrix profile (stumpy)."""

from __future__ import annotations

import importlib
import warnings
from typing import Any

import numpy as np
import pandas as pd

from plantcast.core.errors import NotEnoughData
from plantcast.detect.base import DEFAULT_BUDGET, Detector, score_frame
from plantcast.detect.episodes import EpisodePolicy
from plantcast.detect.windows import window_points, with_context

_STUMPY: Any = None


def stumpy_module() -> Any:
    """stumpy, imported on first use, with numba's on-disk cache turned on for its compiled
    functions: compiling them takes a minute or more of CPU in every new process otherwise
    (measured 65-100 s on a busy 2-core machine; about 1 s from the cache). The cache lives in
    ``NUMBA_CACHE_DIR`` or beside stumpy's sources; where it cannot be enabled, stumpy still
    works, only compiled afresh."""
    global _STUMPY
    if _STUMPY is None:
        import stumpy  # type: ignore[import-untyped]  # ships no type information

        try:
            from stumpy import cache

            for module_name, func_name in cache.get_njit_funcs():
                module = importlib.import_module(f"stumpy.{module_name}")
                getattr(module, func_name).enable_caching()
        except Exception:  # an optional speed-up, never a failure
            pass
        _STUMPY = stumpy
    return _STUMPY


def profile_distances(values: np.ndarray, m: int, history: np.ndarray | None) -> np.ndarray:
    """Each length-``m`` subsequence's z-normalised distance to its nearest neighbour: in
    ``history`` (an AB-join) or, without one, elsewhere in ``values`` (a self-join)."""
    stumpy = stumpy_module()
    if history is None:
        mp = stumpy.stump(values, m)
    else:
        with warnings.catch_warnings():
            # rescoring the training window itself (context before a chunk) is meant: its
            # exact matches in the history score 0, which stumpy warns about as a self-join
            warnings.simplefilter("ignore", UserWarning)
            mp = stumpy.stump(values, m, history, ignore_trivial=False)
    dist: np.ndarray = np.asarray(mp[:, 0], dtype=np.float64)
    return dist


class DiscordDetector(Detector):
    """Scores each reading by how unlike anything in the training history the subsequence of
    ``m`` readings ending at it is: its nearest-neighbour z-normalised distance to the
    training window (a matrix-profile AB-join), over the typical nearest-neighbour distance
    within the training window itself (its self-join), so 1 is ordinary.

    ``m`` is the season in readings when ``periods`` gives one the training window holds twice
    (at most ``max_window``), else the sensor's autocorrelation cycle or four times its
    decorrelation length (see :func:`plantcast.detect.windows.window_points`), the last at
    least ``min_window`` (a shorter one matches pieces of noise to anything); ``window`` fixes it.
    The shape is compared, not the level or scale (z-normalised): a motif that breaks, a new
    frequency, a cycle that changes its form. The training history is the last
    ``max_history`` readings (the AB-join costs their number × the scored readings).

    Threshold: ``tail_factor`` × the training self-join's 99th percentile (at least
    ``threshold``), raised to the ``budget``. Needs ``4 m`` training readings.
    """

    name = "discord"
    episode_gap = 2
    policy = EpisodePolicy(exit_ratio=0.8, cooldown="1h")
    min_train_points = 32

    def __init__(
        self,
        periods: tuple[str, ...] = (),
        *,
        window: int | None = None,
        min_window: int = 32,
        max_window: int = 256,
        max_history: int = 10_000,
        threshold: float = 1.5,
        tail_factor: float = 1.25,
        budget: float | None = DEFAULT_BUDGET,
        train_window: str | pd.Timedelta = "14d",
    ) -> None:
        self.periods = tuple(periods)
        self.window = window
        self.min_window = min_window
        self.max_window = max_window
        self.max_history = max_history
        self.threshold = threshold
        self.tail_factor = tail_factor
        self.budget = budget
        self.train_window = train_window

    @property
    def requires_fit(self) -> bool:
        return True

    def _fit_core(self, series: pd.Series) -> None:
        s = series.iloc[-self.max_history :]
        if self.window is not None:
            m, source = int(self.window), "fixed"
        else:
            m, source = window_points(s, self.periods, self.max_window)
            if m < self.min_window and "length" in source:
                m, source = self.min_window, f"{source}, raised to min_window"
        if len(s) < 4 * m:
            raise NotEnoughData(
                f"{type(self).__name__} needs at least {4 * m} training readings"
                f" (4 windows of {m}), got {len(s)}",
                needed=4 * m,
            )
        self.window_, self.window_source_ = m, source
        self.history_ = s.to_numpy().copy()
        self.tail_ = s.iloc[-(m - 1) :] if m > 1 else s.iloc[:0]
        dist = profile_distances(self.history_, m, None)
        finite = dist[np.isfinite(dist)]
        self.typical_ = max(float(np.median(finite)) if len(finite) else 1.0, 1e-9)
        score = np.zeros(len(s))
        score[m - 1 :] = np.nan_to_num(dist / self.typical_)
        floor = max(self.threshold, self.tail_factor * float(np.quantile(score[m - 1 :], 0.99)))
        self.threshold_ = self._calibrate(pd.Series(score, index=s.index), floor)

    def _detect_core(self, series: pd.Series) -> pd.DataFrame:
        full, skip = with_context(self.tail_, series)
        m = self.window_
        score = np.zeros(len(full))
        if len(full) >= m:
            dist = profile_distances(full.to_numpy(), m, self.history_)
            score[m - 1 :] = np.nan_to_num(dist / self.typical_)
        score = score[skip:]
        return score_frame(series, score, self._flags(score))

    def explain(self) -> dict[str, Any]:
        info = super().explain()
        info.pop("history", None)
        info.pop("tail", None)
        return info
