"""Limit alarms and forecast-crossing early warnings in the store.

:func:`check_sensor` scores a sensor's readings not scored yet against its limits (resuming
at ``detector_state``'s ``limit`` mark, in chunks of bounded size) and opens, extends or
clears its ``limit:<level>`` alerts, each chunk in one transaction (the pure rules:
:mod:`plantcast.detect.limits`). :func:`after_detect` is what ``detect`` calls at the end of
a pass: one read of which of its sensors have limits, nothing more when none has.

:func:`check_forecast` raises (or moves, or clears) a sensor's ``forecast_limit`` warning: its
forecast — the stored one (``forecast refresh``) if any, else one fitted now — reaching a limit
within the horizon, saying when and with the forecast's band there.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import pandas as pd

from plantcast.core.errors import NotFound, PlantcastError
from plantcast.core.timeutil import parse_duration
from plantcast.core.types import Alert, Sensor
from plantcast.detect.limits import (
    FORECAST_KIND,
    Crossing,
    forecast_crossing,
    level_of,
    limit_alert_changes,
    limit_episodes,
)
from plantcast.forecast.base import DEFAULT_MAX_TRAIN_POINTS
from plantcast.services.forecasting import ForecastSpec
from plantcast.store import Store, Transaction
from plantcast.store.limits import Limits

MARK = "limit"  # the detector_state row of the limit pass
CHUNK_READINGS = 100_000  # readings scored per transaction at most (memory stays flat)
US = pd.Timedelta("1us")
WARN_AHEAD = pd.Timedelta("8h")  # how far ahead a forecast fitted for a warning looks
HORIZON_STEPS = (24, 480)  # in readings: at least, at most


@dataclass(frozen=True)
class LimitResult:
    sensor: str
    scored: int = 0
    opened: int = 0
    updated: int = 0


def _open_alarms(tx: Transaction, sensor_id: int) -> dict[str, Alert]:
    """The sensor's open limit alarms by level (the newest, should there be two)."""
    found = tx.list_alerts(sensor_id=sensor_id, ongoing=True, limit=10_000)
    out: dict[str, Alert] = {}
    for a in reversed(found):  # oldest first: the newest wins
        level = level_of(a.detector)
        if level is not None:
            out[level] = a
    return out


def check_sensor(store: Store, sensor: Sensor, limits: Limits) -> LimitResult:
    """Score the sensor's new readings against its limits; write what changed."""
    with store.transaction(readonly=True) as tx:
        mark = tx.get_scored_until(sensor.id, MARK)
    latest = store.last_reading(sensor.id)
    if latest is None:
        return LimitResult(sensor.name)
    start = store.first_timestamp(sensor.id) if mark is None else mark + US
    if start is None or start > latest[0]:
        return LimitResult(sensor.name)
    span = sensor.interval * CHUNK_READINGS
    scored = opened = updated = 0
    a = start
    while a <= latest[0]:
        b = min(a + span, latest[0] + US)
        series = store.read_series(sensor.id, a, b)
        if len(series):
            n_new, n_changed = _write_chunk(store, sensor, limits, series)
            scored, opened, updated = scored + len(series), opened + n_new, updated + n_changed
        a = b
    return LimitResult(sensor.name, scored, opened, updated)


def _write_chunk(
    store: Store, sensor: Sensor, limits: Limits, series: pd.Series
) -> tuple[int, int]:
    levels = limits.levels()
    with store.transaction() as tx:
        before = tx.get_scored_until(sensor.id, MARK)
        alarms = _open_alarms(tx, sensor.id)
        found = limit_episodes(series, levels, limits.deadband, ongoing=set(alarms))
        open_alerts = {k: {"id": a.id, "score": a.score} for k, a in alarms.items()}
        to_update, to_insert = limit_alert_changes(
            open_alerts,
            found,
            last=series.index[-1],
            scored_before=before,
            deadband=limits.deadband,
        )
        # a level unset while its alarm was open: that alarm ends where scoring had reached
        for level, alert in alarms.items():
            if level not in levels:
                to_update.append({"id": alert.id, "ends_at": before or series.index[0]})
        for change in to_update:
            tx.update_alert(change.pop("id"), **change)
        for row in to_insert:
            tx.insert_alert(sensor.id, **row)
        tx.set_scored_until(sensor.id, MARK, series.index[-1])
    return len(to_insert), len(to_update)


def after_detect(store: Store, sensors: Iterable[Sensor]) -> dict[str, LimitResult]:
    """The limit pass over the sensors a ``detect`` pass scored: those with limits only (one
    read says which; a database without the limits table has none)."""
    by_id = {s.id: s for s in sensors}
    if not by_id:
        return {}
    with store.transaction(readonly=True) as tx:
        found = tx.limits_many(by_id)
    return {by_id[i].name: check_sensor(store, by_id[i], lim) for i, lim in found.items()}


@dataclass(frozen=True)
class EarlyWarning:
    """What :func:`check_forecast` did: the crossing (None: the forecast stays inside every
    limit), and the warning alert opened, moved or cleared (None: none)."""

    sensor: str
    crossing: Crossing | None
    alert_id: int | None
    action: str  # opened, updated, cleared, none


