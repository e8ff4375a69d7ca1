"""Forecasts kept ready: per sensor, the latest forecast a scheduled refit made.

The store keeps the points and scores as JSON text made by ``plantcast.services.forecast_store``
(it serves the points as they are). Derived data: emptying ``forecasts`` loses nothing but time,
since the next refresh refits every sensor without a row.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import pandas as pd
from sqlalchemy import Connection, Row, func, select

from plantcast.core.timeutil import to_utc
from plantcast.store.engine import upsert
from plantcast.store.schema import forecasts, sensors

BATCH = 500  # sensor ids per IN (...) list


@dataclass(frozen=True)
class ForecastPlan:
    """What a refresh needs to decide whether and how to refit: a row without its points."""

    sensor_id: int
    model: str
    chosen: str
    horizon: int
    made_at: pd.Timestamp
    trained_until: pd.Timestamp
    choice: str | None  # auto's choice as JSON text (None: not auto)
    chosen_at: pd.Timestamp | None
    refits: int


@dataclass(frozen=True)
class StoredForecast(ForecastPlan):
    """One sensor's row of ``forecasts``: the plan's fields plus the forecast itself."""

    sensor: str
    fitted_on: int
    points: str  # JSON text: a list of {"ts", "mean", "lower_80", …}
    scores: str  # JSON text: the chosen model's backtest metrics


_PLAN = [
    forecasts.c.sensor_id,
    forecasts.c.model,
    forecasts.c.chosen,
    forecasts.c.horizon,
    forecasts.c.made_at,
    forecasts.c.trained_until,
    forecasts.c.choice,
    forecasts.c.chosen_at,
    forecasts.c.refits,
]


def _plan(row: Row[Any]) -> ForecastPlan:
    return ForecastPlan(**{c.name: getattr(row, c.name) for c in _PLAN})


def _stored(row: Row[Any]) -> StoredForecast:
    return StoredForecast(
        **{c.name: getattr(row, c.name) for c in _PLAN},
        sensor=row.name,
        fitted_on=row.fitted_on,
        points=row.points,
        scores=row.scores,
    )


def get_forecast(conn: Connection, sensor_name: str) -> StoredForecast | None:
    """The named sensor's stored forecast (one indexed join), or None when it has none."""
    q = (
        select(forecasts, sensors.c.name)
        .join(sensors, sensors.c.id == forecasts.c.sensor_id)
        .where(sensors.c.name == sensor_name)
    )
    row = conn.execute(q).first()
    return None if row is None else _stored(row)


def list_forecasts(conn: Connection) -> list[StoredForecast]:
    """Every stored forecast, by sensor name."""
    q = (
        select(forecasts, sensors.c.name)
        .join(sensors, sensors.c.id == forecasts.c.sensor_id)
        .order_by(sensors.c.name)
    )
    return [_stored(row) for row in conn.execute(q)]


def forecast_plans(conn: Connection, sensor_ids: Iterable[int]) -> dict[int, ForecastPlan]:
    """These sensors' rows without their points, one statement per ``BATCH`` of ids."""
    ids = [int(i) for i in dict.fromkeys(sensor_ids)]
    out: dict[int, ForecastPlan] = {}
    for lo in range(0, len(ids), BATCH):
        q = select(*_PLAN).where(forecasts.c.sensor_id.in_(ids[lo : lo + BATCH]))
        out.update((row.sensor_id, _plan(row)) for row in conn.execute(q))
    return out


def oldest_made_at(conn: Connection) -> pd.Timestamp | None:
    """When the oldest stored forecast was made (None: no forecast stored)."""
    value = conn.execute(select(func.min(forecasts.c.made_at))).scalar()  # min keeps UTCTime
    return None if value is None else pd.Timestamp(value)


def put_forecasts(conn: Connection, rows: Iterable[dict[str, Any]]) -> int:
    """Insert or replace these sensors' forecasts (one upsert for all); returns how many."""
    rows = list({r["sensor_id"]: r for r in rows}.values())  # the last of a sensor wins
    if not rows:
        return 0
    for r in rows:
        for key in ("made_at", "trained_until", "chosen_at"):
            if r.get(key) is not None:
                r[key] = to_utc(r[key])
    upsert(conn, forecasts, rows, ("sensor_id",))
    return len(rows)
