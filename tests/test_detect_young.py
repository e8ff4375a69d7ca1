"""A 1 s sensor with 15 minutes of history gets an alert for a planted fault, and its clean
twin none: on a first pass (the fault inside the readings it is fitted on) and on an
incremental one (the fault in the new readings), serial and bulk, on SQLite and PostgreSQL."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from plantcast.core.types import Source
from plantcast.detect.alerts import drop_unlearnt
from plantcast.services.detection import detect_sensor
from plantcast.services.detection_batch import detect_pass
from plantcast.services.detector_training import CLEAN_PAD, clean_pad

START = pd.Timestamp("2025-03-01", tz="UTC")
SECOND = pd.Timedelta("1s")
HISTORY = 900  # 15 minutes
FAULTS = ("spike", "shift", "stuck")


def _series(kind: str, n: int, at: int) -> pd.Series:
    """A 1-minute cycle with noise at 1 s; from reading ``at`` the fault ``kind`` names."""
    t = np.arange(n)
    value = 20 + np.sin(2 * np.pi * t / 60) + np.random.default_rng(7).normal(0, 0.1, n)
    if kind == "spike":
        value[at : at + 3] += 5
    elif kind == "shift":
        value[at:] += 3
    elif kind == "stuck":
        value[at : at + 100] = value[at]
    return pd.Series(value, index=pd.date_range(START, periods=n, freq=SECOND))


def _alerts(store, sid: int) -> list:
    return store.list_alerts(sensor_id=sid, limit=100)


def test_the_cleaning_pad_is_at_most_an_eighth_of_a_short_window():
    short = pd.date_range(START, periods=HISTORY, freq=SECOND)
    assert clean_pad(short) == (HISTORY - 1) * SECOND.value // 8
    long = pd.date_range(START, periods=28 * 48, freq="30min")
    assert clean_pad(long) == CLEAN_PAD.value  # a full training window keeps its 6 h


@pytest.mark.parametrize("kind", ("clean", *FAULTS))
def test_a_fault_in_the_first_15_minutes_alerts(store, kind):
    """The first pass fits on the readings it scores (in-sample): the fault left out of the
    training with a pad that does not swallow the whole window, so it is not learnt as normal."""
    sid = store.ensure_sensor("fast", source=Source.IMPORTED, interval=SECOND).id
    store.write_readings(sid, _series(kind, HISTORY, at=600))
    result = detect_sensor(store, "fast")
    assert result.scored == HISTORY and result.skipped == {}
    found = _alerts(store, sid)
    if kind == "clean":
        assert found == []
    else:
        assert len(found) == 1
        assert START + 600 * SECOND <= found[0].ts <= START + 605 * SECOND


@pytest.mark.parametrize("path", ("serial", "bulk"))
@pytest.mark.parametrize("kind", ("clean", *FAULTS))
def test_a_fault_after_15_minutes_of_history_alerts_on_the_incremental_pass(store, kind, path):
    whole = _series(kind, HISTORY + 180, at=HISTORY + 60)
    sid = store.ensure_sensor("fast", source=Source.IMPORTED, interval=SECOND).id
    store.write_readings(sid, whole.iloc[:HISTORY])
    assert detect_sensor(store, "fast").scored == HISTORY
    assert _alerts(store, sid) == []
    store.write_readings(sid, whole.iloc[HISTORY:])
    if path == "serial":
        result = detect_sensor(store, "fast")
    else:
        result = detect_pass(store, ["fast"])["fast"]
    assert not isinstance(result, Exception) and result.scored == 180
    found = _alerts(store, sid)
    if kind == "clean":
        assert found == []
    else:
        assert len(found) == 1
        at = START + (HISTORY + 60) * SECOND
        assert at <= found[0].ts <= at + 5 * SECOND


def _habit(fault: bool) -> pd.Series:
    """A week at 5 min: a level with noise and, every evening at 20:00, one reading 50σ up
    (the sensor's habit, as a job that runs nightly makes); with ``fault``, from day 5 08:20
    on the level 30σ up."""
    idx = pd.date_range(START, periods=7 * 288, freq="5min")
    value = 10 + np.random.default_rng(3).normal(0, 0.1, len(idx))
    value[240::288] += 5
    if fault:
        value[5 * 288 + 100 :] += 3
    return pd.Series(value, index=idx)


@pytest.mark.parametrize("fault", (False, True))
def test_a_young_sensors_daily_habit_is_not_an_alert_but_a_fault_is(store, fault):
    """The first week is scored by detectors fitted on it (in-sample): a detector that flags
    its evening spike day after day flags more of its own window than its budget allows, has
    not learnt the sensor, and raises none of them (it raised five); a shift still alerts."""
    sid = store.ensure_sensor("habit", source=Source.IMPORTED, interval=pd.Timedelta("5min")).id
    store.write_readings(sid, _habit(fault))
    assert detect_sensor(store, "habit").scored == 7 * 288
    found = _alerts(store, sid)
    if not fault:
        assert found == []
    else:
        assert len(found) == 1
        at = START + (5 * 288 + 100) * pd.Timedelta("5min")
        assert at <= found[0].ts <= at + pd.Timedelta("1h")


def test_an_over_budget_detectors_episodes_are_dropped_the_others_kept():
    eps = pd.DataFrame({"start": pd.date_range(START, periods=3, freq="1D")})
    eps["end"] = eps["start"]
    found = {"residual_z": eps, "level_shift": eps.iloc[:1], "stuck": eps}
    kept = drop_unlearnt(found, {"residual_z": 1, "level_shift": 1})
    assert kept["residual_z"].empty  # three where one was allowed
    assert kept["level_shift"].equals(eps.iloc[:1])  # within its allowance
    assert kept["stuck"].equals(eps)  # no allowance given: kept
