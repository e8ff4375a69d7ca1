"""The detector template: validate once in the base class, score in each subclass."""

from __future__ import annotations

import copy
from abc import ABC
from collections.abc import Callable
from typing import Any, ClassVar, Self, TypeVar

import numpy as np
import numpy.typing as npt
import pandas as pd

from plantcast.core.errors import InputError, NotEnoughData, Refused
from plantcast.core.timeutil import parse_duration
from plantcast.detect.calibration import budget_threshold
from plantcast.detect.episodes import EpisodePolicy, episodes_of_parts, find_episodes, hysteresis

Frame = TypeVar("Frame", pd.Series, pd.DataFrame)
SCORE_COLUMNS = ["value", "score", "flag", "expected"]
DEFAULT_BUDGET = 2.0  # alerts per 30 days per detector kind, on data like the training window


class NotFitted(Refused):
    """A fittable detector was asked to detect before ``fit``."""


def check_utc_index(idx: Any, *, what: str) -> pd.DatetimeIndex:
    """The index half of the contract (shared with asset frames): a sorted, unique, tz-aware
    UTC ``DatetimeIndex``; returns it."""
    if not isinstance(idx, pd.DatetimeIndex):
        raise InputError(f"{what} must be indexed by a DatetimeIndex, got {type(idx).__name__}")
    if idx.tz is None:
        raise InputError(f"{what} has a naive index: localize it to UTC (tz_localize('UTC'))")
    if str(idx.tz) != "UTC":
        raise InputError(f"{what} index is in {idx.tz}, not UTC (use tz_convert('UTC'))")
    # on the integers: pandas' own checks build a hash table of the index first
    steps = np.diff(idx.asi8)
    if (steps < 0).any() or (len(idx) and idx.hasnans):
        raise InputError(f"{what} index is not sorted (use sort_index())")
    if (steps == 0).any():
        raise InputError(f"{what} index has duplicate timestamps")
    return idx


def validate_series(series: Any, *, what: str = "series") -> pd.Series:
    """Check the analytics contract and apply the NaN policy; return a float64 copy.

    Contract: a float ``Series`` on a tz-aware UTC ``DatetimeIndex``, sorted and unique.
    NaN policy: a NaN value is a missing reading; it is dropped (gaps are what dropout sees).
    Infinite values are refused.
    """
    if not isinstance(series, pd.Series):
        raise InputError(f"{what} must be a pandas Series, got {type(series).__name__}")
    if not pd.api.types.is_float_dtype(series.dtype):
        raise InputError(
            f"{what} must hold floats, got dtype {series.dtype} (convert with .astype(float))"
        )
    idx = check_utc_index(series.index, what=what)
    values = series.to_numpy(dtype=np.float64)
    if np.isinf(values).any():
        raise InputError(f"{what} holds infinite values")
    keep = ~np.isnan(values)
    if keep.all():  # the usual case: no NaN to drop, the (immutable) index kept as it is
        return pd.Series(values.copy(), index=idx, name=series.name)
    return pd.Series(values[keep], index=idx[keep], name=series.name)


def score_frame(
    series: pd.Series,
    score: npt.ArrayLike,
    flag: npt.ArrayLike,
    expected: npt.ArrayLike | Callable[[], npt.ArrayLike] | None = None,
    **extra: Any,
) -> pd.DataFrame:
    """The common output: one row per reading with value, score, flag, expected (+ extras;
    ``expected`` or an extra given as a function is called for its column: built only when a
    frame is)."""
    extra = {k: v() if callable(v) else v for k, v in extra.items()}
    expected = expected() if callable(expected) else expected
    n = len(series)
    exp = np.full(n, np.nan) if expected is None else np.asarray(expected, dtype=np.float64)
    frame = pd.DataFrame(
        {
            "value": series.to_numpy(),
            "score": np.asarray(score, dtype=np.float64),
            "flag": np.asarray(flag, dtype=bool),
            "expected": exp,
            **extra,
        },
        index=series.index.rename("ts"),
    )
    return frame


