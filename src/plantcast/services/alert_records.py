"""Alerts as records: the one shape in which the CLI and the REST API give an alert."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # annotations only: `plantcast alerts` imports this without pandas
    from plantcast.core.types import Alert

ALERT_FIELDS = (
    "id",
    "sensor",
    "detector",
    "detectors",
    "start",
    "end",
    "score",
    "value",
    "expected",
    "status",
)


def alert_record(alert: Alert, names: Mapping[int, str]) -> dict:
    """An alert with its sensor's name (``names``: sensor id → name); times stay datetimes
    (``end`` is None while the anomaly goes on) and the status is its value. ``detector``
    raised it (``score``, ``value`` and ``expected`` are at its peak); ``detectors`` lists
    every detector that agreed on the episode, each with its own peak score."""
    return {
        "id": alert.id,
        "sensor": names.get(alert.sensor_id),
        "detector": alert.detector,
        "detectors": [{"detector": d, "score": s} for d, s in alert.detectors.items()],
        "start": alert.ts,
        "end": alert.ends_at,
        "score": alert.score,
        "value": alert.value,
        "expected": alert.expected,
        "status": alert.status.value,
    }
