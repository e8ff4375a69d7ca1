"""The alerts inbox: every alert (a sensor's or an asset's), newest first, filtered by status,
sensor, detector, label, assignee and time, with the names to show (one read transaction)."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from plantcast.core.errors import InputError
from plantcast.core.types import Alert, AlertStatus
from plantcast.store import Store

LIMIT = 500


@dataclass(frozen=True)
class InboxRow:
    alert: Alert
    source: str  # the sensor's name, or "asset NAME"


def inbox(
    store: Store,
    *,
    status: AlertStatus | str | None = AlertStatus.OPEN,
    sensor: str | None = None,
    detector: str | None = None,
    label: str | None = None,
    assignee: str | None = None,
    since: pd.Timestamp | None = None,
    limit: int = LIMIT,
) -> list[InboxRow]:
    """The alerts matching every filter given (None: no filter on it)."""
    with store.transaction(readonly=True) as tx:
        sensor_id = None
        if sensor:
            sensor_id = tx.get_sensor(sensor).id  # an unknown name is NotFound
        found = tx.list_alerts(
            sensor_id=sensor_id,
            status=status,
            detector=detector.strip() if detector and detector.strip() else None,
            label=label or None,
            assignee=assignee.strip() if assignee and assignee.strip() else None,
            start=since,
            limit=limit,
        )
        names = tx.sensor_names()
        assets = tx.asset_names() if any(a.sensor_id is None for a in found) else {}
    rows = []
    for a in found:
        if a.sensor_id is not None:
            source = names.get(a.sensor_id, f"sensor {a.sensor_id}")
        else:
            source = f"asset {assets.get(a.asset_id or 0, a.asset_id)}"
        rows.append(InboxRow(a, source))
    return rows


def parse_since(text: str) -> pd.Timestamp | None:
    """``24h``, ``7d``…: that long before now; empty or ``all``: no bound."""
    text = text.strip()
    if not text or text == "all":
        return None
    try:
        span = pd.Timedelta(text)
    except ValueError:
        raise InputError(f"not a duration: {text!r} (24h, 7d, …)", field="since") from None
    return pd.Timestamp.now(tz="UTC") - span