class Detector(ABC):
    """Base class: ``detect(series)`` validates, then calls ``_detect_core`` on clean input.

    ``_detect_core`` gets a float64 series without NaN on a sorted, unique UTC index and returns
    :func:`score_frame` output (optional ``since`` / ``detected_at`` columns mark where a flagged
    span began and when a live system would have known, e.g. for a dropout). ``episode_gap`` is
    how many unflagged readings may sit inside one episode (for detectors that flag in bursts).

    ``fit(series) -> self`` is the same for all: it validates, keeps the last ``train_window``,
    forgets any earlier fit and calls ``_fit_core``. A detector whose ``requires_fit`` is true
    refuses to detect before it; for the others ``fit`` is optional (it may learn defaults).
    Too little training raises :class:`NotEnoughData` (a sensor too young, not an error).

    Thresholds: a scoring detector calls :meth:`_calibrate` in ``_fit_core`` with its score on
    the training window and a floor; with a ``budget`` (alerts per 30 days) the threshold rises
    above the floor until data like the training window would alert at most that often, and
    :meth:`_flags` applies it with the hysteresis of the detector's :class:`EpisodePolicy`.
    """

    name: ClassVar[str] = "detector"
    episode_gap: ClassVar[int] = 0
    policy: ClassVar[EpisodePolicy] = EpisodePolicy()
    calibration_block: ClassVar[str] = "6h"  # about one episode: the unit of independence
    min_train_points: ClassVar[int] = 10
    # Each flagged reading is an episode of its own that no later reading changes (a gap ends
    # on one reading): once seen, an episode need not be scored again to know where it ended,
    # so its alert keeps that end (``seen_until``) and a detect pass reads only the new
    # readings' context while it is ongoing (``services.detection.MEMORYLESS``).
    memoryless: ClassVar[bool] = False
    train_window: str | pd.Timedelta = "14d"
    budget: float | None = None
    threshold_: float  # set in _fit_core by detectors that _calibrate a threshold

    @property
    def requires_fit(self) -> bool:
        return False

    @property
    def is_fitted(self) -> bool:
        return getattr(self, "fitted_", False)

    def fit(self, series: pd.Series) -> Self:
        """Learn from the last ``train_window`` of ``series``; returns ``self``."""
        s = trailing_window(validate_series(series, what="training series"), self.train_window)
        if len(s) < self.min_train_points:
            raise NotEnoughData(
                f"{type(self).__name__} needs at least {self.min_train_points} training readings,"
                f" got {len(s)}",
                needed=self.min_train_points,
            )
        forget_fit(self)
        self._fit_core(s)
        self.fitted_ = True
        return self

    def detect(self, series: pd.Series) -> pd.DataFrame:
        """Score every reading: a frame indexed by ts with value, score, flag, expected."""
        if self.requires_fit and not self.is_fitted:
            raise NotFitted(f"{type(self).__name__} is not fitted: call .fit(series) first")
        s = validate_series(series)
        if s.empty:
            return score_frame(s, [], [])
        return self._detect_core(s)

    def episodes(self, series: pd.Series) -> pd.DataFrame:
        """Flagged readings grouped into episodes by the detector's :class:`EpisodePolicy`."""
        return self.episodes_of(validate_series(series))

    def episodes_of(
        self, series: pd.Series, ending_from: pd.Timestamp | None = None
    ) -> pd.DataFrame:
        """:meth:`episodes` of a series :func:`validate_series` returned: a caller that scores
        one series with several detectors validates it once. A detector that scores through
        :meth:`_score_parts` builds no frame (``episodes.episodes_of_parts``): the episodes are
        the same, found from its flagged readings alone. With ``ending_from``, only the
        episodes that end then or later."""
        if self.requires_fit and not self.is_fitted:
            raise NotFitted(f"{type(self).__name__} is not fitted: call .fit(series) first")
        gap, merge_gap, shortest = self.episode_gap, self.policy.gap(), self.policy.shortest()
        if series.empty or type(self)._detect_core is not Detector._detect_core:
            frame = score_frame(series, [], []) if series.empty else self._detect_core(series)
            return find_episodes(
                frame,
                max_gap=gap,
                merge_gap=merge_gap,
                min_duration=shortest,
                ending_from=ending_from,
            )
        parts = self._score_parts(series)  # no frame: only the flagged readings are looked at
        return episodes_of_parts(
            series.index,
            series.to_numpy(),
            parts["score"],
            parts["flag"],
            parts.get("expected"),
            since=parts.get("since"),
            detected_at=parts.get("detected_at"),
            max_gap=gap,
            merge_gap=merge_gap,
            min_duration=shortest,
            ending_from=ending_from,
        )

    def context_points(self) -> int | None:
        """How many readings before a reading its score depends on, once fitted: scoring a
        series from that many readings before ``t`` on gives ``t`` the score the whole
        history would, to rounding (a caller may read no further back). None: no bound is
        known, read the whole context."""
        return None

    def explain(self) -> dict[str, Any]:
        """What the fit learned that decides alerts (thresholds and their floors)."""
        return {k.removesuffix("_"): v for k, v in vars(self).items() if k.endswith("_")}

    def raised_to(self, floor: float) -> Self:
        """This detector with its threshold at least ``floor`` (feedback: a false alarm's
        peak score with a margin, so the same pattern is not flagged again): a copy when the
        threshold rises, ``self`` when it is already there or the detector has none."""
        threshold = getattr(self, "threshold_", None)
        if threshold is None or threshold >= floor:
            return self
        raised = copy.copy(self)
        raised.threshold_ = float(floor)
        raised._threshold_changed()
        return raised

    def _threshold_changed(self) -> None:  # noqa: B027 - optional hook
        """Update what a detector derives from ``threshold_`` (after :meth:`raised_to`)."""

    def _calibrate(self, train_score: pd.Series, floor: float) -> float:
        """The threshold for this sensor: ``floor``, raised to meet ``budget`` when one is set."""
        self.floor_ = float(floor)
        if self.budget is None:
            return self.floor_
        block = parse_duration(self.calibration_block, field="calibration_block")
        return budget_threshold(train_score, self.budget, block=block, floor=floor)

    def _flags(self, score: np.ndarray) -> np.ndarray:
        """Hysteresis flags at the fitted threshold (see :class:`EpisodePolicy`)."""
        thr = self.threshold_
        return hysteresis(score, thr, thr * self.policy.exit_ratio)

    def _fit_core(self, series: pd.Series) -> None:  # noqa: B027 - optional hook
        """Learn state (attributes ending in ``_``) from a validated training series."""

    def _detect_core(self, series: pd.Series) -> pd.DataFrame:
        """The score frame of a validated, non-empty series: by default
        :func:`score_frame` of :meth:`_score_parts`."""
        return score_frame(series, **self._score_parts(series))

    def _score_parts(self, series: pd.Series) -> dict[str, Any]:
        """:func:`score_frame`'s arguments for a validated, non-empty series (``score``,
        ``flag``, optional ``expected`` and extra columns). A detector implements this or
        overrides :meth:`_detect_core`."""
        raise NotImplementedError(
            f"{type(self).__name__} implements neither _score_parts nor _detect_core"
        )

    def __repr__(self) -> str:
        params = {k: v for k, v in vars(self).items() if not k.endswith("_")}
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in params.items())})"


