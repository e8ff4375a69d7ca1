"""Multi-sensor batched writes on both engines, and a streamer that writes once per tick."""

from __future__ import annotations

import uuid

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import event

from plantcast.core.errors import InputError, PlantcastError
from plantcast.core.timeutil import format_duration
from plantcast.core.types import Source
from plantcast.ingest.stream import Streamer
from plantcast.store import Store, Transaction

START = pd.Timestamp("2026-01-01", tz="UTC")
STEP = pd.Timedelta("30min")


def _sensors(store: Store, n: int, prefix: str = "b") -> list[int]:
    return [
        store.ensure_sensor(f"{prefix}{i}", source=Source.SIMULATED, interval=STEP).id
        for i in range(n)
    ]


def _frame(ids: list[int], periods: int, start=START, offset: float = 0.0) -> pd.DataFrame:
    idx = pd.date_range(start, periods=periods, freq=STEP, tz="UTC")
    parts = [
        pd.DataFrame({"sensor_id": sid, "ts": idx, "value": np.arange(periods) + 1000.0 * k})
        for k, sid in enumerate(ids)
    ]
    frame = pd.concat(parts, ignore_index=True)
    frame["value"] += offset
    return frame.sample(frac=1.0, random_state=1)  # any order in


def _stored(store: Store, ids: list[int]) -> pd.DataFrame:
    end = START + pd.Timedelta(days=3650)
    parts = []
    for sid in ids:
        s = store.read_series(sid, START - pd.Timedelta(days=3650), end)
        parts.append(pd.DataFrame({"sensor_id": sid, "ts": s.index, "value": s.to_numpy()}))
    return pd.concat(parts, ignore_index=True)


def _statements(store: Store) -> list[str]:
    seen: list[str] = []
    event.listen(store.engine, "before_cursor_execute", lambda *a: seen.append(a[2]))
    return seen


def _expected(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.sort_values(["sensor_id", "ts"]).reset_index(drop=True)


@settings(
    max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_multi_sensor_round_trip_keeps_the_last_of_duplicates(store, data):
    ids = _sensors(store, 3, prefix=f"h{uuid.uuid4().hex}_")  # fresh per example
    n = data.draw(st.integers(1, 60))
    us = data.draw(
        st.lists(st.integers(-(10**15), 4 * 10**15), min_size=n, max_size=n).map(np.array)
    )
    sid = np.array(data.draw(st.lists(st.sampled_from(ids), min_size=n, max_size=n)))
    floats = st.floats(allow_nan=False, allow_infinity=False, width=64)
    values = np.array(data.draw(st.lists(floats, min_size=n, max_size=n)), dtype=np.float64)
    assert store.write_batch({"sensor_id": sid, "ts": us, "value": values}) == len(
        set(zip(sid.tolist(), us.tolist(), strict=True))
    )
    frame = pd.DataFrame({"sensor_id": sid, "ts": us, "value": values})
    want = frame.drop_duplicates(["sensor_id", "ts"], keep="last")
    for s in ids:
        mine = want[want.sensor_id == s].sort_values("ts")
        back = store.read_series(s, pd.Timestamp(-(10**15) * 1000, tz="UTC"), "2200-01-01")
        assert (back.index.asi8 // 1000).tolist() == mine.ts.tolist()
        np.testing.assert_array_equal(back.to_numpy(), mine.value.to_numpy())


def test_new_rows_take_the_direct_path_and_replays_the_merge(store):
    ids = _sensors(store, 5)
    seen = _statements(store)
    batch = _frame(ids, 100)
    assert store.write_batch(batch) == 500
    merged_first = any("readings_batch_stage" in s for s in seen)
    seen.clear()
    assert store.write_batch(batch) == 500  # replay: adds nothing
    merged_replay = any("readings_batch_stage" in s for s in seen)
    if store.dialect == "postgresql":
        assert (merged_first, merged_replay) == (False, True)
    pd.testing.assert_frame_equal(_stored(store, ids), _expected(batch), check_dtype=False)
    # A replay with new values updates them (upsert: the last write wins).
    store.write_batch(_frame(ids, 100, offset=0.5))
    pd.testing.assert_frame_equal(
        _stored(store, ids), _expected(_frame(ids, 100, offset=0.5)), check_dtype=False
    )


def test_a_batch_mixing_new_and_stored_rows(store):
    ids = _sensors(store, 4)
    store.write_batch(_frame(ids[:2], 50))
    mixed = pd.concat([_frame(ids[:2], 80, offset=2.0), _frame(ids[2:], 80)])
    assert store.write_batch(mixed) == 320
    want = pd.concat([_frame(ids[:2], 80, offset=2.0), _frame(ids[2:], 80)])
    pd.testing.assert_frame_equal(_stored(store, ids), _expected(want), check_dtype=False)
    assert sum(store.count_readings(s) for s in ids) == 320


def test_single_sensor_writes_go_through_the_batch(store):
    (sid,) = _sensors(store, 1)
    series = pd.Series([1.0, 2.0], index=pd.date_range(START, periods=2, freq=STEP, tz="UTC"))
    assert store.write_readings(sid, series) == 2
    assert store.write_readings(sid, series + 1) == 2
    assert store.read_series(sid, START, START + pd.Timedelta("1d")).tolist() == [2.0, 3.0]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"value": [1.0, float("nan")]}, r"not finite.*row 1"),
        ({"value": [1.0, float("inf")]}, r"not finite"),
        ({"sensor_id": "unknown"}, r"1 of the batch's 2 sensor id\(s\) do not exist"),
        ({"ts": ["2026-01-01", "not a time"]}, r"cannot read ts"),
    ],
)
def test_bad_input_is_a_clear_error_and_writes_nothing(store, change, message):
    (sid,) = _sensors(store, 1)
    batch = {
        "sensor_id": [sid, sid],
        "ts": pd.date_range(START, periods=2, freq=STEP, tz="UTC"),
        "value": [1.0, 2.0],
    }
    if change.get("sensor_id") == "unknown":
        change = {"sensor_id": [sid, sid + 10_000]}
    batch.update(change)
    with pytest.raises(InputError, match=message) as info:
        store.write_batch(batch)
    assert isinstance(info.value, PlantcastError)
    assert store.count_readings(sid) == 0


