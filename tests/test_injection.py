"""Injected events change exactly the readings they should, on SQLite and PostgreSQL; detection
turns them into alerts idempotently."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from plantcast.core.errors import InputError, Refused
from plantcast.ingest.backfill import backfill
from plantcast.ingest.csv_import import CsvSpec, import_csv
from plantcast.ingest.stream import Streamer
from plantcast.services.detection import detect_sensor
from plantcast.services.injection import inject, normalize
from plantcast.signals import SignalModel

STEP = pd.Timedelta("30min")
SENSOR = "reservoir_pressure"
# The detectors that flag a step at once and let go when it ends: the alert lifecycle below is
# theirs. drift's EWMA also flags a large step, hours after it starts and until it has decayed
# (tests/test_detect_registered.py covers drift).
AT_ONCE = ("residual_z", "level_shift", "stuck", "dropout")
END = pd.Timestamp("2026-01-15", tz="UTC")


def _stream(store, n):
    Streamer(store, [SENSOR], tick=0, step=STEP, count=n).run()


def _recent(store, n):
    s = store.get_sensor(SENSOR)
    return store.read_tail(s.id, n)


@pytest.fixture
def sim(store):
    backfill(store, SENSOR, days=14, interval=STEP, end=END)
    return store


def _clean(index):
    return SignalModel().values(index)


@pytest.mark.parametrize(
    ("kind", "magnitude", "duration", "check"),
    [
        ("level_shift", 20.0, None, lambda d, v: np.allclose(d[:6], 20.0)),
        ("spike", 15.0, None, lambda d, v: np.isclose(d[0], 15.0) and np.allclose(d[1:6], 0)),
        (
            "drift",
            12.0,
            pd.Timedelta("3h"),
            lambda d, v: np.allclose(d[:6], 12.0 * np.arange(1, 7) / 6, atol=1e-6),
        ),
        ("stuck", 0.0, None, lambda d, v: np.allclose(v[:6], v[0]) and not np.allclose(d[:6], 0)),
        ("noise_burst", 5.0, None, lambda d, v: np.std(d[:6]) > 1.0),
    ],
)
def test_each_injection_changes_exactly_its_readings(sim, kind, magnitude, duration, check):
    _stream(sim, 4)
    inject(sim, SENSOR, kind, magnitude=magnitude, duration=duration)
    _stream(sim, 6)  # affected
    normalize(sim, SENSOR)
    _stream(sim, 4)  # normal again
    got = _recent(sim, 14)
    diff = got.to_numpy() - _clean(got.index)
    assert np.allclose(diff[:4], 0), "readings before the event changed"
    assert check(diff[4:10], got.to_numpy()[4:10]), diff[4:10]
    assert np.allclose(diff[10:], 0), "normalize did not end the event"


def test_dropout_writes_no_readings_until_normalized(sim):
    _stream(sim, 2)
    inject(sim, SENSOR, "dropout")
    _stream(sim, 5)
    normalize(sim, SENSOR)
    _stream(sim, 3)
    got = _recent(sim, 5)
    gap = got.index.to_series().diff().dropna()
    assert (gap == 6 * STEP).sum() == 1  # 5 readings missing between two that exist
    np.testing.assert_allclose(got.to_numpy(), _clean(got.index))


def test_demo_buttons_add_up_and_normalize(sim):
    inject(sim, SENSOR, "level_shift", magnitude=20)
    _stream(sim, 2)
    inject(sim, SENSOR, "level_shift", magnitude=20)  # second click: cumulative, like the demo
    _stream(sim, 2)
    assert normalize(sim, SENSOR) == 2
    _stream(sim, 2)
    got = _recent(sim, 6)
    np.testing.assert_allclose(got.to_numpy() - _clean(got.index), [20, 20, 40, 40, 0, 0])


def test_injection_into_imported_sensor_is_refused_and_changes_nothing(store, tmp_path):
    path = tmp_path / "x.csv"
    path.write_text("ts,value\n2026-01-01T00:00:00Z,1\n2026-01-01T00:30:00Z,2\n")
    import_csv(store, CsvSpec(path), "meter")
    with pytest.raises(Refused, match="simulated sensors only"):
        inject(store, "meter", "level_shift", magnitude=5)
    with pytest.raises(Refused):
        normalize(store, "meter")
    sid = store.get_sensor("meter").id
    assert store.events_overlapping(sid, "2000-01-01", "2100-01-01") == []


def test_bad_injections_are_clear_errors(sim):
    with pytest.raises(InputError, match="unknown kind 'boom'"):
        inject(sim, SENSOR, "boom", magnitude=1)
    with pytest.raises(InputError, match="drift needs --duration"):
        inject(sim, SENSOR, "drift", magnitude=1)
    with pytest.raises(InputError, match="non-zero --magnitude"):
        inject(sim, SENSOR, "spike")


def test_detect_is_idempotent_and_alert_brackets_the_event(sim):
    first = detect_sensor(sim, SENSOR)
    assert first.opened == 0, "clean data raised an alert"
    _stream(sim, 5)
    event = inject(sim, SENSOR, "level_shift", magnitude=20)
    _stream(sim, 8)
    normalize(sim, SENSOR)
    _stream(sim, 10)
    detect_sensor(sim, SENSOR, detectors=AT_ONCE)
    again = detect_sensor(sim, SENSOR, detectors=AT_ONCE)
    assert (again.opened, again.updated) == (0, 0)
    alerts = sim.list_alerts(sensor_id=sim.get_sensor(SENSOR).id)
    assert alerts, "the level shift raised no alert"
    event_end = event.starts_at + 8 * STEP
    for a in alerts:
        assert a.ends_at is not None
        assert event.starts_at <= a.ts <= event.starts_at + 3 * STEP
        assert a.ends_at <= event_end + 2 * STEP
    assert any(a.ends_at >= event_end - 2 * STEP for a in alerts)


def test_ongoing_anomaly_is_one_alert_that_grows(sim):
    inject(sim, SENSOR, "level_shift", magnitude=25)
    _stream(sim, 4)
    detect_sensor(sim, SENSOR, detectors=AT_ONCE)
    sid = sim.get_sensor(SENSOR).id
    before = {a.detector: a for a in sim.list_alerts(sensor_id=sid)}
    assert before and all(a.ends_at is None for a in before.values())
    _stream(sim, 4)
    r = detect_sensor(sim, SENSOR, detectors=AT_ONCE)
    after = {a.detector: a for a in sim.list_alerts(sensor_id=sid)}
    assert r.opened == 0 and set(after) == set(before)
    assert all(after[d].id == before[d].id for d in after)
