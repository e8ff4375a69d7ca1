"""Fitted once, scored many times: when a sensor's stored detectors may score new readings.

Refitting a sensor's detectors (``detection.fit_chunk``: fit, clean the anomalies out of the
training window, refit) costs several times what scoring does, and an incremental pass that
refits every sensor for its few new readings spends nearly all its time there. So each refit
is stored (``detector_fits``, written with the alerts it produced) and later chunks are scored
against it while it is still *fresh* and the data has not *drifted*:

- fresh: fitted for the same detectors, seasons, alert budget and training span; fitted on
  history before its chunk (not in-sample, as a young sensor's first fit is); and its
  training window ends at most ``REFIT_EVERY`` before the chunk. A fit some detectors could
  not make (too little history yet: a young sensor's) is refitted when the history may hold
  what a skipped detector asked for (its readings grown in proportion to the time since its
  training: ``Fit.needs``), and at least each time the history has doubled (``GROWTH``: the
  fitted detectors learn from more), never at every pass (a 1 s sensor followed every few
  seconds refitted all of its detectors at each pass until it had half an hour of history).
  A skipped detector that did not say how many readings it needs is tried again once the
  history has grown by ``GROWTH_UNSAID`` of the training span.
  ``REFIT_EVERY`` is a week, the chunk span of a first pass, so a long history is still
  refitted chunk by chunk exactly as before, and a sensor scored every minute is refitted
  weekly, as a weekly job would.
- drifted: the chunk's new readings sit far from what the detectors were trained on: their
  median more than ``DRIFT_Z`` robust σ (1.4826·MAD of the training values) from the training
  median, or their own robust σ more than ``DRIFT_Z`` times the training one. Such a chunk is
  refitted as every chunk used to be, so drift costs time, never alerts — once the history
  since the fit has grown by ``DRIFT_SPACING`` of its training span: a refit learns from the
  history before the chunk, and refitting again a pass later (a follower's few seconds)
  learns from nearly the same history. A 1,000-tag soak of young tags, whose short training
  a slow cycle soon leaves, refitted a third of its sensors at every pass.

A stored state that cannot be loaded (another ``VERSION``, a class that changed, bytes that do
not unpickle) is refitted, never an error. The state is pickled by this process and read back
only from the plant's own database, which is trusted as the code is.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from plantcast.core.timeutil import format_duration, utcnow
from plantcast.detect import Detector
from plantcast.detect.base import robust_location_scale
from plantcast.store.fits import StoredFit

VERSION = 2  # of the pickled state; raise it when Fit or a detector's state changes shape
REFIT_EVERY = pd.Timedelta("7d")  # = detection.CHUNK_SPAN: a first pass refits as before
DRIFT_Z = 4.0  # new readings' level or spread this many training σ away: refit
GROWTH = 1.0  # a fit with skipped detectors: refitted when the history has grown by this share
GROWTH_UNSAID = 0.25  # ... or by this share, for a skipped detector that gave no need
DRIFT_SPACING = 1 / 8  # a drifted fit is refitted once the history since it grew by this share
SCALE_FLOOR = 1e-6  # of the level, so a flat training window does not make every change drift


@dataclass(frozen=True)
class FitKey:
    """What a fit was made for; a fit made for anything else is not reused."""

    detectors: tuple[str, ...]
    periods: tuple[str, ...]
    budget: float | None
    train_span: pd.Timedelta


@dataclass(frozen=True)
class Fit:
    """A sensor's fitted detectors and the training window they learned from."""

    key: FitKey
    detectors: dict[str, Detector]  # the fitted ones
    skipped: dict[str, str]  # detector → why it could not fit
    trained_from: pd.Timestamp
    trained_until: pd.Timestamp  # the last reading of the training window
    readings: int  # in the (largest) training window
    in_sample: bool  # fitted on its chunk's own first readings (a young sensor)
    level: float  # median of the training values
    scale: float  # 1.4826·MAD of the training values
    fitted_at: pd.Timestamp | None = field(default=None, compare=False)  # set when stored
    needs: dict[str, int] = field(default_factory=dict)  # readings a skipped one asked for

    def span(self) -> pd.Timedelta:
        """The time its training window covers."""
        return pd.Timedelta(self.trained_until - self.trained_from)

    def describe(self) -> str:
        """One line for ``detect --explain``: when it was made and on what window."""
        made = "not stored yet" if self.fitted_at is None else f"{self.fitted_at:%Y-%m-%d %H:%M}"
        return (
            f"fitted {made} UTC on {self.trained_from:%Y-%m-%d %H:%M} – "
            f"{self.trained_until:%Y-%m-%d %H:%M} "
            f"({format_duration(self.trained_until - self.trained_from)}, "
            f"{self.readings:,} readings)"
        )


