"""Store behaviour on both engines: round trips, idempotent upserts, bounded and bucketed reads."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from plantcast.core.errors import NotFound
from plantcast.core.types import Source
from plantcast.signals import SignalModel, generate_readings
from plantcast.store import Store, normalize_url

START = pd.Timestamp("2026-01-01", tz="UTC")


def _sensor(store: Store, name: str = "p"):
    return store.ensure_sensor(name, source=Source.SIMULATED, interval=pd.Timedelta("30min"))


def test_init_is_idempotent_and_sensor_lookup(store):
    store.init()
    a = _sensor(store)
    assert _sensor(store).id == a.id
    assert store.get_sensor("p").interval == pd.Timedelta("30min")
    with pytest.raises(NotFound, match=r"no sensor named 'nope'.*known sensors: p"):
        store.get_sensor("nope")


timestamps = st.lists(
    st.datetimes(
        min_value=pd.Timestamp("1980-01-01").to_pydatetime(),
        max_value=pd.Timestamp("2100-01-01").to_pydatetime(),
    ),
    min_size=1,
    max_size=40,
    unique=True,
)
floats = st.floats(allow_nan=False, allow_infinity=False, width=64)


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_round_trip_is_exact(store, data):
    """What is written is what is read back: tz-aware timestamps (µs), floats, order."""
    stamps = data.draw(timestamps)
    idx = pd.DatetimeIndex(stamps).tz_localize("UTC").as_unit("us").floor("us")
    idx = idx.drop_duplicates()
    values = data.draw(st.lists(floats, min_size=len(idx), max_size=len(idx)))
    written = pd.Series(values, index=idx).sort_index()
    sensor = _sensor(store, f"s{abs(hash(tuple(stamps))) % 10**9}")
    store.write_readings(sensor.id, written.sample(frac=1.0, random_state=0))  # any order in
    back = store.read_series(sensor.id, written.index[0], written.index[-1] + pd.Timedelta("1us"))
    assert str(back.index.tz) == "UTC"
    assert back.index.equals(written.index.as_unit("ns"))
    np.testing.assert_array_equal(back.to_numpy(), written.to_numpy())


def test_upsert_replay_adds_nothing_and_updates_values(store):
    s = _sensor(store)
    series = generate_readings(SignalModel(), START, periods=500)
    assert store.write_readings(s.id, series) == 500
    store.write_readings(s.id, series)
    assert store.count_readings(s.id) == 500
    store.write_readings(s.id, series.iloc[:10] + 1.0)
    back = store.read_series(s.id, START, START + pd.Timedelta("1d"))
    assert back.iloc[0] == pytest.approx(series.iloc[0] + 1.0)
    assert store.count_readings(s.id) == 500


def test_reads_are_bounded_by_the_window(store):
    s = _sensor(store)
    store.write_readings(s.id, generate_readings(SignalModel(), START, periods=96))
    got = store.read_series(s.id, START + pd.Timedelta("1h"), START + pd.Timedelta("3h"))
    expected = pd.date_range(START + pd.Timedelta("1h"), periods=4, freq="30min")
    assert list(got.index) == list(expected)
    tail = store.read_tail(s.id, 5)
    assert len(tail) == 5 and tail.index[-1] == START + pd.Timedelta("47.5h")
    assert store.last_reading(s.id)[0] == START + pd.Timedelta("47.5h")
    assert store.first_timestamp(s.id) == START


@pytest.mark.parametrize("buckets", [1, 7, 50, 1000])
def test_downsampled_read_matches_pandas_oracle(store, buckets):
    s = _sensor(store)
    rng = np.random.default_rng(3)
    # Irregular timestamps with a gap, so some buckets are empty.
    offsets = np.sort(rng.choice(3 * 86_400, size=2_000, replace=False))
    offsets = offsets[(offsets < 80_000) | (offsets > 120_000)]
    idx = START + pd.to_timedelta(offsets, unit="s")
    series = pd.Series(rng.normal(50, 5, len(idx)), index=idx)
    store.write_readings(s.id, series)
    start, end = START + pd.Timedelta("1h"), START + pd.Timedelta("2d 5h")
    got = store.read_buckets(s.id, start, end, buckets)

    window = series[(series.index >= start) & (series.index < end)]
    width_us = -(-((end - start).value // 1000) // buckets)
    key = ((window.index - start).asi8 // 1000) // width_us
    expected = window.groupby(key).agg(["mean", "min", "max", "count"])
    expected.index = start + pd.to_timedelta(expected.index * width_us, unit="us")
    assert len(got) <= buckets
    assert list(got.index) == list(expected.index)
    np.testing.assert_allclose(got["mean"], expected["mean"], rtol=1e-12)
    np.testing.assert_array_equal(got["min"], expected["min"])
    np.testing.assert_array_equal(got["max"], expected["max"])
    np.testing.assert_array_equal(got["count"], expected["count"])


def test_empty_reads(store):
    s = _sensor(store)
    assert store.read_series(s.id, START, START + pd.Timedelta("1d")).empty
    assert store.read_buckets(s.id, START, START + pd.Timedelta("1d"), 10).empty
    assert store.last_reading(s.id) is None


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgresql://u@h/db", "postgresql+psycopg://u@h/db"),
        ("postgres://u@h/db", "postgresql+psycopg://u@h/db"),
        ("postgresql+psycopg://u@h/db", "postgresql+psycopg://u@h/db"),
        ("sqlite:///data/x.db", "sqlite:///data/x.db"),
    ],
)
def test_urls_are_taken_as_people_write_them(given, expected):
    assert normalize_url(given) == expected


def test_unsupported_url_is_a_clear_error_without_the_password():
    from plantcast.core.errors import InputError

    with pytest.raises(InputError, match="unsupported database URL") as info:
        normalize_url("mysql://user:secret@host/db")
    assert "secret" not in str(info.value)


def test_settings_read_the_environment(monkeypatch):
    from plantcast.core.config import load_settings

    monkeypatch.delenv("PLANTCAST_DATABASE_URL", raising=False)
    monkeypatch.setenv("DATABASE_URL", "postgresql://a@b/c")
    assert load_settings().database_url == "postgresql://a@b/c"
    monkeypatch.setenv("PLANTCAST_DATABASE_URL", "sqlite:///x.db")
    assert load_settings().database_url == "sqlite:///x.db"
    assert load_settings(database_url="sqlite:///y.db").database_url == "sqlite:///y.db"


def test_a_transaction_commits_whole_or_not_at_all(store):
    """The unit of work: calls on one ``tx`` commit together, and an error rolls all back."""
    a = _sensor(store, "tx_a")
    b = _sensor(store, "tx_b")
    idx = pd.date_range("2026-01-01", periods=3, freq="h", tz="UTC", name="ts")
    with store.transaction() as tx:
        tx.write_readings(a.id, pd.Series([1.0, 2.0, 3.0], idx))
        tx.write_readings(b.id, pd.Series([4.0, 5.0, 6.0], idx))
    assert store.count_readings(a.id) == store.count_readings(b.id) == 3

    later = idx + pd.Timedelta(hours=3)
    with pytest.raises(RuntimeError, match="midway"), store.transaction() as tx:
        tx.write_readings(a.id, pd.Series([7.0, 8.0, 9.0], later))
        raise RuntimeError("midway")
    assert store.count_readings(a.id) == 3  # the first write of the failed unit is gone

    with store.transaction(readonly=True) as tx:
        found = tx.sensors_by_name(["tx_a", "tx_b", "missing"])
        last = tx.edge_readings([(a.id, None), (b.id, None)], last=True)
    assert sorted(found) == ["tx_a", "tx_b"]
    assert {sid: float(v) for sid, (_, v) in last.items()} == {a.id: 3.0, b.id: 6.0}


def test_edge_readings_seek_the_reading_each_side_of_each_sensors_bound(store):
    """The last reading before each sensor's bound and the first at or after it (no bound:
    the sensor's last or first reading); a sensor with none there is left out."""
    a, b, c = (_sensor(store, f"edge_{k}") for k in "abc")
    idx = pd.date_range("2026-01-01", periods=48, freq="h", tz="UTC", name="ts")
    store.write_readings(a.id, pd.Series(np.arange(48.0), idx))
    store.write_readings(b.id, pd.Series(100.0 + np.arange(48.0), idx + pd.Timedelta("30min")))
    mid = idx[10]
    with store.transaction(readonly=True) as tx:
        before = tx.edge_readings([(a.id, mid), (b.id, mid), (c.id, None)], last=True)
        after = tx.edge_readings([(a.id, mid), (b.id, None), (c.id, mid)], last=False)
        latest = tx.edge_readings([(a.id, None), (b.id, idx[0])], last=True)
    assert before == {a.id: (idx[9], 9.0), b.id: (idx[9] + pd.Timedelta("30min"), 109.0)}
    assert after == {a.id: (mid, 10.0), b.id: (idx[0] + pd.Timedelta("30min"), 100.0)}
    assert latest == {a.id: (idx[-1], 47.0)}  # b has nothing before its first reading
