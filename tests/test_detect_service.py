"""The detection service on real stores: it never stalls, scores imported history, and says why."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import plantcast.services.detection as detection
from plantcast.cli.main import cli
from plantcast.core.types import Sensor, Source
from plantcast.services.detection import DETECTORS, SensorPlan, detect_sensor, score_chunk
from plantcast.signals import SignalModel, generate_readings
from plantcast.store import alerts as alert_rows

START = pd.Timestamp("2025-03-01", tz="UTC")


def _marks(store, sensor_id):
    with store.read() as conn:
        return {n: alert_rows.get_scored_until(conn, sensor_id, n) for n in DETECTORS}


def _history(seed: int, interval: str, n: int, holes: float) -> pd.Series:
    s = generate_readings(SignalModel(seed=seed), START, periods=n, interval=interval)
    keep = np.random.default_rng(seed).random(n) >= holes
    keep[0] = True
    return s[keep]


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    seed=st.integers(0, 10_000),
    interval=st.sampled_from(["5min", "30min", "1h"]),
    first_days=st.floats(0.05, 4.0),
    holes=st.sampled_from([0.0, 0.1, 0.4]),
    batches=st.lists(st.integers(1, 150), min_size=1, max_size=4),
)
def test_resume_point_always_advances_and_no_run_fails_for_lack_of_history(
    store, seed, interval, first_days, holes, batches
):
    """Random histories (young, gappy, any step) arriving in random chunks: every run scores
    up to the latest reading, whatever history each detector had to learn from."""
    step = pd.Timedelta(interval)
    n_first = max(1, int(pd.Timedelta(days=first_days) / step))
    series = _history(seed, interval, n_first + sum(batches), holes)
    name = f"s{seed}_{interval}_{len(series)}_{len(batches)}"
    sensor = store.ensure_sensor(name, source=Source.IMPORTED, interval=step)
    cuts = np.cumsum([n_first, *batches])
    lo = START
    for cut in cuts:
        hi = START + int(cut) * step
        part = series[(series.index >= lo) & (series.index < hi)]
        lo = hi
        if part.empty:
            continue
        store.write_readings(sensor.id, part)
        result = detect_sensor(store, name)  # must not raise
        last = store.last_timestamp(sensor.id)
        assert set(_marks(store, sensor.id).values()) == {last}
        assert result.scored_until == last


def test_the_issue_reproduction_does_not_stall(store):
    """backfill 1 day, stream 47, detect, stream 10, detect: the second run scores too."""
    step = pd.Timedelta("30min")
    full = generate_readings(SignalModel(seed=1), START, periods=48 + 47 + 10, interval=step)
    sensor = store.ensure_sensor("p", source=Source.IMPORTED, interval=step)
    store.write_readings(sensor.id, full.iloc[:95])
    first = detect_sensor(store, "p")
    assert first.scored == 95
    store.write_readings(sensor.id, full.iloc[95:])
    second = detect_sensor(store, "p")
    assert second.scored == 10
    # the pattern detectors need a few days (4 windows of a cycle): they say so, the rest fit
    assert set(second.skipped) <= {"drift", "profile_change"}
    assert all("needs at least" in why for why in second.skipped.values())
    assert set(_marks(store, sensor.id).values()) == {full.index[-1]}


def test_young_sensor_is_skipped_with_a_reason_and_still_advances(store):
    step = pd.Timedelta("30min")
    young = generate_readings(SignalModel(seed=2), START, periods=10, interval=step)
    sensor = store.ensure_sensor("young", source=Source.IMPORTED, interval=step)
    store.write_readings(sensor.id, young)
    result = detect_sensor(store, "young")
    assert {"residual_z", "level_shift"} <= set(result.skipped)
    assert "need" in result.skipped["residual_z"]
    assert set(_marks(store, sensor.id).values()) == {young.index[-1]}


def test_weekly_sensor_is_scored_and_says_what_its_detectors_need(store):
    """20,000 weekly intervals overflow a Timedelta: the chunk span must not be computed so."""
    step = pd.Timedelta("7d")
    weekly = generate_readings(SignalModel(seed=4), START, periods=30, interval=step)
    sensor = store.ensure_sensor("weekly", source=Source.IMPORTED, interval=step)
    store.write_readings(sensor.id, weekly)
    result = detect_sensor(store, "weekly")
    # a weekly chunk holds one reading: the first nine had too few before them for any
    # detector (stuck and dropout need ten), so they are not counted as scored
    assert result.scored == 30 - 9
    assert "need" in result.skipped["residual_z"]
    assert set(_marks(store, sensor.id).values()) == {weekly.index[-1]}


def test_gappy_week_of_5min_readings_is_enough(store):
    """Seven days at 5 min with a tenth of the readings missing: time covered is what counts."""
    gappy = _history(4, "5min", 7 * 288, 0.1)
    sensor = store.ensure_sensor("gappy", source=Source.IMPORTED, interval=pd.Timedelta("5min"))
    store.write_readings(sensor.id, gappy)
    assert detect_sensor(store, "gappy").skipped == {}


def test_first_run_scores_all_imported_history_in_chunks(store, monkeypatch):
    """Months of history: one detect scores every reading, chunk by chunk, and finds the
    level shift near the start of it (not only the last week)."""
    monkeypatch.setattr(detection, "CHUNK_READINGS", 1_000)
    step = pd.Timedelta("30min")
    s = generate_readings(SignalModel(seed=5), START, periods=60 * 48, interval=step)
    values = s.to_numpy().copy()
    shift_at = 20 * 48
    values[shift_at : shift_at + 24] += 15.0
    s[:] = values
    sensor = store.ensure_sensor("hist", source=Source.IMPORTED, interval=step)
    store.write_readings(sensor.id, s)
    calls = []
    result = detect_sensor(store, "hist", on_progress=lambda d, t, _: calls.append((d, t)))
    assert result.scored == len(s)
    assert calls[-1][0] == calls[-1][1] >= 3  # several chunks, progress reaches the end
    alerts = store.list_alerts(sensor_id=sensor.id)
    shift = s.index[shift_at]
    assert any(abs(a.ts - shift) <= 3 * step for a in alerts if "level_shift" in a.detectors)
    assert detect_sensor(store, "hist").scored == 0  # nothing new: nothing scored


def test_since_rescoring_adds_no_duplicates(store):
    step = pd.Timedelta("30min")
    s = generate_readings(SignalModel(seed=6), START, periods=20 * 48, interval=step)
    values = s.to_numpy().copy()
    values[15 * 48 : 15 * 48 + 12] -= 15.0
    s[:] = values
    sensor = store.ensure_sensor("again", source=Source.IMPORTED, interval=step)
    store.write_readings(sensor.id, s)
    detect_sensor(store, "again")
    before = {(a.detector, a.ts) for a in store.list_alerts(sensor_id=sensor.id)}
    assert before
    again = detect_sensor(store, "again", since=s.index[14 * 48])
    assert again.opened == 0
    assert {(a.detector, a.ts) for a in store.list_alerts(sensor_id=sensor.id)} == before


def test_cli_detect_reports_each_sensor_and_goes_on(store, db_url):
    step = pd.Timedelta("30min")
    ok = generate_readings(SignalModel(seed=7), START, periods=5 * 48, interval=step)
    store.ensure_sensor("ok", source=Source.IMPORTED, interval=step)
    store.write_readings(store.get_sensor("ok").id, ok)
    store.ensure_sensor("tiny", source=Source.IMPORTED, interval=step)
    store.write_readings(store.get_sensor("tiny").id, ok.iloc[:5])
    result = CliRunner().invoke(cli, ["detect", "--database-url", db_url])
    assert result.exit_code == 0, result.output
    assert "ok: scored 240 readings" in result.output
    assert "tiny: scored 0 readings" in result.output  # no detector could fit 5 readings
    assert "tiny: residual_z skipped: ResidualZDetector needs at least 48" in result.output
    explained = CliRunner().invoke(cli, ["detect", "--database-url", db_url, "--explain"])
    assert explained.exit_code == 0 and "threshold" in explained.output
    assert "trained on" in explained.output  # each sensor's own window, not a fixed 28 days
    assert "last 28 days" not in explained.output


def test_alerts_say_how_many_were_left_out(store, db_url):
    sid = store.ensure_sensor("many", source=Source.IMPORTED, interval=pd.Timedelta("1h")).id
    with store.write() as conn:
        for i in range(7):
            alert_rows.insert_alert(
                conn,
                sid,
                detector="residual_z",
                ts=START + pd.Timedelta(hours=i),
                score=5.0,
                value=1.0,
                ends_at=START + pd.Timedelta(hours=i),
            )
    table = CliRunner().invoke(cli, ["alerts", "--database-url", db_url, "--limit", "3"])
    assert "showing 3 of 7 alerts" in table.output
    raw = CliRunner().invoke(
        cli, ["alerts", "--database-url", db_url, "--limit", "3", "--format", "json"]
    )
    import json

    payload = json.loads(raw.output)
    assert (payload["total"], payload["shown"], len(payload["alerts"])) == (7, 3, 3)


def test_a_month_long_gap_in_imported_history(store):
    """Weeks with no readings at all are skipped, not a crash; scoring resumes after them."""
    step = pd.Timedelta("1h")
    s = generate_readings(SignalModel(seed=8), START, periods=70 * 24, interval=step)
    s = s[(s.index < START + pd.Timedelta("20d")) | (s.index >= START + pd.Timedelta("55d"))]
    sensor = store.ensure_sensor("gap", source=Source.IMPORTED, interval=step)
    store.write_readings(sensor.id, s)
    result = detect_sensor(store, "gap")
    assert result.scored == len(s)
    assert set(_marks(store, sensor.id).values()) == {s.index[-1]}
    dropouts = [a for a in store.list_alerts(sensor_id=sensor.id) if "dropout" in a.detectors]
    assert any(a.ts <= START + pd.Timedelta("20d") + step and a.ends_at for a in dropouts)


def test_young_sensor_with_routine_gaps_alerts_on_the_long_one_only(store):
    """A week at 5 min missing a tenth of its readings at random, and one 25-hour outage: the
    routine hiccups are what this sensor does; the outage is the alert."""
    step = pd.Timedelta("5min")
    s = generate_readings(SignalModel(seed=9), START, periods=7 * 288, interval=step)
    keep = np.random.default_rng(9).random(len(s)) >= 0.1
    keep[0] = keep[-1] = True
    keep[1000:1300] = False
    s = s[keep]
    sensor = store.ensure_sensor("hiccups", source=Source.IMPORTED, interval=step)
    store.write_readings(sensor.id, s)
    detect_sensor(store, "hiccups")
    dropouts = [a for a in store.list_alerts(sensor_id=sensor.id) if "dropout" in a.detectors]
    assert len(dropouts) == 1
    assert dropouts[0].ts == START + 1000 * step


def test_an_anomaly_in_the_training_window_does_not_blind_the_next_chunk():
    """Last week's noise burst is history, not normal: the week after still alerts on a 6σ
    spike (fitted on the burst as if it were noise, the threshold rose to about 9σ)."""
    step = pd.Timedelta("30min")
    model = SignalModel(seed=11, noise=2.0 / np.sqrt(3), noise_kind="gaussian")
    s = generate_readings(model, START, periods=21 * 48, interval=step)
    values = s.to_numpy().copy()
    burst = slice(10 * 48, 10 * 48 + 12)
    values[burst] += np.random.default_rng(0).normal(0.0, 10 * model.noise_std, 12)
    values[17 * 48 + 7] += 6 * model.noise_std
    s[:] = values
    sensor = Sensor(1, "s", "", "", Source.IMPORTED, step, START)
    a, b = START + pd.Timedelta("14d"), s.index[-1]
    plan = SensorPlan(sensor, ("24h",), ("residual_z",), a, b, ((a, b),))
    found = score_chunk(plan, s, a, b).found["residual_z"]
    assert s.index[17 * 48 + 7] in set(found["start"])


@pytest.mark.parametrize(
    "second",
    [
        pytest.param(12, id="6h-later"),  # two spikes 6 h apart
        pytest.param(40, id="same-hour-next-day"),  # the same phase of the cycle, 20 h later
    ],
)
def test_episodes_within_a_day_of_an_alert_are_one_incident(store, second):
    """Two showings of a fault within a day (6 h apart, or at the same phase of a daily cycle
    on two days running, normal between) are one incident: one alert ending at the second;
    a third three days after the first is another."""
    step = pd.Timedelta("30min")
    model = SignalModel(seed=12, noise=0.5, noise_kind="gaussian")
    s = generate_readings(model, START, periods=28 * 48, interval=step)
    at = [21 * 48 + 10, 21 * 48 + 10 + second, 24 * 48 + 10]
    for i in at:
        s.iloc[i] += 20 * model.noise_std
    sensor = store.ensure_sensor("spiky", source=Source.IMPORTED, interval=step)
    store.write_readings(sensor.id, s)
    detect_sensor(store, "spiky", detectors=("residual_z",))
    alerts = sorted(store.list_alerts(sensor_id=sensor.id), key=lambda a: a.ts)
    late = [(a.ts, a.ends_at) for a in alerts if a.ts >= START + pd.Timedelta("21d")]
    assert late == [(s.index[at[0]], s.index[at[1]]), (s.index[at[2]], s.index[at[2]])]


def test_follow_waits_only_what_is_left_of_its_pace():
    """``detect --follow --every 5s`` starts a pass every 5 s: after a 1 s pass it waits
    about 4 s, after a pass longer than 5 s not at all (each second waited is lag)."""
    import time

    from plantcast.cli.anomalies import _rest

    every = pd.Timedelta("5s")
    assert 3.5 < _rest(every, time.monotonic() - 1.0) <= 4.0
    assert _rest(every, time.monotonic() - 7.0) == 0.0


def test_follow_watches_a_sensor_created_after_it_started(store, db_url):
    """``detect --follow`` without --sensor asks for the sensors at each pass: a tag a
    connector creates after detection started is scored too (it was never watched)."""
    import os
    import subprocess
    import sys
    import time

    def noise(n: int, seed: int) -> pd.Series:
        idx = pd.date_range("2026-01-01", periods=n, freq="1min", tz="UTC", name="ts")
        return pd.Series(10.0 + np.random.default_rng(seed).normal(0, 1, n), index=idx)

    def scored(sensor_id: int, within: float = 90.0) -> bool:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            with store.transaction(readonly=True) as tx:
                if tx.scored_until_many([sensor_id]):
                    return True
            time.sleep(0.5)
        return False

    first = store.ensure_sensor("first", source=Source.IMPORTED, interval=pd.Timedelta("1min"))
    store.write_readings(first.id, noise(300, 1))
    env = {**os.environ, "PLANTCAST_DATABASE_URL": db_url}
    proc = subprocess.Popen(
        [sys.executable, "-m", "plantcast", "detect", "--follow", "--every", "1s"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert scored(first.id), "the first sensor was never scored"
        later = store.ensure_sensor("later", source=Source.IMPORTED, interval=pd.Timedelta("1min"))
        store.write_readings(later.id, noise(300, 2))
        assert scored(later.id), "a sensor created after detect started was never scored"
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=30)
    assert "Traceback" not in err


def test_cli_detect_sums_up_a_detector_skipped_on_many_sensors(store, db_url):
    """Eight sensors too young for any detector: one line per detector with how many and an
    example, not a line per sensor and detector; with few sensors, each is named."""
    step = pd.Timedelta("30min")
    s = generate_readings(SignalModel(seed=7), START, periods=5, interval=step)
    for k in range(8):
        sid = store.ensure_sensor(f"young_{k}", source=Source.IMPORTED, interval=step).id
        store.write_readings(sid, s)
    result = CliRunner().invoke(cli, ["detect", "--database-url", db_url])
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "residual_z skipped on 8 sensors (e.g. young_0: ResidualZDetector needs" in text
    assert "young_3: residual_z skipped" not in text
    sid = store.ensure_sensor("alone", source=Source.IMPORTED, interval=step).id
    store.write_readings(sid, s)
    few = CliRunner().invoke(cli, ["detect", "--database-url", db_url, "--sensor", "alone"])
    assert "alone: residual_z skipped" in " ".join(few.output.split())
