"""Detect: anomaly scores, flags and episodes for one sensor's readings, as pure functions.

The roles (after darts' ``ad`` package):

* a **scorer** turns a series into a per-reading score (robust z of forecast residuals, the
  recent level of the residuals against their level before it, the length of a flat run, the
  size of a gap);
* a **detector** turns scores into flags; every detector shares one template
  (:class:`Detector`): ``detect(series)`` validates the input once (float values, sorted unique
  tz-aware UTC index; NaN = missing reading, dropped) and each subclass writes only
  ``_detect_core``. ``fit(series) -> self`` learns from a bounded training window; a detector
  that needs it refuses to detect before;
* a **forecasting anomaly model** is any forecaster (a ``plantcast.forecast`` model name or an
  object with ``fit``/``predict_at``) plus a residual scorer: :class:`ResidualZDetector`
  (spikes, noise bursts, onsets) and :class:`LevelShiftDetector` (shifts, drifts).

Thresholds are calibrated per sensor (``plantcast.detect.calibration``): each detector's floor,
raised until data like its training window would alert at most ``budget`` times in 30 days.

:class:`StuckDetector` and :class:`DropoutDetector` read the series alone; the baselines
(:class:`ThresholdDetector`, :class:`RandomDetector`) are what the others must beat.
The pattern-change detectors read the series alone too, over a window from the season or the
autocorrelation: :class:`DiscordDetector` (a matrix profile against the history),
:class:`ScaleChangeDetector`, :class:`ProfileChangeDetector` and :class:`DriftDetector`.
:func:`hysteresis` and :func:`find_episodes` (one :class:`EpisodePolicy` per detector: enter
and exit thresholds, merge gap, minimum duration, cooldown) make an ongoing anomaly one
episode; :func:`merge_episodes` turns episodes into alert inserts/updates idempotently;
``plantcast.detect.evaluation`` holds the event-level metrics (precision, recall, F1, delay, lead
time, NAB score, false alerts) that ``plantcast.services.detector_evaluation`` computes for the
detectors run as ``plantcast detect`` runs them.

Asset detectors (``plantcast.detect.multivariate``) follow the same template for an aligned
frame of an asset's sensors: they score the relations between the sensors (a pump's pressure
wrong for its speed while inside its own range) and say which sensor breaks them
(:class:`NormalBehaviourDetector`, each sensor estimated from the others; :class:`PCADetector`,
Hotelling's T² and Q), calibrated to the same budget, through the same episode layer.
"""

from plantcast.detect.alerts import merge_episodes
from plantcast.detect.base import Detector, NotFitted, validate_series
from plantcast.detect.baselines import RandomDetector, ThresholdDetector
from plantcast.detect.discord import DiscordDetector
from plantcast.detect.distribution import ProfileChangeDetector, ScaleChangeDetector
from plantcast.detect.drift import DriftDetector
from plantcast.detect.dropout import DropoutDetector
from plantcast.detect.episodes import EpisodePolicy, find_episodes, hysteresis
from plantcast.detect.multivariate import (
    MultivariateDetector,
    NormalBehaviourDetector,
    PCADetector,
    validate_frame,
)
from plantcast.detect.residual import ResidualDetector, ResidualZDetector
from plantcast.detect.shift import LevelShiftDetector
from plantcast.detect.stuck import StuckDetector

__all__ = [
    "Detector",
    "DiscordDetector",
    "DriftDetector",
    "DropoutDetector",
    "EpisodePolicy",
    "LevelShiftDetector",
    "MultivariateDetector",
    "NormalBehaviourDetector",
    "NotFitted",
    "PCADetector",
    "ProfileChangeDetector",
    "RandomDetector",
    "ResidualDetector",
    "ResidualZDetector",
    "ScaleChangeDetector",
    "StuckDetector",
    "ThresholdDetector",
    "find_episodes",
    "hysteresis",
    "merge_episodes",
    "validate_frame",
    "validate_series",
]