def test_a_failed_batch_in_a_transaction_leaves_nothing(store):
    ids = _sensors(store, 2)
    from plantcast.store.readings import write_batch

    with pytest.raises(InputError), store.write() as conn:
        write_batch(conn, _frame(ids, 10))
        write_batch(conn, {"sensor_id": [ids[0]], "ts": [START], "value": [float("nan")]})
    assert sum(store.count_readings(s) for s in ids) == 0


def test_streamer_over_200_sensors_writes_once_per_tick(store, monkeypatch):
    names = [f"lane{i}" for i in range(200)]
    writes: list[int] = []
    real = Transaction.write_batch_arrays

    def counting(tx, sid, us, values):
        writes.append(len(set(sid.tolist())))
        return real(tx, sid, us, values)

    monkeypatch.setattr(Transaction, "write_batch_arrays", counting)
    stats = Streamer(store, names, tick=0, step=STEP, count=3).run()
    assert stats.written == 600
    assert writes == [200, 200, 200]
    ids = [store.get_sensor(n).id for n in names]
    assert all(store.count_readings(s) == 3 for s in ids)
    # The next run resumes every lane after its last reading (clocks were written in batch).
    Streamer(store, names, tick=0, step=STEP, count=1).run()
    assert all(store.count_readings(s) == 4 for s in ids)


def test_streamer_reads_events_of_all_lanes_in_one_query(store, monkeypatch):
    names = [f"ev{i}" for i in range(20)]
    calls: list[int] = []
    real = Store.events_of_sensors

    def counting(self, sensor_ids, start, end):
        calls.append(len(list(sensor_ids)))
        return real(self, sensor_ids, start, end)

    monkeypatch.setattr(Store, "events_of_sensors", counting)
    monkeypatch.setattr(Store, "events_overlapping", lambda *a: pytest.fail("per-sensor query"))
    Streamer(store, names, tick=0, step=STEP, count=4).run()
    assert calls == [20, 20, 20, 20]


@pytest.mark.parametrize(
    ("text", "shown"), [("0.05s", "0.05s"), ("2s", "2s"), ("90s", "1min30s"), ("0s", "0s")]
)
def test_sub_second_ticks_print_as_such(text, shown):
    assert format_duration(pd.Timedelta(text)) == shown


@given(st.lists(st.integers(-(2**62) // 1_000, 2**62 // 1_000), max_size=20))
def test_epoch_microseconds_become_the_utc_index_pandas_makes(us):
    from plantcast.core.timeutil import from_epoch_us

    got = from_epoch_us(us)
    want = pd.DatetimeIndex(pd.to_datetime(np.array(us, dtype=np.int64), unit="us", utc=True))
    assert got.dtype == pd.DatetimeTZDtype("ns", "UTC")
    assert got.equals(want.as_unit("ns"))
