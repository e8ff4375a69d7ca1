"""Limit alarms with a deadband through the episode layer, resumed pass after pass, hooked into
detect; and the forecast-crossing early warning."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from plantcast.cli.main import cli
from plantcast.core.types import Source
from plantcast.detect.limits import alarm_flags, forecast_crossing, limit_episodes
from plantcast.notify import add_destination
from plantcast.services import limits, silences
from plantcast.services.detection import detect_sensor
from plantcast.services.detection_batch import detect_pass
from plantcast.services.limit_alerts import check_forecast, check_limits, check_sensor
from plantcast.store import notifications as outbox

START = pd.Timestamp("2026-03-02", tz="UTC")
STEP = pd.Timedelta("10min")


def _series(values, start=START) -> pd.Series:
    idx = pd.date_range(start, periods=len(values), freq=STEP, tz="UTC")
    return pd.Series(np.asarray(values, dtype=float), index=idx)


def _store_sensor(store, values, name="p1", start=START) -> object:
    sensor = store.ensure_sensor(name, source=Source.IMPORTED, interval=STEP)
    store.write_readings(sensor.id, _series(values, start))
    return sensor


def _limit_alerts(store, sid):
    return sorted(
        (a for a in store.list_alerts(sensor_id=sid) if a.detector.startswith("limit:")),
        key=lambda a: (a.ts, a.detector),
    )


def test_a_deadband_holds_an_alarm_until_the_value_is_back_inside_by_it():
    values = np.array([70, 79, 80, 79.5, 81, 78.9, 79.5, 80.2, 76, 75.0])
    flags = alarm_flags(values, "high", 80.0, 1.0, ongoing=False)
    # entered at 80, held through 79.5 (inside by less than the deadband), left at 78.9
    assert flags.tolist() == [False, False, True, True, True, False, False, True, False, False]
    no_band = alarm_flags(values, "high", 80.0, 0.0, ongoing=False)
    assert no_band.tolist() == [False, False, True, False, True, False, False, True, False, False]
    low = alarm_flags(np.array([12, 10, 10.5, 11.5, 9]), "low", 10.0, 1.0, ongoing=False)
    assert low.tolist() == [False, True, True, False, True]
    # an alarm open before: still in alarm while within the deadband
    carried = alarm_flags(np.array([79.5, 79.2, 78]), "high", 80.0, 1.0, ongoing=True)
    assert carried.tolist() == [True, True, False]
    found = limit_episodes(_series(values), {"high": 80.0}, 1.0)
    assert len(found["high"].episodes) == 2 and not found["high"].continues


def test_crossing_a_limit_with_a_deadband_raises_one_alert_and_clears(store):
    # dithers around 80 for an hour (one alarm), falls back, then reaches 95 (high and high-high)
    values = [70] * 6 + [80.5, 79.6, 80.2, 79.8, 80.9, 79.4] + [75] * 6 + [96, 97] + [70] * 4
    sensor = _store_sensor(store, values)
    limits.set_limits(
        store, "p1", author="ann", levels={"high": 80.0, "high_high": 95.0}, deadband=1.0
    )
    result = check_sensor(store, sensor, limits.sensor_limits(store, "p1"))
    assert result.scored == len(values) and result.opened == 3
    got = _limit_alerts(store, sensor.id)
    assert [(a.detector, a.ts, a.ends_at) for a in got] == [
        ("limit:high", START + 6 * STEP, START + 11 * STEP),
        ("limit:high", START + 18 * STEP, START + 19 * STEP),
        ("limit:high_high", START + 18 * STEP, START + 19 * STEP),
    ]
    first = got[0]
    assert first.value == 80.9 and first.expected == 80.0 and first.score == pytest.approx(0.9)
    assert first.details == {"limit": "high", "level": 80.0, "deadband": 1.0}
    again = check_sensor(store, sensor, limits.sensor_limits(store, "p1"))
    assert (again.scored, again.opened, again.updated) == (0, 0, 0)  # nothing new, nothing done


def test_an_alarm_open_at_the_end_of_a_pass_goes_on_in_the_next_then_clears(store):
    add_destination(store, "ops", webhook="http://127.0.0.1:9/hook")
    sensor = _store_sensor(store, [50, 50, 61, 62])
    limits.set_limits(store, "p1", author="ann", levels={"high": 60.0}, deadband=2.0)
    check_sensor(store, sensor, limits.sensor_limits(store, "p1"))
    (alarm,) = _limit_alerts(store, sensor.id)
    assert alarm.ends_at is None  # ongoing
    store.write_readings(sensor.id, _series([63, 58.5], START + 4 * STEP))  # inside by < 2
    assert check_sensor(store, sensor, limits.sensor_limits(store, "p1")).opened == 0
    (alarm,) = _limit_alerts(store, sensor.id)
    assert alarm.ends_at is None and alarm.value == 63.0
    store.write_readings(sensor.id, _series([57, 56], START + 6 * STEP))  # back inside by 3
    check_sensor(store, sensor, limits.sensor_limits(store, "p1"))
    (alarm,) = _limit_alerts(store, sensor.id)
    assert alarm.ends_at == START + 5 * STEP  # the last reading in alarm
    with store.read() as conn:
        events = [r["event"] for r in outbox.list_outbox(conn, alert_id=alarm.id)]
    assert events == ["opened", "resolved"]


def test_detect_raises_limit_alarms_and_a_silence_keeps_them_quiet(store):
    add_destination(store, "ops", webhook="http://127.0.0.1:9/hook")
    quiet = [10.0] * 200 + [30.0] * 3 + [10.0] * 20
    sensor = _store_sensor(store, quiet)
    other = _store_sensor(store, quiet, name="p2")
    for name in ("p1", "p2"):
        limits.set_limits(store, name, author="ann", levels={"high": 20.0})
    silences.add_silence(store, sensor="p2", reason="pm", author="ann", start=START, duration="7d")
    detect_sensor(store, "p1", detectors=("stuck",))
    detect_pass(store, ["p2"], detectors=("stuck",))
    for s in (sensor, other):
        (alarm,) = _limit_alerts(store, s.id)
        assert alarm.ts == START + 200 * STEP and alarm.ends_at == START + 202 * STEP
    with store.read() as conn:
        queued = {r["alert_id"] for r in outbox.list_outbox(conn)}
    assert _limit_alerts(store, sensor.id)[0].id in queued
    silenced = _limit_alerts(store, other.id)[0]
    assert silenced.silenced and silenced.id not in queued


def test_the_forecast_reaching_a_limit_warns_when_with_its_band(store):
    sensor = _store_sensor(store, [50, 52, 54])
    limits.set_limits(store, "p1", author="ann", levels={"low": 10.0, "high": 60.0})
    origin = START + 2 * STEP
    idx = pd.date_range(origin + STEP, periods=6, freq=STEP, tz="UTC")
    rising = pd.DataFrame(
        {
            "mean": [56.0, 58.0, 60.5, 62.0, 64.0, 66.0],
            "lower_80": [54.0, 55.0, 57.0, 58.0, 59.0, 60.0],
            "upper_80": [58.0, 61.0, 64.0, 66.0, 69.0, 72.0],
        },
        index=idx,
    )
    crossing = forecast_crossing(rising, {"low": 10.0, "high": 60.0})
    assert crossing is not None and crossing.level == "high" and crossing.at == idx[2]
    warned = check_forecast(store, "p1", frame=rising, origin=origin, model="test")
    assert warned.action == "opened"
    (alert,) = store.list_alerts(sensor_id=sensor.id, detector="forecast_limit")
    assert alert.ts == origin and alert.ends_at is None and alert.value == 60.5
    assert alert.details["crosses_at"] == idx[2].isoformat()
    assert alert.details["in_hours"] == 0.5 and alert.details["limit"] == "high"
    assert alert.details["band"] == {"lower_80": 57.0, "upper_80": 64.0}
    # a later forecast crossing later moves the warning; one inside the limits clears it
    later = rising.assign(mean=[55.0, 56.0, 57.0, 58.0, 59.0, 61.0])
    assert check_forecast(store, "p1", frame=later, origin=origin, model="test").action == "updated"
    (alert,) = store.list_alerts(sensor_id=sensor.id, detector="forecast_limit")
    assert alert.details["crosses_at"] == idx[5].isoformat()
    flat = rising.assign(mean=[55.0] * 6)
    assert check_forecast(store, "p1", frame=flat, origin=origin + STEP).action == "cleared"
    (alert,) = store.list_alerts(sensor_id=sensor.id, detector="forecast_limit")
    assert alert.ends_at == origin + STEP


def test_limits_check_forecasts_a_cycling_sensor_and_says_when_it_crosses(store, db_url):
    steps = np.arange(24 * 6 * 4)  # four days of 10-minute readings, a daily cycle 45-55
    noise = np.random.default_rng(0).normal(0, 0.2, len(steps))
    sensor = _store_sensor(store, 50 + 5 * np.sin(2 * np.pi * steps / 144) + noise)
    limits.set_limits(store, "p1", author="ann", levels={"high": 54.0})
    ((result, warning, why),) = check_limits(store)
    assert why is None and result.scored == len(steps)
    assert result.opened >= 4  # each day's peak; the last reading (about 50) is well inside
    assert warning is not None and warning.action == "opened"
    crossing = warning.crossing
    assert crossing is not None and crossing.level == "high"
    # the next peak (06:00): at about 54 at 04:10, well within the 8 h horizon
    day = START + pd.Timedelta("4d")
    assert day + pd.Timedelta("3h") < crossing.at < day + pd.Timedelta("5h")
    assert {"lower_80", "upper_80", "lower_95", "upper_95"} <= set(crossing.band)
    runner = CliRunner()
    listed = runner.invoke(cli, ["alerts", "--database-url", db_url, "--format", "json"])
    alert = json.loads(listed.output)["alerts"][0]  # the newest
    assert alert["detector"] == "forecast_limit" and alert["details"]["limit"] == "high"
    again = runner.invoke(cli, ["limits", "check", "--database-url", db_url, "p1"])
    assert again.exit_code == 0, again.output
    assert "forecast reaches high (54)" in again.output and "updated" in again.output
    assert sensor.id == alert_sensor_id(store)


def alert_sensor_id(store) -> int:
    (alert,) = store.list_alerts(detector="forecast_limit")
    return alert.sensor_id


def test_serve_warns_from_the_forecasts_it_stored_without_fitting_again(store):
    from plantcast.services.forecast_store import refresh_forecasts
    from plantcast.services.limit_alerts import check_stored_forecasts

    steps = np.arange(24 * 6 * 4)
    noise = np.random.default_rng(0).normal(0, 0.2, len(steps))
    sensor = _store_sensor(store, 50 + 5 * np.sin(2 * np.pi * steps / 144) + noise)
    _store_sensor(store, [1.0, 2.0, 3.0], name="no_limits")
    limits.set_limits(store, "p1", author="ann", levels={"high": 54.0})
    assert check_stored_forecasts(store) == []  # no forecast stored yet: nothing fitted
    refresh_forecasts(store, ["p1"], horizon="8h", model="fourier_linear", max_age="1h")
    (warning,) = check_stored_forecasts(store)
    assert warning.action == "opened" and warning.crossing is not None
    (alert,) = store.list_alerts(sensor_id=sensor.id, detector="forecast_limit")
    assert alert.details["model"] == "fourier_linear"
    assert alert.ts == START + (len(steps) - 1) * STEP  # made on readings up to the last
