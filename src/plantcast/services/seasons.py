"""Seasons of stored sensors: detected from their latest readings, kept in their params.

``refresh_seasons`` detects (``plantcast.forecast.seasons``) and stores, in the sensor's params:
``seasons`` (period and strength of each), ``seasons_at`` (the data time of the last reading
used, ISO 8601), ``seasons_span`` (the history it covered, seconds) and — unless the sensor is
simulated, whose periods are those of its configured signal — ``periods``, the models' default
(see ``plantcast.services.context.sensor_periods``). ``maybe_refresh_seasons`` is the cheap
check (one query) that callers run before forecasting: it re-detects when a non-simulated
sensor has never been analysed or has gained enough new history since.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from plantcast.core.errors import NotEnoughData
from plantcast.core.types import Sensor, Source
from plantcast.forecast.seasons import MAX_POINTS, Season, detect_seasons, format_periods
from plantcast.services.context import sensor_periods
from plantcast.store import Store

# Re-detect once the new history since the last detection reaches the history it was made on
# (a young sensor: at 1, 2, 4, 8… days, as longer cycles become testable) or a week (a mature
# one, whose window is capped at MAX_POINTS readings: the longest usual cycle, once).
REFRESH_AFTER = pd.Timedelta("7d")


@dataclass(frozen=True)
class SeasonReport:
    """What ``plantcast seasons`` shows: the periods models use and what detection found."""

    sensor: str
    source: Source
    periods: tuple[str, ...]  # the models' default periods
    seasons: tuple[Season, ...] | None  # detected; None when detection has not run yet
    at: pd.Timestamp | None  # data time of the detection

    def to_dict(self) -> dict:
        return {
            "sensor": self.sensor,
            "source": self.source.value,
            "periods": list(self.periods),
            "seasons": None if self.seasons is None else [s.to_dict() for s in self.seasons],
            "seasons_at": None if self.at is None else self.at.isoformat(),
        }


def refresh_seasons(store: Store, sensor: Sensor) -> tuple[Season, ...]:
    """Detect the sensor's seasons from its latest readings and store them with it."""
    found, changes = _detected(store, sensor)
    store.update_sensor_params(sensor.id, changes)
    return found


def refresh_seasons_of(store: Store, sensors: list[Sensor]) -> dict[str, tuple[Season, ...]]:
    """``refresh_seasons`` of many sensors (an import's), stored in one transaction."""
    detected = {s.name: _detected(store, s) for s in sensors}
    ids = {s.name: s.id for s in sensors}
    store.update_many_sensor_params({ids[n]: changes for n, (_, changes) in detected.items()})
    return {name: found for name, (found, _) in detected.items()}


def _detected(store: Store, sensor: Sensor) -> tuple[tuple[Season, ...], dict]:
    """The seasons in the sensor's latest readings, and the params that record them."""
    series = store.read_tail(sensor.id, MAX_POINTS)  # bounded by count
    if series.empty:
        raise NotEnoughData(f"sensor {sensor.name!r} has no readings yet")
    found = detect_seasons(series)
    changes = {
        "seasons": [s.to_dict() for s in found],
        "seasons_at": series.index[-1].isoformat(),
        "seasons_span": (series.index[-1] - series.index[0]).total_seconds(),
    }
    if sensor.source is not Source.SIMULATED:
        # An empty list means "looked, found none": detection and forecasting model the
        # sensor without a season.
        changes["periods"] = list(format_periods(found))
    return found, changes


def needs_refresh(params: dict, last: pd.Timestamp | None) -> bool:
    """True when there are readings and none or too few of them were seen by the detection."""
    if last is None:
        return False
    at = params.get("seasons_at")
    if at is None:
        return True
    gained = last - pd.Timestamp(at)
    span = pd.Timedelta(seconds=float(params.get("seasons_span", 0.0)))
    return gained > pd.Timedelta(0) and gained >= min(span, REFRESH_AFTER)


def maybe_refresh_seasons(store: Store, sensor: Sensor) -> tuple[Season, ...] | None:
    """Re-detect a non-simulated sensor's seasons when due (one query when not); else None."""
    if sensor.source is Source.SIMULATED:
        return None
    params, last = store.params_and_last_ts(sensor.id)
    if not needs_refresh(params, last):
        return None
    return refresh_seasons(store, sensor)


def current_periods(store: Store, sensor: Sensor, params: dict, last) -> tuple[str, ...]:
    """A sensor's periods, its seasons detected first when due (``needs_refresh``: never
    analysed, or much new history since), as detection and forecasting both need them."""
    if sensor.source is not Source.SIMULATED and needs_refresh(params, last):
        return tuple(format_periods(refresh_seasons(store, sensor)))
    return stored_periods(params)


def sensor_periods_now(store: Store, sensor: Sensor) -> tuple[str, ...]:
    """The periods a forecast or detection of the sensor should use now: :func:`current_periods`
    from what the store holds (its seasons detected first when due)."""
    params, last = store.params_and_last_ts(sensor.id)
    return current_periods(store, sensor, params, last)


def stored_periods(params: dict) -> tuple[str, ...]:
    """The periods kept in a sensor's params (configured or detected); ``()`` when none were
    found or detection has not run: no fallback season."""
    return tuple(params.get("periods") or ())


def stored_seasons(params: dict) -> tuple[Season, ...] | None:
    """The seasons kept in a sensor's params; None when detection has not run."""
    raw = params.get("seasons")
    if raw is None:
        return None
    return tuple(Season(pd.Timedelta(s["period"]), float(s["strength"])) for s in raw)


def season_report(store: Store, sensor_name: str, *, refresh: bool = False) -> SeasonReport:
    """The sensor's periods and detected seasons; ``refresh`` detects them again first."""
    sensor = store.get_sensor(sensor_name)
    if refresh:
        refresh_seasons(store, sensor)
    params = store.sensor_params(sensor.id)
    at = params.get("seasons_at")
    return SeasonReport(
        sensor=sensor.name,
        source=sensor.source,
        periods=sensor_periods(store, sensor.id),
        seasons=stored_seasons(params),
        at=None if at is None else pd.Timestamp(at),
    )
