"""Alerts as records: the one shape in which the CLI and the REST API give an alert."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # annotations only: `plantcast alerts` imports this without pandas
    from plantcast.core.types import Alert

ALERT_FIELDS = (
    "id",
    "sensor",
    "asset",
    "contributors",
    "detector",
    "detectors",
    "start",
    "end",
    "score",
    "value",
    "expected",
    "status",
    "silenced",
    "assignee",
    "label",
)


def alert_record(
    alert: Alert, names: Mapping[int, str], assets: Mapping[int, str] | None = None
) -> dict:
    """An alert with its sensor's name (``names``: sensor id → name) or, an asset's alert,
    its asset's (``assets``: asset id → name; ``sensor`` is then None) and its ``contributors``
    (``[{"sensor", "share"}]``, largest share first, at the peak; empty on a sensor's alert).
    Times stay datetimes (``end`` is None while the anomaly goes on) and the status is its
    value. ``detector`` raised it (``score``, ``value`` and ``expected`` are at its peak);
    ``detectors`` lists every detector that agreed on the episode, each with its own peak
    score; ``silenced``: raised inside a silence (no notification left); ``details``: what its
    kind adds (a limit alarm's limit and level, a forecast crossing's time and band)."""
    return {
        "id": alert.id,
        "sensor": None if alert.sensor_id is None else names.get(alert.sensor_id),
        "asset": None if alert.asset_id is None else (assets or {}).get(alert.asset_id),
        "contributors": [{"sensor": n, "share": v} for n, v in alert.contributors.items()],
        "detector": alert.detector,
        "detectors": [{"detector": d, "score": s} for d, s in alert.detectors.items()],
        "start": alert.ts,
        "end": alert.ends_at,
        "score": alert.score,
        "value": alert.value,
        "expected": alert.expected,
        "status": alert.status.value,
        "silenced": alert.silenced,  # raised inside a silence: never notified
        "details": alert.details,  # a limit alarm's limit and level, a forecast crossing's when
        "assignee": alert.assignee,
        "label": None if alert.label is None else alert.label.value,
    }