def make_fit(
    key: FitKey,
    detectors: dict[str, Detector],
    skipped: dict[str, str],
    used: dict[str, pd.Series],
    a: pd.Timestamp,
    needs: dict[str, int] | None = None,
) -> Fit | None:
    """The fit of a chunk starting at ``a`` from its fitted detectors and the readings each
    was fitted on (``used``); None when no detector could fit. ``needs``: the readings each
    skipped detector asked for, where it said."""
    windows = [used[n] for n in detectors if len(used.get(n, ()))]
    if not windows:
        return None
    longest = max(windows, key=len)
    level, scale = robust_location_scale(longest.to_numpy(dtype=np.float64))
    until = max(w.index[-1] for w in windows)
    return Fit(
        key=key,
        detectors=dict(detectors),
        skipped=dict(skipped),
        trained_from=min(w.index[0] for w in windows),
        trained_until=until,
        readings=len(longest),
        in_sample=bool(until >= a),
        level=level,
        scale=scale,
        needs={n: int(k) for n, k in (needs or {}).items() if n in skipped},
    )


def growth_due(fit: Fit, a: pd.Timestamp) -> bool:
    """Whether a fit missing a detector has seen its history grow enough to be tried again
    for a chunk starting at ``a`` (module docstring): grown by ``GROWTH`` of its training
    span, by ``GROWTH_UNSAID`` when a skipped detector gave no need, or far enough that its
    readings (as many more as the time since its training holds, at its training's pace)
    reach what a skipped detector asked for."""
    if not fit.skipped:
        return False
    span = fit.span()
    grown = a - fit.trained_until
    if grown >= GROWTH * span:
        return True
    if set(fit.skipped) - set(fit.needs):
        return grown >= GROWTH_UNSAID * span
    if span <= pd.Timedelta(0):
        return False
    readings = fit.readings * (1.0 + grown / span)
    return readings >= min(fit.needs.values())


def is_fresh(fit: Fit | None, key: FitKey, a: pd.Timestamp, *, patient: bool = False) -> bool:
    """Whether ``fit`` may score a chunk starting at ``a`` (module docstring), drift aside.
    Decided before reading: a fresh fit needs only the chunk's context read, not its
    training span. ``patient``: its refit for growth, or of a first in-sample fit, is left
    to a later pass (a pass makes only so many: ``detection_batch.GROWTH_REFITS``); the fit
    scores the new readings meanwhile, which it was not trained on."""
    return (
        fit is not None
        and fit.key == key
        and set(fit.detectors) | set(fit.skipped) == set(key.detectors)
        and a - REFIT_EVERY <= fit.trained_until < a
        and (patient or not refit_due(fit, a))
    )


def refit_due(fit: Fit, a: pd.Timestamp) -> bool:
    """Whether a fit is due a refit a pass may put off (``patient``): a young sensor's first
    fit, made on the very readings it scored (in-sample), or one missing a detector whose
    history has grown enough (``growth_due``)."""
    return fit.in_sample or growth_due(fit, a)


def has_drifted(fit: Fit, new: pd.Series) -> bool:
    """Whether the new readings' robust level or spread is ``DRIFT_Z`` training σ away."""
    values = new.to_numpy(dtype=np.float64)
    values = values[np.isfinite(values)]
    if not len(values):
        return False
    scale = max(fit.scale, SCALE_FLOOR * max(1.0, abs(fit.level)))
    level, spread = robust_location_scale(values)
    return abs(level - fit.level) > DRIFT_Z * scale or spread > DRIFT_Z * scale


def reusable(
    fit: Fit | None, key: FitKey, series: pd.Series, a: pd.Timestamp, *, patient: bool = False
) -> bool:
    """Whether ``fit`` scores the chunk of ``series`` from ``a`` on: fresh, and not drifted
    or too recent to learn anything new from a refit (``DRIFT_SPACING``)."""
    return (
        fit is not None
        and is_fresh(fit, key, a, patient=patient)
        and not (
            a - fit.trained_until >= DRIFT_SPACING * fit.span()
            and has_drifted(fit, series.iloc[series.index.searchsorted(a) :])
        )
    )


def to_stored(sensor_id: int, fit: Fit) -> StoredFit:
    """The row that stores ``fit`` for a sensor, made now."""
    return StoredFit(
        sensor_id=sensor_id,
        detectors=fit.key.detectors,
        periods=fit.key.periods,
        trained_until=fit.trained_until,
        fitted_at=utcnow(),
        version=VERSION,
        state=pickle.dumps(replace(fit, fitted_at=None), protocol=pickle.HIGHEST_PROTOCOL),
    )


def from_stored(row: StoredFit | None) -> Fit | None:
    """The fit a row stores; None when there is none or it cannot be loaded (then the sensor
    is refitted): another format version, a detector class that changed, damaged bytes."""
    if row is None or row.version != VERSION:
        return None
    try:
        fit = pickle.loads(row.state)  # written by plantcast, to its own database
    except Exception:
        return None
    if not isinstance(fit, Fit) or not all(isinstance(d, Detector) for d in fit.detectors.values()):
        return None
    return replace(fit, fitted_at=row.fitted_at)
