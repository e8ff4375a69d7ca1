"""Asset detectors: the relations between an asset's sensors, scored with per-sensor contributions.

A per-sensor detector asks "is this reading unusual for this sensor?"; an asset detector asks
"are these readings unusual *together*?". A pump's pressure may sit well inside its own range
and still be wrong for the speed it runs at. The template is the univariate one
(:class:`plantcast.detect.base.Detector`): ``fit(frame) -> self`` validates once and learns
from the last ``train_window``; ``detect(frame)`` validates and scores; thresholds are
calibrated to the same alert ``budget``; flags and episodes go through the same
:class:`EpisodePolicy` layer. Each row also says *which* sensors break the relation: a share
per sensor (``share:<sensor>`` columns, summing to 1), and the top one with its reading and
the value the asset's relations expected of it.

Input: an aligned ``DataFrame``, one float column per sensor, on a sorted unique UTC index.
NaN is a missing reading: a row missing any sensor is not scored (score NaN, never flagged),
since a relation needs all its sensors; rows missing every sensor are dropped.

* :class:`PCADetector`: linear relations. Hotelling's T² (unusual operating points inside the
  relations) and the squared prediction error Q (readings off the relations), each over its
  training quantile; contributions are each sensor's part of both.
* :class:`NormalBehaviourDetector`: each sensor estimated from the others (current readings
  and their causal moving averages, for lags such as a bearing's heating), by a regressor of
  :data:`REGRESSORS`; scale and threshold come from out-of-fold residuals of the training
  window, so a flexible model's in-sample fit does not make it over-sensitive.
"""

from __future__ import annotations

import itertools
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any, ClassVar, Self

import numpy as np
import pandas as pd
from threadpoolctl import ThreadpoolController

from plantcast.core.errors import InputError, NotEnoughData
from plantcast.core.timeutil import parse_duration
from plantcast.detect.base import (
    DEFAULT_BUDGET,
    NotFitted,
    check_utc_index,
    forget_fit,
    trailing_window,
)
from plantcast.detect.calibration import budget_threshold
from plantcast.detect.episodes import EpisodePolicy, find_episodes, hysteresis

SHARE = "share:"  # prefix of the per-sensor contribution columns
_THREADS: list[ThreadpoolController] = []  # made once: each new one scans the loaded libraries


def _one_thread() -> Any:
    """BLAS limited to one thread (small matrices: more threads only contend for the cores);
    one controller for the process, since making one costs ~8 ms (an asset's whole score)."""
    if not _THREADS:
        _THREADS.append(ThreadpoolController())
    return _THREADS[0].limit(limits=1)


def validate_frame(frame: Any, *, what: str = "frame") -> pd.DataFrame:
    """Check the asset contract; return a float64 copy without rows missing every sensor.

    Contract: a ``DataFrame`` with at least two uniquely named float columns (one per sensor)
    on a sorted, unique, tz-aware UTC ``DatetimeIndex``. NaN is a missing reading (kept: the
    detectors skip incomplete rows); infinite values are refused.
    """
    if not isinstance(frame, pd.DataFrame):
        raise InputError(f"{what} must be a pandas DataFrame, got {type(frame).__name__}")
    check_utc_index(frame.index, what=what)
    if frame.shape[1] < 2:
        raise InputError(f"{what} needs at least two sensor columns, got {frame.shape[1]}")
    if not frame.columns.is_unique:
        dup = sorted({str(c) for c in frame.columns[frame.columns.duplicated()]})
        raise InputError(f"{what} has duplicate sensor columns: {', '.join(dup)}")
    bad = [str(c) for c, t in frame.dtypes.items() if not pd.api.types.is_float_dtype(t)]
    if bad:
        raise InputError(
            f"{what} columns must hold floats; not: {', '.join(bad)} (convert with .astype(float))"
        )
    values = frame.to_numpy(dtype=np.float64)
    inf = np.isinf(values).any(axis=0)
    if inf.any():
        names = ", ".join(str(c) for c in frame.columns[inf])
        raise InputError(f"{what} holds infinite values in: {names}")
    keep = ~np.isnan(values).all(axis=1)
    out = pd.DataFrame(values[keep], index=frame.index[keep], columns=[str(c) for c in frame])
    return out


