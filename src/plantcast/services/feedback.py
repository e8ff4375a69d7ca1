"""Feedback that changes behaviour: an alert labelled a false alarm raises, for its sensor, the
thresholds of the detectors that agreed on it, so the same pattern does not alert again.

Nothing is stored for it: the raise is derived from the labels whenever a sensor's fit is
loaded to score (:class:`Feedback`), so relabelling an alert takes effect at the next pass and
the stored fit stays what the data alone gave. Two floors, per detector that agreed on a false
alarm, each :data:`MARGIN` above the false alarm (the largest kept):

- its threshold, at ``MARGIN`` × the alert's peak score for it;
- the deviation from expected an episode of it must exceed, at ``MARGIN`` × the alert's peak
  ``|value − expected|`` (in the sensor's units). A score depends on the fit it was made with
  (a refit on more history scales the same bump differently: a third larger, in
  ``benchmarks/feedback_replay.py``), a deviation does not, so this is what keeps the *same
  pattern* quiet across refits. Detectors without an expected value (stuck, dropout) have
  only the threshold floor.

Thresholds only rise: a real anomaly larger than the false alarm still alerts. ``real`` and
``maintenance`` labels change nothing here; ``real`` ones are what
``evaluate-detectors --labels`` scores the detectors against (:func:`label_scores`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace

import pandas as pd

from plantcast.core.types import Alert, AlertLabel
from plantcast.services.detector_fits import Fit
from plantcast.store import Store

MARGIN = 1.25  # a false alarm's peak score × this is the detector's threshold from then on


@dataclass(frozen=True)
class Feedback:
    """A sensor's floors from its false alarms, per detector (see the module docstring)."""

    thresholds: dict[str, float] = field(default_factory=dict)
    deviations: dict[str, float] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.thresholds or self.deviations)

    def keep(self, detector: str, episodes: pd.DataFrame) -> pd.DataFrame:
        """The episodes that deviate from expected by more than the detector's floor (all
        when it has none, or an episode has no expected value)."""
        floor = self.deviations.get(detector)
        if floor is None or episodes.empty:
            return episodes
        gap = (episodes["value"] - episodes["expected"]).abs()
        return episodes[~(gap <= floor)]  # NaN (no expected value): kept


def feedback_of(alerts: Iterable[Alert]) -> Feedback:
    """The floors a sensor's alerts labelled false alarm set."""
    false_alarms = [a for a in alerts if a.label is AlertLabel.FALSE_ALARM]
    deviations: dict[str, float] = {}
    for alert in false_alarms:
        if alert.expected is None or not math.isfinite(alert.value - alert.expected):
            continue
        gap = MARGIN * abs(alert.value - alert.expected)
        for name in alert.detectors:
            deviations[name] = max(deviations.get(name, 0.0), gap)
    return Feedback(threshold_floors(false_alarms), deviations)


def threshold_floors(alerts: Iterable[Alert]) -> dict[str, float]:
    """``{detector: least threshold}`` from a sensor's alerts labelled false alarm: each
    detector that agreed on one, at ``MARGIN`` × its peak score there (the largest)."""
    floors: dict[str, float] = {}
    for alert in alerts:
        if alert.label is not AlertLabel.FALSE_ALARM:
            continue
        for name, score in alert.detectors.items():
            floors[name] = max(floors.get(name, 0.0), MARGIN * abs(float(score)))
    return floors


def with_feedback(fit: Fit | None, floors: Mapping[str, float]) -> Fit | None:
    """``fit`` with the thresholds of its detectors raised to ``floors`` (a copy; ``fit``
    itself, as stored, is left alone)."""
    if fit is None or not floors:
        return fit
    raised = {
        name: det.raised_to(floors[name]) if name in floors else det
        for name, det in fit.detectors.items()
    }
    return replace(fit, detectors=raised)


def feedback_for(store: Store, sensor_ids: Iterable[int]) -> dict[int, Feedback]:
    """The feedback of many sensors (only those with false alarms appear), one read."""
    ids = [int(i) for i in dict.fromkeys(sensor_ids)]
    if not ids:
        return {}
    by_sensor: dict[int, list[Alert]] = {}
    with store.transaction(readonly=True) as tx:
        for lo in range(0, len(ids), 500):
            chunk = ids[lo : lo + 500]
            for a in tx.labelled_alerts(sensor_ids=chunk, labels=[AlertLabel.FALSE_ALARM]):
                if a.sensor_id is not None:
                    by_sensor.setdefault(a.sensor_id, []).append(a)
    return {sid: feedback_of(found) for sid, found in by_sensor.items()}


LABEL_SCORE_FIELDS = (
    "detector",
    "real",
    "false_alarms",
    "maintenance",
    "precision",
    "recall",
)


def label_scores(store: Store, sensor_ids: Iterable[int] | None = None) -> list[dict]:
    """Each detector scored against the plant's own labelled alerts: of the alerts it agreed
    on, how many people labelled ``real``, ``false_alarm`` and ``maintenance``; precision is
    real ÷ (real + false alarms), recall the share of every real-labelled alert it agreed on.
    ``combined`` (every detector: the alerts ``detect`` wrote) comes first; maintenance is
    neither right nor wrong. None where there is nothing to divide by."""
    with store.transaction(readonly=True) as tx:
        found = tx.labelled_alerts(sensor_ids=None if sensor_ids is None else list(sensor_ids))
    real_total = sum(a.label is AlertLabel.REAL for a in found)
    counts: dict[str, dict[str, int]] = {}
    for alert in found:
        for name in ("combined", *alert.detectors):
            row = counts.setdefault(name, {x.value: 0 for x in AlertLabel})
            row[str(alert.label)] += 1
    rows = []
    for name in sorted(counts, key=lambda n: (n != "combined", n)):
        c = counts[name]
        real, false = c[AlertLabel.REAL.value], c[AlertLabel.FALSE_ALARM.value]
        rows.append(
            {
                "detector": name,
                "real": real,
                "false_alarms": false,
                "maintenance": c[AlertLabel.MAINTENANCE.value],
                "precision": None if real + false == 0 else real / (real + false),
                "recall": None if real_total == 0 else real / real_total,
            }
        )
    return rows
