"""The plant overview: every sensor's status, latest value, age and open alerts, the worst first,
with a 24 h sparkline for the sensors on show (the silences on now, then one read
transaction of two statements)."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field

import pandas as pd

from plantcast.services.silences import silenced_sensors
from plantcast.store import Store
from plantcast.store.overview import SensorSummary

ALERTING, SILENCED, STALE, NO_DATA, OK = "alerting", "silenced", "stale", "no data", "ok"
STATUSES = (ALERTING, STALE, NO_DATA, SILENCED, OK)  # the order rows are listed in
SPARK_SPAN = pd.Timedelta("24h")
SPARK_BUCKETS = 48
STALE_INTERVALS = 3  # readings missed before a sensor is stale
STALE_FLOOR = pd.Timedelta("5min")  # a 1 s sensor is not stale after 3 s
PAGE_SIZE = 100


@dataclass(frozen=True)
class OverviewRow:
    sensor_id: int
    name: str
    unit: str
    status: str
    latest_ts: pd.Timestamp | None
    latest_value: float | None
    age: pd.Timedelta | None  # now - latest reading; None without readings
    open_alerts: int
    acknowledged_alerts: int
    sparkline: list[float | None] = field(default_factory=list)  # oldest first


@dataclass(frozen=True)
class Overview:
    rows: list[OverviewRow]  # the page asked for, worst status first, then by name
    matching: int  # rows matching the search and filter, over all pages
    counts: dict[str, int]  # sensors per status, over the whole plant
    as_of: pd.Timestamp


def stale_after(interval: pd.Timedelta) -> pd.Timedelta:
    return max(interval * STALE_INTERVALS, STALE_FLOOR)


def status_of(s: SensorSummary, now: pd.Timestamp, silenced: Collection[int] = ()) -> str:
    """no data, silenced, alerting (an open alert), stale (no reading for 3 intervals), ok."""
    if s.latest_us is None:
        return NO_DATA
    if s.sensor_id in silenced:
        return SILENCED
    if s.open_alerts:
        return ALERTING
    floor_us = STALE_FLOOR.value // 1_000
    if now.value // 1_000 - s.latest_us > max(s.interval_us * STALE_INTERVALS, floor_us):
        return STALE
    return OK


def overview(
    store: Store,
    *,
    now: pd.Timestamp | None = None,
    search: str = "",
    statuses: Collection[str] = (),
    page: int = 0,
    page_size: int = PAGE_SIZE,
    silenced: Collection[int] | None = None,
) -> Overview:
    """The overview page ``page`` (from 0) of the sensors whose name holds ``search`` (any
    case) and whose status is in ``statuses`` (all when empty); sparklines for that page only.
    ``silenced``: the ids of the sensors a silence covers (None: read the silences on now)."""
    now = pd.Timestamp.now(tz="UTC") if now is None else now
    needle = search.strip().lower()
    everything, silenced_names = (
        (False, set()) if silenced is not None else silenced_sensors(store, now)
    )
    with store.transaction(readonly=True) as tx:
        summaries = tx.sensor_summaries()
        if silenced is None:
            silenced = {s.sensor_id for s in summaries if everything or s.name in silenced_names}
        rated = [(status_of(s, now, silenced), s) for s in summaries]
        counts = {st: 0 for st in STATUSES}
        for st, _ in rated:
            counts[st] += 1
        chosen = [
            (st, s)
            for st, s in rated
            if (not statuses or st in statuses) and (not needle or needle in s.name.lower())
        ]
        order = {st: i for i, st in enumerate(STATUSES)}
        chosen.sort(key=lambda pair: (order[pair[0]], pair[1].name))  # stable: names stay sorted
        shown = chosen[page * page_size : (page + 1) * page_size]
        lines = tx.sparklines(
            [s.sensor_id for st, s in shown if st != NO_DATA], SPARK_SPAN, SPARK_BUCKETS
        )
    rows = []
    for st, s in shown:
        latest = s.latest_ts
        rows.append(
            OverviewRow(
                sensor_id=s.sensor_id,
                name=s.name,
                unit=s.unit,
                status=st,
                latest_ts=latest,
                latest_value=s.latest_value,
                age=None if latest is None else max(now - latest, pd.Timedelta(0)),
                open_alerts=s.open_alerts,
                acknowledged_alerts=s.acknowledged_alerts,
                sparkline=lines.get(s.sensor_id, []),
            )
        )
    return Overview(rows=rows, matching=len(chosen), counts=counts, as_of=now)


@dataclass(frozen=True)
class AssetRow:
    name: str
    status: str  # alerting (an open alert of the asset's own), silenced or ok
    sensors: int
    open_alerts: int
    acknowledged_alerts: int
    alerting_sensors: int  # members with an open alert of their own


def asset_overview(store: Store, *, now: pd.Timestamp | None = None) -> list[AssetRow]:
    """Every asset, alerting first, then by name (one statement after the silences on now);
    an asset is silenced when a silence covers everything or every one of its sensors."""
    everything, silenced_names = silenced_sensors(store, now)
    with store.transaction(readonly=True) as tx:
        summaries = tx.asset_summaries()
        members = (
            {a.name: {s.name for s in a.sensors} for a in tx.list_assets()}
            if silenced_names and not everything
            else {}
        )
    rows = []
    for a in summaries:
        names = members.get(a.name, set())
        muted = everything or bool(names and names <= silenced_names)
        status = SILENCED if muted else ALERTING if a.open_alerts else OK
        rows.append(
            AssetRow(
                a.name,
                status,
                a.sensors,
                a.open_alerts,
                a.acknowledged_alerts,
                a.alerting_sensors,
            )
        )
    rows.sort(key=lambda r: (r.status != ALERTING, r.name))
    return rows