def trailing_mean(x: np.ndarray, window: int) -> np.ndarray:
    """Mean of each column over the last ``window`` rows up to and including the row (NaN
    rows skipped; no look-ahead)."""
    if window <= 1:
        return x
    out: np.ndarray = pd.DataFrame(x).rolling(window, min_periods=1).mean().to_numpy()
    return out


class MultivariateDetector(ABC):
    """Base class of asset detectors: validate once, score in ``_score_core``.

    ``_fit_core(frame)`` gets the training window's complete rows (float64, no NaN) and sets
    state ending in ``_``, including ``threshold_`` through :meth:`_calibrate`.
    ``_score_core(frame)`` gets complete rows to score, in the fitted sensor order, and returns
    the score (n), each sensor's non-negative contribution (n × p) and the value the relations
    expect of each sensor (n × p). ``smooth`` readings of trailing averaging make a sustained
    break stand out of the noise; it is causal, so a row's score never reads a later row.
    """

    name: ClassVar[str] = "asset"
    policy: ClassVar[EpisodePolicy] = EpisodePolicy(exit_ratio=0.8, merge_gap="1h")
    calibration_block: ClassVar[str] = "6h"
    min_train_points: ClassVar[int] = 200
    train_window: str | pd.Timedelta = "14d"
    budget: float | None = DEFAULT_BUDGET
    smooth: int = 1
    threshold_: float
    sensors_: tuple[str, ...]

    @property
    def is_fitted(self) -> bool:
        return getattr(self, "fitted_", False)

    def fit(self, frame: pd.DataFrame) -> Self:
        """Learn from the complete rows of the last ``train_window`` of ``frame``."""
        f = trailing_window(validate_frame(frame, what="training frame"), self.train_window)
        complete = f.dropna()
        if len(complete) < self.min_train_points:
            raise NotEnoughData(
                f"{type(self).__name__} needs at least {self.min_train_points} training rows with"
                f" every sensor, got {len(complete)}"
            )
        spread = complete.std().to_numpy()
        flat = [c for c, s in zip(complete.columns, spread, strict=True) if not s > 0]
        if flat:
            raise InputError(
                f"sensors constant over the training window carry no relation: {', '.join(flat)}"
            )
        forget_fit(self)
        self.sensors_ = tuple(complete.columns)
        with _one_thread():
            self._fit_core(complete)
        self.fitted_ = True
        return self

    def detect(self, frame: pd.DataFrame) -> pd.DataFrame:
        """One row per input row: score, flag, the top contributor (``sensor``, its ``value``
        and ``expected``) and ``share:<sensor>`` per sensor (summing to 1; NaN where a
        reading is missing)."""
        if not self.is_fitted:
            raise NotFitted(f"{type(self).__name__} is not fitted: call .fit(frame) first")
        f = self._aligned(validate_frame(frame))
        n, p = f.shape
        score = np.full(n, np.nan)
        contrib = np.full((n, p), np.nan)
        expected = np.full((n, p), np.nan)
        complete = ~np.isnan(f.to_numpy()).any(axis=1)
        if complete.any():
            with _one_thread():
                s, c, e = self._score_core(f[complete])
            score[complete], contrib[complete], expected[complete] = s, c, e
        total = contrib.sum(axis=1, keepdims=True)
        with np.errstate(invalid="ignore", divide="ignore"):
            shares = np.where(total > 0, contrib / total, 1.0 / p)
        shares[~complete] = np.nan
        top = np.where(complete, np.nanargmax(np.nan_to_num(shares, nan=-1.0), axis=1), 0)
        rows, thr = np.arange(n), self.threshold_
        names = np.asarray(self.sensors_, dtype=object)
        out = pd.DataFrame(
            {
                "score": score,
                "flag": hysteresis(score, thr, thr * self.policy.exit_ratio),
                "sensor": np.where(complete, names[top], np.array(None, dtype=object)),
                "value": np.where(complete, f.to_numpy()[rows, top], np.nan),
                "expected": np.where(complete, expected[rows, top], np.nan),
                **{f"{SHARE}{s}": shares[:, j] for j, s in enumerate(self.sensors_)},
            },
            index=f.index.rename("ts"),
        )
        return out

    def episodes(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Flagged rows grouped into episodes (the :class:`EpisodePolicy` layer), each with the
        sensors ranked by their share at the episode's peak (``contributors``, ``sensor`` the
        first) and the shares themselves (``shares``)."""
        scored = self.detect(frame)
        eps = find_episodes(
            scored, merge_gap=self.policy.gap(), min_duration=self.policy.shortest()
        )
        cols = [f"{SHARE}{s}" for s in self.sensors_]
        at_peak = scored.loc[eps["peak_ts"], cols].to_numpy() if len(eps) else np.empty((0, 0))
        ranked, shares = [], []
        for row in at_peak:
            order = np.argsort(-row, kind="stable")
            ranked.append(tuple(self.sensors_[j] for j in order))
            shares.append({self.sensors_[j]: float(row[j]) for j in order})
        return eps.assign(
            sensor=[r[0] for r in ranked] if ranked else pd.Series(dtype=object),
            contributors=pd.Series(ranked, index=eps.index, dtype=object),
            shares=pd.Series(shares, index=eps.index, dtype=object),
        )

    def explain(self) -> dict[str, Any]:
        """What the fit learned that decides alerts (threshold, floor, sensors)."""
        keep = ("threshold_", "floor_", "sensors_", "components_")
        return {k.removesuffix("_"): v for k, v in vars(self).items() if k in keep}

    def _aligned(self, f: pd.DataFrame) -> pd.DataFrame:
        missing = [s for s in self.sensors_ if s not in f.columns]
        extra = [c for c in f.columns if c not in self.sensors_]
        if missing or extra:
            parts = [f"missing {', '.join(missing)}" if missing else ""]
            parts.append(f"unknown {', '.join(extra)}" if extra else "")
            raise InputError(
                f"frame sensors differ from the fitted ones ({', '.join(self.sensors_)}): "
                + "; ".join(p for p in parts if p)
            )
        return f[list(self.sensors_)]

    def _calibrate(self, train_score: pd.Series, floor: float) -> float:
        """The threshold: ``floor``, raised to meet ``budget`` (alerts per 30 days)."""
        self.floor_ = float(floor)
        if self.budget is None:
            return self.floor_
        block = parse_duration(self.calibration_block, field="calibration_block")
        return budget_threshold(train_score, self.budget, block=block, floor=floor)

    @abstractmethod
    def _fit_core(self, frame: pd.DataFrame) -> None: ...

    @abstractmethod
    def _score_core(self, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]: ...

    def __repr__(self) -> str:
        params = {k: v for k, v in vars(self).items() if not k.endswith("_")}
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in params.items())})"


FLOOR_QUANTILE = 0.99  # the floor: never above what 1 % of training rows reach


def _principal(z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Eigenvalues (descending, > 0) and eigenvectors of the covariance of ``z``."""
    vals, vecs = np.linalg.eigh(np.cov(z, rowvar=False))
    order = np.argsort(vals)[::-1]
    return np.maximum(vals[order], 1e-12), vecs[:, order]