def trailing_window(data: Frame, span: str | pd.Timedelta) -> Frame:
    """The last ``span`` of ``data`` (indexed by time): what a detector trains on."""
    if not len(data):
        return data
    return data[data.index >= data.index[-1] - parse_duration(span, field="train_window")]


def forget_fit(detector: object) -> None:
    """Drop a detector's fitted state (its attributes ending in ``_``) before a new fit."""
    for key in [k for k in vars(detector) if k.endswith("_")]:
        delattr(detector, key)


def make_forecaster(forecaster: Any, params: dict[str, Any] | None = None) -> Any:
    """A fresh forecaster: a registry name (``plantcast.forecast.get_model``) or a copy of one.

    Any object with ``fit(series) -> self`` and ``predict_at(index) -> ndarray`` serves.
    """
    if isinstance(forecaster, str):
        from plantcast.forecast import get_model

        return get_model(forecaster, **(params or {}))
    if not (hasattr(forecaster, "fit") and hasattr(forecaster, "predict_at")):
        raise InputError(
            f"forecaster must be a model name or have fit() and predict_at(), got {forecaster!r}"
        )
    return copy.deepcopy(forecaster)


def robust_location_scale(x: np.ndarray) -> tuple[float, float]:
    """Median and 1.4826·MAD of ``x`` (the σ of Gaussian data, robust to outliers)."""
    med = float(np.median(x))
    return med, float(1.4826 * np.median(np.abs(x - med)))
