"""What the routes share: the store of the app, names and times read safely."""

from __future__ import annotations

from typing import Annotated

import pandas as pd
from fastapi import Path, Request

from plantcast.api.problems import ApiProblem
from plantcast.core.timeutil import FIRST_YEAR, LAST_YEAR
from plantcast.core.types import Sensor
from plantcast.store import Store

NO_NUL = r"^[^\x00]*$"  # PostgreSQL text refuses NUL: say so as bad input, not a 500
SensorName = Annotated[
    str, Path(min_length=1, max_length=200, pattern=NO_NUL, description="Sensor name")
]


def store_of(request: Request) -> Store:
    return request.app.state.store


def sensor_of(request: Request, name: str) -> Sensor:
    return store_of(request).get_sensor(name)


def invalid(detail: str, field: str, **extra) -> ApiProblem:
    return ApiProblem(422, "invalid-input", "Invalid input", detail, field=field, **extra)


def utc(value, field: str) -> pd.Timestamp:
    """An aware datetime as a UTC Timestamp; years outside FIRST_YEAR..LAST_YEAR are bad input."""
    if not FIRST_YEAR <= value.year <= LAST_YEAR:
        raise invalid(f"{value} is outside the supported years ({FIRST_YEAR}-{LAST_YEAR})", field)
    ts = pd.Timestamp(value).as_unit("us")
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def iso(ts) -> str | None:
    return None if ts is None or pd.isna(ts) else pd.Timestamp(ts).isoformat()