class PCADetector(MultivariateDetector):
    """PCA on standardized sensors: Hotelling's T² and the squared prediction error Q.

    Components are kept until they explain ``variance`` of the training variance (at least
    one, at most all but one, so that Q exists); 0.999 was chosen on pump seeds 100-107
    (event F1 0.54 at 0.99, 0.72 at 0.999, 0.68 at 0.9999, before the out-of-fold scales).
    Each statistic is divided by its ``FLOOR_QUANTILE`` quantile out of fold (see
    ``_fit_core``) and smoothed over ``smooth`` readings; the score is the larger of the two
    (``statistics`` may keep only one). A sensor's contribution is its part of each: its
    squared residual for Q, ``z_j Σ_k p_jk t_k / λ_k`` (clipped at 0) for T², summed over
    the features made of it.
    """

    name = "pca_t2q"

    def __init__(
        self,
        *,
        variance: float = 0.999,
        statistics: tuple[str, ...] = ("t2", "q"),
        expand: bool = True,
        span: int = 18,
        folds: int = 3,
        smooth: int = 3,
        budget: float | None = DEFAULT_BUDGET,
        train_window: str | pd.Timedelta = "14d",
    ) -> None:
        if not 0 < variance < 1:
            raise InputError(f"variance must be in (0, 1), got {variance}")
        unknown = set(statistics) - {"t2", "q"} or (set() if statistics else {"(none)"})
        if unknown:
            raise InputError(f"statistics must be among t2, q; got {', '.join(sorted(unknown))}")
        if folds < 2:
            raise InputError(f"folds must be at least 2, got {folds}")
        self.variance = variance
        self.statistics = tuple(statistics)
        self.expand = expand
        self.span = span
        self.folds = folds
        self.smooth = smooth
        self.budget = budget
        self.train_window = train_window

    def _expanded(self, frame: pd.DataFrame) -> np.ndarray:
        """The features PCA sees: the standardized readings, and with ``expand`` their
        squares and their causal moving averages over ``span`` readings (of both), so that
        the affinity laws' powers and a thermal lag are linear relations among features."""
        z: np.ndarray = (frame.to_numpy() - self.mean_) / self.scale_
        if not self.expand:
            return z
        sq = z**2
        lagged = pd.DataFrame(np.column_stack([z, sq])).ewm(span=self.span).mean().to_numpy()
        out: np.ndarray = np.column_stack([z, sq, lagged])
        return out

    def _fit_core(self, frame: pd.DataFrame) -> None:
        x = frame.to_numpy()
        self.mean_ = x.mean(axis=0)
        self.scale_ = x.std(axis=0, ddof=1)
        feats = self._expanded(frame)
        # each feature belongs to the sensor it is made of: contributions are summed by owner
        self.owner_ = np.tile(np.arange(x.shape[1]), feats.shape[1] // x.shape[1])
        self.feat_mean_ = feats.mean(axis=0)
        self.feat_scale_ = np.maximum(feats.std(axis=0, ddof=1), 1e-12)
        z = (feats - self.feat_mean_) / self.feat_scale_
        vals, vecs = _principal(z)
        explained = np.cumsum(vals) / vals.sum()
        k = min(max(int(np.searchsorted(explained, self.variance) + 1), 1), len(vals) - 1)
        self.components_ = k
        # The statistics' scales and the threshold come from rows the subspace was not fitted
        # on (contiguous folds): in-sample, a subspace of many components fits its own noise
        # and Q looks smaller than it will on new data.
        n = len(z)
        edges = np.linspace(0, n, self.folds + 1).astype(int)
        t2, q = np.empty(n), np.empty(n)
        for a, b in itertools.pairwise(edges):
            vals, vecs = _principal(z[np.r_[0:a, b:n]])
            self.loadings_, self.eigenvalues_ = vecs[:, :k], vals[:k]
            t2[a:b], q[a:b], _, _ = self._statistics(z[a:b])
        vals, vecs = _principal(z)
        self.loadings_ = vecs[:, : self.components_]
        self.eigenvalues_ = vals[: self.components_]
        self.t2_scale_ = max(float(np.quantile(t2, FLOOR_QUANTILE)), 1e-12)
        self.q_scale_ = max(float(np.quantile(q, FLOOR_QUANTILE)), 1e-12)
        score, _ = self._combine(t2, q, np.zeros_like(x), np.zeros_like(x))
        floor = float(np.quantile(score, FLOOR_QUANTILE))
        self.threshold_ = self._calibrate(pd.Series(score, index=frame.index), floor)

    def _statistics(self, z: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        t = z @ self.loadings_
        resid = z - t @ self.loadings_.T
        t2 = ((t**2) / self.eigenvalues_).sum(axis=1)
        t2_parts = z * ((t / self.eigenvalues_) @ self.loadings_.T)  # sums to T² per row
        return t2, (resid**2).sum(axis=1), self._by_sensor(t2_parts), self._by_sensor(resid**2)

    def _by_sensor(self, parts: np.ndarray) -> np.ndarray:
        """Feature contributions summed per owning sensor (T² parts clipped at 0 after)."""
        p = len(self.mean_)
        out = np.zeros((len(parts), p))
        for j in range(p):
            out[:, j] = parts[:, self.owner_ == j].sum(axis=1)
        return np.maximum(out, 0.0)

    def _combine(
        self, t2: np.ndarray, q: np.ndarray, t2_parts: np.ndarray, q_parts: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Score and contributions from the raw statistics: normalized, smoothed, combined."""
        use_t2, use_q = "t2" in self.statistics, "q" in self.statistics
        stats = trailing_mean(
            np.column_stack([t2 / self.t2_scale_, q / self.q_scale_]), self.smooth
        )
        parts = trailing_mean(
            use_t2 * t2_parts / self.t2_scale_ + use_q * q_parts / self.q_scale_, self.smooth
        )
        score = np.where(use_t2, stats[:, 0], 0.0)
        score = np.maximum(score, np.where(use_q, stats[:, 1], 0.0))
        return score, parts

    def _score_core(self, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        z = (self._expanded(frame) - self.feat_mean_) / self.feat_scale_
        t2, q, t2_parts, q_parts = self._statistics(z)
        score, parts = self._combine(t2, q, t2_parts, q_parts)
        p = len(self.mean_)  # the first p features are the standardized readings
        fitted = ((z @ self.loadings_) @ self.loadings_.T)[:, :p]
        level = fitted * self.feat_scale_[:p] + self.feat_mean_[:p]
        return score, parts, self.mean_ + level * self.scale_


class QuadraticRidge:
    """Ridge regression on the inputs and their pairwise products (standardized), in numpy:
    the affinity laws are powers of speed, and 28 small fits per asset should not pay
    scikit-learn's per-call overhead."""

    def __init__(self, alpha: float = 1.0) -> None:
        self.alpha = alpha

    def _design(self, x: np.ndarray) -> np.ndarray:
        z = (x - self.x_mean_) / self.x_scale_
        i, j = np.triu_indices(z.shape[1])
        return np.column_stack([z, z[:, i] * z[:, j]])

    def fit(self, x: np.ndarray, y: np.ndarray) -> Self:
        self.x_mean_ = x.mean(axis=0)
        self.x_scale_ = np.maximum(x.std(axis=0), 1e-12)
        d = self._design(x)
        self.d_mean_, self.d_scale_ = d.mean(axis=0), np.maximum(d.std(axis=0), 1e-12)
        d = (d - self.d_mean_) / self.d_scale_
        self.y_mean_ = float(y.mean())
        gram = d.T @ d + self.alpha * np.eye(d.shape[1])
        self.coef_ = np.linalg.solve(gram, d.T @ (y - self.y_mean_))
        return self

    def predict(self, x: np.ndarray) -> np.ndarray:
        d = (self._design(x) - self.d_mean_) / self.d_scale_
        out: np.ndarray = d @ self.coef_ + self.y_mean_
        return out


def _ridge() -> Any:
    return QuadraticRidge(1.0)


def _gbm() -> Any:
    from lightgbm import LGBMRegressor

    return LGBMRegressor(
        n_estimators=200, learning_rate=0.05, num_leaves=15, n_jobs=1, verbose=-1, random_state=0
    )


# Regressors of one sensor on the others: the quadratic ridge follows smooth physical laws
# (affinity laws are powers of speed); gradient boosting any shape, at more cost. On 30
# held-out simulated pumps (benchmarks/assets.py, seeds 1000-1029) the ridge caught 150 of 150
# faults (event F1 0.98), boosting 75 (F1 0.66): its piecewise-constant estimates leave
# residuals too wide for a 5σ break, and it took 11 s an asset against 1.3 s.
REGRESSORS: dict[str, Callable[[], Any]] = {"ridge": _ridge, "gbm": _gbm}


class NormalBehaviourDetector(MultivariateDetector):
    """A model of normal behaviour: each sensor estimated from the others, residuals combined.

    Sensor ``j`` is regressed (``regressor``, a name in :data:`REGRESSORS`) on the other
    sensors' readings and their causal exponential moving averages over ``spans`` readings,
    so lagged relations (a bearing heating up with load) are in reach; never on its own past,
    which would absorb a slow drift. Residuals are scaled by their robust spread
    *out of fold*: the training window is cut into ``folds`` contiguous blocks, each predicted
    by models fitted on the others, and those residuals also calibrate the threshold; the
    models that score are then fitted on the whole window. The score is the largest
    |trailing mean over ``smooth`` readings| of the scaled residuals; a sensor's contribution
    is that mean squared.
    """

    name = "normal_behaviour"

    def __init__(
        self,
        regressor: str = "ridge",
        *,
        spans: tuple[int, ...] = (6, 18),
        folds: int = 3,
        smooth: int = 6,
        budget: float | None = DEFAULT_BUDGET,
        train_window: str | pd.Timedelta = "14d",
    ) -> None:
        if regressor not in REGRESSORS:
            raise InputError(
                f"unknown regressor {regressor!r}: expected one of {', '.join(REGRESSORS)}"
            )
        if folds < 2:
            raise InputError(f"folds must be at least 2, got {folds}")
        self.regressor = regressor
        self.spans = tuple(spans)
        self.folds = folds
        self.smooth = smooth
        self.budget = budget
        self.train_window = train_window

    def _features(self, frame: pd.DataFrame) -> np.ndarray:
        """Readings and their moving averages over ``spans`` (causal), one block per sensor."""
        x = frame.to_numpy()
        blocks = [x] + [frame.ewm(span=s, ignore_na=True).mean().to_numpy() for s in self.spans]
        return np.stack(blocks, axis=2)  # rows × sensors × (1 + len(spans))

    def _inputs(self, feats: np.ndarray, j: int) -> np.ndarray:
        others = np.delete(feats, j, axis=1)
        return others.reshape(len(feats), -1)

    def _fit_core(self, frame: pd.DataFrame) -> None:
        feats, x = self._features(frame), frame.to_numpy()
        n, p = x.shape
        edges = np.linspace(0, n, self.folds + 1).astype(int)
        oof = np.empty_like(x)
        for a, b in itertools.pairwise(edges):
            train = np.r_[0:a, b:n]
            for j in range(p):
                model = REGRESSORS[self.regressor]().fit(self._inputs(feats[train], j), x[train, j])
                oof[a:b, j] = model.predict(self._inputs(feats[a:b], j))
        resid = x - oof
        self.loc_ = np.median(resid, axis=0)
        mad = 1.4826 * np.median(np.abs(resid - self.loc_), axis=0)
        self.resid_scale_ = np.maximum(mad, 1e-9 * (1.0 + np.abs(x).mean(axis=0)))
        score, _ = self._combine(resid)
        floor = float(np.quantile(score, FLOOR_QUANTILE))
        self.threshold_ = self._calibrate(pd.Series(score, index=frame.index), floor)
        self.models_ = [
            REGRESSORS[self.regressor]().fit(self._inputs(feats, j), x[:, j]) for j in range(p)
        ]

    def _combine(self, resid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        z = trailing_mean((resid - self.loc_) / self.resid_scale_, self.smooth)
        score: np.ndarray = np.abs(z).max(axis=1)
        return score, z**2

    def _score_core(self, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        feats = self._features(frame)
        expected = np.column_stack(
            [m.predict(self._inputs(feats, j)) for j, m in enumerate(self.models_)]
        )
        score, parts = self._combine(frame.to_numpy() - expected)
        return score, parts, expected + self.loc_