def forecast_spec(sensor: Sensor, periods: tuple[str, ...]) -> ForecastSpec:
    """The forecast a warning is made from when none is stored: ``WARN_AHEAD`` of the
    sensor's readings (within ``HORIZON_STEPS``), trained on at least two of its longest
    season (a 1 min sensor's 24 h needs 2,880 readings, more than a model's default bound)."""
    steps = int(min(max(WARN_AHEAD / sensor.interval, HORIZON_STEPS[0]), HORIZON_STEPS[1]))
    longest = max((parse_duration(p) for p in periods), default=pd.Timedelta(0))
    train = int(min(max(DEFAULT_MAX_TRAIN_POINTS, 2.2 * (longest / sensor.interval)), 20_000))
    return ForecastSpec(periods=periods, horizon=steps, max_train_points=train)


def _forecast(store: Store, sensor: Sensor) -> tuple[pd.DataFrame, pd.Timestamp, str]:
    """The sensor's forecast: the stored one if there is one, else fitted now (its frame,
    the last reading it was made on, and the model)."""
    from plantcast.services.forecast_store import stored_forecast
    from plantcast.services.forecasting import forecast_sensor
    from plantcast.services.seasons import sensor_periods_now

    try:
        view = stored_forecast(store, sensor.name)
        return view.frame(), view.row.trained_until, view.row.chosen
    except NotFound:
        pass
    result = forecast_sensor(
        store, sensor.name, forecast_spec(sensor, sensor_periods_now(store, sensor))
    )
    last = store.last_timestamp(sensor.id)
    origin = last if last is not None else result.frame.index[0]
    return result.frame, origin, result.chosen


def check_forecast(
    store: Store,
    sensor_name: str,
    *,
    frame: pd.DataFrame | None = None,
    origin: pd.Timestamp | None = None,
    model: str | None = None,
) -> EarlyWarning:
    """Raise, move or clear the sensor's ``forecast_limit`` warning from its forecast
    (``frame``: a forecast made on readings up to ``origin``; default the sensor's own)."""
    with store.transaction(readonly=True) as tx:
        sensor = tx.get_sensor(sensor_name)
        limits = tx.get_limits(sensor.id)
        in_alarm = set(_open_alarms(tx, sensor.id))
    if limits is None or not limits.levels():
        return EarlyWarning(sensor.name, None, None, "none")
    if frame is None:
        frame, origin, model = _forecast(store, sensor)
    if origin is None:
        origin = pd.Timestamp(frame.index[0]) if len(frame) else pd.Timestamp.now(tz="UTC")
    crossing = forecast_crossing(frame, limits.levels(), skip=in_alarm)
    with store.transaction() as tx:
        warned = tx.list_alerts(sensor_id=sensor.id, ongoing=True, detector=FORECAST_KIND)
        current = next((a for a in warned if a.detector == FORECAST_KIND), None)
        if crossing is None:
            if current is None:
                return EarlyWarning(sensor.name, None, None, "none")
            tx.update_alert(current.id, ends_at=max(origin, current.ts))
            return EarlyWarning(sensor.name, None, current.id, "cleared")
        details = crossing.details(origin) | {"model": model}
        fields = {"value": crossing.mean, "expected": crossing.value, "details": details}
        if current is not None:
            tx.update_alert(current.id, **fields)
            return EarlyWarning(sensor.name, crossing, current.id, "updated")
        made = tx.insert_alert(
            sensor.id, detector=FORECAST_KIND, ts=origin, ends_at=None, score=1.0, **fields
        )
    return EarlyWarning(sensor.name, crossing, made, "opened")


def check_stored_forecasts(store: Store) -> list[EarlyWarning]:
    """The forecast check of every sensor with limits and a stored forecast (no fit: what
    ``serve``'s forecasts job runs after each refresh); a sensor it fails for is skipped."""
    from plantcast.services.forecast_store import stored_forecast

    with store.transaction(readonly=True) as tx:
        with_limits = set(tx.limits_many())
    out = []
    for sensor in store.list_sensors():
        if sensor.id not in with_limits:
            continue
        try:
            view = stored_forecast(store, sensor.name)
        except NotFound:
            continue
        row = view.row
        out.append(
            check_forecast(
                store, sensor.name, frame=view.frame(), origin=row.trained_until, model=row.chosen
            )
        )
    return out


def check_limits(
    store: Store, sensors: Iterable[str] = (), *, forecast: bool = True
) -> list[tuple[LimitResult, EarlyWarning | None, str | None]]:
    """``plantcast limits check``: the limit pass and (``forecast``) the forecast check of the
    named sensors (none: every sensor with limits). Per sensor: its limit result, its
    warning, and why the forecast could not be made (else None)."""
    names = list(dict.fromkeys(sensors))
    with store.transaction(readonly=True) as tx:
        if names:
            found = [tx.get_sensor(n) for n in names]
            limits = tx.limits_many(s.id for s in found)
        else:
            limits = tx.limits_many()
            found = []
    if not names:
        by_id = {s.id: s for s in store.list_sensors()}
        found = [by_id[i] for i in limits if i in by_id]
    out: list[tuple[LimitResult, EarlyWarning | None, str | None]] = []
    for sensor in sorted(found, key=lambda s: s.name):
        lim = limits.get(sensor.id)
        if lim is None:
            raise NotFound(f"sensor {sensor.name!r} has no limits (plantcast limits set)")
        result = check_sensor(store, sensor, lim)
        warning, why = None, None
        if forecast:
            try:
                warning = check_forecast(store, sensor.name)
            except PlantcastError as exc:  # too little history to forecast, …
                why = str(exc)
        out.append((result, warning, why))
    return out
