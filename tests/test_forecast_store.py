"""Forecasts kept ready: a refresh stores every due sensor's forecast, auto keeps its choice for a
while, readers see the stored forecast and whether it is stale (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from plantcast.cli.main import cli
from plantcast.core.errors import InputError, NotFound
from plantcast.core.types import Source
from plantcast.ingest.backfill import backfill
from plantcast.services.forecast_store import (
    list_stored,
    oldest_age,
    refresh_forecasts,
    stored_forecast,
)

END = pd.Timestamp("2026-03-01", tz="UTC")
STEP = pd.Timedelta("30min")
NOW = pd.Timestamp("2026-03-01 00:10", tz="UTC")
SENSORS = ("reservoir_pressure", "pump_flow")
FAST = {"horizon": "3h", "max_age": "1h", "windows": 3}  # small fits: 2 cores are shared


@pytest.fixture
def history(store):
    for name in SENSORS:
        backfill(store, name, days=4, interval=STEP, end=END)
    return store


def test_refresh_stores_each_sensor_forecast_with_bands_and_scores(history):
    summary = refresh_forecasts(history, model="fourier_linear", now=NOW, **FAST)
    assert summary.as_dict() == {
        "sensors": 2,
        "refitted": 2,
        "reselected": 0,
        "first": 0,
        "not_due": 0,
        "failed": {},
        "seconds": summary.as_dict()["seconds"],
        "on_dask": False,
        "oldest_age_s": 0.0,
        "stopped": 0,
    }
    view = stored_forecast(history, "pump_flow", now=NOW)
    frame = view.frame()
    assert len(frame) == 6 and frame.index[0] == END + STEP  # 3 h of 30 min steps
    assert (frame["lower_95"] < frame["lower_80"]).all() and (
        frame["lower_80"] < frame["mean"]
    ).all()
    assert view.row.model == view.row.chosen == "fourier_linear"
    assert view.row.made_at == NOW and view.row.trained_until == END
    assert {"mae", "mase", "coverage_80"} <= set(view.scores)
    assert not view.stale and view.age == pd.Timedelta(0)
    assert [v.row.sensor for v in list_stored(history, now=NOW)] == sorted(SENSORS)


def test_max_age_refits_at_most_that_often_and_a_new_model_at_once(history):
    refresh_forecasts(history, model="seasonal_naive", now=NOW, **FAST)
    soon = refresh_forecasts(
        history, model="seasonal_naive", now=NOW + pd.Timedelta("59min"), **FAST
    )
    assert soon.not_due == 2 and soon.refitted == []
    later = NOW + pd.Timedelta("1h")
    due = refresh_forecasts(history, ["pump_flow"], model="seasonal_naive", now=later, **FAST)
    assert due.refitted == ["pump_flow"] and due.sensors == 1
    assert stored_forecast(history, "pump_flow", now=later).row.made_at == later
    assert stored_forecast(history, "reservoir_pressure", now=later).row.made_at == NOW
    other = refresh_forecasts(history, model="fourier_linear", now=later, **FAST)
    assert sorted(other.refitted) == sorted(SENSORS)  # another model: not the stored one
    longer = refresh_forecasts(
        history, model="fourier_linear", now=later, **{**FAST, "horizon": "6h"}
    )
    assert len(longer.refitted) == 2
    assert len(stored_forecast(history, "pump_flow", now=later).frame()) == 12


def test_stale_forecasts_say_so_and_the_oldest_age(history):
    refresh_forecasts(history, model="seasonal_naive", now=NOW, **FAST)
    later = NOW + pd.Timedelta("3h")
    view = stored_forecast(history, "pump_flow", now=later)
    assert view.stale and view.age == pd.Timedelta("3h")
    assert view.note().startswith("STALE") and "older than 2h" in view.note()
    assert not stored_forecast(history, "pump_flow", now=later, stale_after="4h").stale
    assert oldest_age(history, now=later) == pd.Timedelta("3h")
    refresh_forecasts(history, ["pump_flow"], model="seasonal_naive", now=later, **FAST)
    assert oldest_age(history, now=later) == pd.Timedelta("3h")  # reservoir_pressure's
    refresh_forecasts(history, model="seasonal_naive", now=later, **FAST)
    assert oldest_age(history, now=later) == pd.Timedelta(0)


def test_auto_keeps_its_choice_for_a_number_of_refits_or_a_time(history):
    def refresh(at, **kw):
        return refresh_forecasts(
            history, ["pump_flow"], model="auto", now=at, reselect_refits=2, **FAST, **kw
        )

    first = refresh(NOW)
    assert first.reselected == ["pump_flow"]
    chosen = stored_forecast(history, "pump_flow", now=NOW)
    assert chosen.row.chosen_at == NOW and chosen.row.refits == 0
    assert chosen.choice is not None and len(chosen.choice.scores) > 2  # every candidate's MASE
    hour = pd.Timedelta("1h")
    for n in (1, 2):  # refits that keep the choice
        again = refresh(NOW + n * hour)
        assert again.refitted == ["pump_flow"] and again.reselected == []
        kept = stored_forecast(history, "pump_flow", now=NOW + n * hour)
        assert kept.row.chosen == chosen.row.chosen and kept.row.chosen_at == NOW
        assert kept.row.refits == n and kept.row.made_at == NOW + n * hour
    assert refresh(NOW + 3 * hour).reselected == ["pump_flow"]  # after reselect_refits refits
    assert stored_forecast(history, "pump_flow", now=NOW).row.chosen_at == NOW + 3 * hour
    assert refresh(NOW + 4 * hour, reselect_every="30min").reselected == ["pump_flow"]  # by age


def test_the_jobs_first_forecast_is_quick_and_auto_chooses_at_the_next_refresh(history):
    """With ``first_model`` (the scheduled job's), a sensor without a forecast gets one of that
    quick model at once, marked as not chosen; the next refresh finds it due however young
    and lets ``auto`` choose; a refresh without it (the CLI's) chooses at once."""
    kw = {"model": "auto", "first_model": "fourier_linear", **FAST}
    first = refresh_forecasts(history, ["pump_flow"], now=NOW, **kw)
    assert first.first == ["pump_flow"] == first.refitted and first.reselected == []
    view = stored_forecast(history, "pump_flow", now=NOW)
    assert (view.row.model, view.row.chosen, view.row.chosen_at) == ("auto", "fourier_linear", None)
    assert view.first and "lower_80" in view.frame()
    assert view.note().endswith("(a first forecast: auto chooses at the next scheduled refresh)")
    minute = NOW + pd.Timedelta("1min")
    chosen = refresh_forecasts(history, ["pump_flow"], now=minute, **kw)
    assert chosen.reselected == ["pump_flow"] and chosen.first == []  # a minute old, yet due
    view = stored_forecast(history, "pump_flow", now=minute)
    assert view.row.chosen_at == minute and not view.first and "first" not in view.note()
    later = refresh_forecasts(history, ["pump_flow"], now=minute + pd.Timedelta("2min"), **kw)
    assert later.refitted == [] and later.not_due == 1  # chosen: due again after max_age
    at_once = refresh_forecasts(history, ["reservoir_pressure"], model="auto", now=NOW, **FAST)
    assert at_once.reselected == ["reservoir_pressure"] and at_once.first == []
    with pytest.raises(InputError, match="unknown first model 'nope'"):
        refresh_forecasts(history, now=NOW, **{**kw, "first_model": "nope"})


def test_one_sensors_failure_is_its_own(history):
    history.ensure_sensor("empty_tag", source=Source.IMPORTED, interval=STEP)
    summary = refresh_forecasts(
        history, ["pump_flow", "empty_tag", "nope"], model="seasonal_naive", now=NOW, **FAST
    )
    assert summary.refitted == ["pump_flow"]
    assert set(summary.failed) == {"empty_tag", "nope"}
    assert "no readings" in summary.failed["empty_tag"]
    with pytest.raises(NotFound, match="no stored forecast"):
        stored_forecast(history, "empty_tag")
    with pytest.raises(NotFound):
        stored_forecast(history, "nope")


def test_a_horizon_shorter_than_the_interval_is_that_sensors_failure(history):
    summary = refresh_forecasts(
        history, model="seasonal_naive", now=NOW, **{**FAST, "horizon": "10min"}
    )
    assert summary.refitted == [] and "shorter than one reading interval" in str(summary.failed)


def test_api_serves_the_stored_forecast_and_says_when_stale(history):
    from plantcast.api import create_app
    from plantcast.services.apikeys import create_key

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient

    client = TestClient(create_app(store=history))
    auth = {"Authorization": f"Bearer {create_key(history, 'reader', 'read')[1]}"}
    path = "/v1/sensors/pump_flow/forecast/stored"
    missing = client.get(path, headers=auth)
    assert missing.status_code == 404 and "forecast refresh" in missing.json()["detail"]
    assert client.get("/v1/sensors/nope/forecast/stored", headers=auth).status_code == 404
    assert client.get(path).status_code == 401
    made = pd.Timestamp.now(tz="UTC").floor("s") - pd.Timedelta("3h")
    refresh_forecasts(history, ["pump_flow"], model="fourier_linear", now=made, **FAST)
    body = client.get(path, headers=auth).json()
    assert body["sensor"] == "pump_flow" and body["chosen"] == "fourier_linear"
    assert body["stale"] is True and body["age_s"] >= 3 * 3600 and body["stale_after_s"] == 7200
    assert len(body["forecast"]) == 6 and body["forecast"][0]["ts"] == (END + STEP).isoformat()
    assert body["horizon_steps"] == 6 and body["step_s"] == STEP.total_seconds()
    assert {"mean", "lower_80", "upper_95"} <= set(body["forecast"][0])
    assert "mase" in body["backtest"]
    fresh = client.get(path, params={"stale_after": "1d"}, headers=auth).json()
    assert fresh["stale"] is False
    bad = client.get(path, params={"stale_after": "soon"}, headers=auth)
    assert bad.status_code == 422 and bad.json()["field"] == "stale_after"


def test_cli_refresh_show_list_and_on_demand_forecast_still_works(history, db_url):
    runner = CliRunner()
    db = ["--database-url", db_url]
    refresh = runner.invoke(
        cli,
        [
            "forecast",
            "refresh",
            *db,
            "--model",
            "seasonal_naive",
            "--horizon",
            "3h",
            "--windows",
            "3",
            "--format",
            "json",
        ],
    )
    assert refresh.exit_code == 0, refresh.output
    assert json.loads(refresh.output)["refitted"] == 2
    again = runner.invoke(
        cli,
        [
            "forecast",
            "refresh",
            *db,
            "--model",
            "seasonal_naive",
            "--horizon",
            "3h",
            "--windows",
            "3",
        ],
    )
    assert again.exit_code == 0 and "0 of 2 sensors refitted" in again.output
    assert "2 not due" in again.output
    shown = runner.invoke(
        cli, ["forecast", "show", *db, "--sensor", "pump_flow", "--format", "csv"]
    )
    assert shown.exit_code == 0, shown.output
    assert shown.stdout.splitlines()[0] == "ts,mean,lower_80,upper_80,lower_95,upper_95"
    assert len(shown.stdout.splitlines()) == 7 and "STALE" not in shown.output
    listed = runner.invoke(cli, ["forecast", "list", *db, "--format", "json"])
    rows = json.loads(listed.stdout)
    assert [r["sensor"] for r in rows] == sorted(SENSORS) and not rows[0]["stale"]
    assert {r["step_s"] for r in rows} == {STEP.total_seconds()}  # their own 30 min steps
    table = runner.invoke(cli, ["forecast", "list", *db])
    assert table.exit_code == 0 and "2 stored forecast(s); the oldest made" in table.output
    head, first = table.output.splitlines()[1], table.output.splitlines()[3]
    assert "┃ step " in head and "│ 30min " in first
    stale = runner.invoke(
        cli, ["forecast", "show", *db, "--sensor", "pump_flow", "--stale-after", "0s"]
    )
    assert stale.exit_code == 0 and "STALE" in stale.output
    missing = runner.invoke(cli, ["forecast", "show", *db, "--sensor", "nope"])
    assert missing.exit_code == 1 and "nope" in missing.output
    on_demand = runner.invoke(
        cli,
        [
            "forecast",
            *db,
            "--sensor",
            "pump_flow",
            "--model",
            "seasonal_naive",
            "--horizon",
            "3h",
            "--format",
            "csv",
        ],
    )
    assert on_demand.exit_code == 0, on_demand.output
    assert len(on_demand.stdout.splitlines()) == 7
    mixed = runner.invoke(cli, ["forecast", "--sensor", "pump_flow", "list", *db])
    assert mixed.exit_code == 2 and "after `forecast list`" in mixed.output


def test_the_live_refresh_shows_the_stored_forecast_without_fitting_it(history):
    from plantcast.services.forecasting import Forecasting, ForecastSpec
    from plantcast.services.live import LiveRequest, refresh

    sensor = history.get_sensor("pump_flow")
    req = LiveRequest(
        sensor,
        pd.Timedelta("1d"),
        models=("seasonal_naive", "fourier_linear"),
        spec=ForecastSpec(horizon=4),
    )
    service = Forecasting()
    before = refresh(history, service, req)
    assert before.stored is None and set(before.forecasts) == {"seasonal_naive", "fourier_linear"}
    refresh_forecasts(history, ["pump_flow"], model="seasonal_naive", now=NOW, **FAST)
    misses = service.cache.misses
    live = refresh(history, service, req)
    assert live.stored is not None and live.stored.stale  # made at NOW, months ago
    assert len(live.forecasts["seasonal_naive"].frame) == 6  # the stored 3 h, not the page's 4
    assert len(live.forecasts["fourier_linear"].frame) == 4
    assert service.cache.misses == misses  # nothing fitted: the other model's fit was cached
    none_asked = LiveRequest(sensor, pd.Timedelta("1d"), models=(), spec=ForecastSpec(horizon=4))
    assert set(refresh(history, service, none_asked).forecasts) == {"seasonal_naive"}


def test_the_page_draws_the_stored_forecast_and_warns_when_stale(sqlite_url, monkeypatch):
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    import plantcast.dashboard
    from plantcast.dashboard import state
    from plantcast.store import Store

    monkeypatch.setenv("PLANTCAST_DATABASE_URL", sqlite_url)
    with Store.open(sqlite_url) as store:
        store.init()
        backfill(store, "reservoir_pressure", days=4, interval=STEP, end=END)
        refresh_forecasts(store, model="seasonal_naive", now=NOW, **FAST)
    st.cache_resource.clear()
    try:
        at = AppTest.from_file(str(plantcast.dashboard.APP), default_timeout=60)
        at.run()  # the app opens on the plant overview: go to the sensor's page
        assert not at.exception
        at.switch_page("screens/sensor.py").run()
        assert not at.exception
        assert at.session_state["computed"]["forecast_lengths"]["seasonal_naive"] == 6
        warnings_shown = " ".join(str(w.value) for w in at.warning)
        assert "Stored forecast: STALE" in warnings_shown
    finally:
        state.forecasting().wait()
        board = state.model_board()
        board.wait(timeout=60)
        board.shutdown()
        state.store().close()
        st.cache_resource.clear()


def test_a_refresh_on_dask_stores_what_the_serial_one_does(sqlite_url):
    from datetime import timedelta

    from plantcast.store import Store

    with Store.open(sqlite_url) as store:
        store.init()
        for name in SENSORS:
            backfill(store, name, days=4, interval=STEP, end=END)
        refresh_forecasts(store, model="fourier_linear", now=NOW, **FAST)
        serial = {n: stored_forecast(store, n, now=NOW).row.points for n in SENSORS}
        seen: list[str] = []
        later = NOW + pd.Timedelta("1h")
        summary = refresh_forecasts(
            store,
            model="fourier_linear",
            now=later,
            dask=1,  # a local cluster of one worker process
            on_progress=lambda done, total, name: seen.append(name),
            **{**FAST, "max_age": timedelta(hours=1)},
        )
        assert summary.on_dask and sorted(summary.refitted) == sorted(SENSORS)
        assert sorted(seen) == sorted(SENSORS)
        for name in SENSORS:
            view = stored_forecast(store, name, now=later)
            assert view.row.made_at == later and view.row.points == serial[name]


def test_a_stop_ends_a_refresh_on_dask_keeping_the_refits_in_flight(sqlite_url):
    """Once the stop is set (here by the first result back), no more tasks are sent: those in
    flight come back and are stored, the others wait for the next run (``stopped``)."""
    import threading

    from plantcast.store import Store

    names = [f"tag{i}" for i in range(12)]
    with Store.open(sqlite_url) as store:
        store.init()
        for name in names:
            backfill(store, name, days=4, interval=STEP, end=END)
        stop = threading.Event()
        summary = refresh_forecasts(
            store,
            model="fourier_linear",
            now=NOW,
            dask=1,  # one worker: each batch waits its turn, at most three are sent ahead
            on_progress=lambda done, total, name: stop.set(),
            stop=stop,
            **FAST,
        )
        assert summary.on_dask and 0 < len(summary.refitted) < len(names)
        assert len(summary.refitted) + summary.stopped == len(names) and not summary.failed
        for name in names:  # what came back is stored; the rest is left for the next run
            if name in summary.refitted:
                assert stored_forecast(store, name, now=NOW).row.made_at == NOW
        again = refresh_forecasts(store, model="fourier_linear", now=NOW, **FAST)
        assert sorted(again.refitted) == sorted(set(names) - set(summary.refitted))


def test_the_horizon_is_capped_in_steps():
    from plantcast.services.forecast_store import MAX_STEPS, horizon_in_steps

    assert horizon_in_steps(pd.Timedelta("3h"), STEP) == 6
    assert horizon_in_steps(pd.Timedelta("24h"), pd.Timedelta("1s")) == MAX_STEPS == 1_440


def test_a_fast_sensor_is_forecast_on_a_coarser_step():
    from plantcast.services.forecast_store import forecast_grid

    second = pd.Timedelta("1s")
    assert forecast_grid(second, 600, 60) == (60, pd.Timedelta("10s"))
    assert forecast_grid(second, 1_440, 60) == (60, pd.Timedelta("24s"))
    assert forecast_grid(second, 601, 60) == (55, pd.Timedelta("11s"))  # whole readings a step
    assert forecast_grid(STEP, 6, 60) == (6, None)  # few enough: the readings as stored
    assert forecast_grid(STEP, 60, 60) == (60, None)


def test_coarse_steps_are_means_ending_at_the_last_reading():
    from plantcast.forecast.preprocess import coarsen

    index = pd.date_range("2026-03-01", periods=7, freq="1s", tz="UTC")
    series = pd.Series([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0], index=index)
    coarse = coarsen(series.drop(index[3]), pd.Timedelta("2s"))  # a gap: 4.0 is missing
    assert coarse.index[-1] == index[-1]
    assert coarse.to_dict() == {index[0]: 1.0, index[2]: 2.5, index[4]: 5.0, index[6]: 6.5}
    assert coarse.index.tz is not None


def test_a_one_second_sensors_stored_forecast_has_coarse_steps(store):
    sensor = store.ensure_sensor("fast_flow", source=Source.IMPORTED, interval=pd.Timedelta("1s"))
    index = pd.date_range(end=END, periods=3_600, freq="1s", tz="UTC", name="ts")  # an hour
    cycle = 50 + 5 * np.sin(np.arange(3_600) * 2 * np.pi / 300)  # a 5 min cycle
    store.write_readings(sensor.id, pd.Series(cycle, index=index))
    summary = refresh_forecasts(
        store, model="fourier_linear", horizon="10min", max_age="1h", windows=3, now=NOW
    )
    assert summary.refitted == ["fast_flow"]
    view = stored_forecast(store, "fast_flow", now=NOW)
    frame = view.frame()
    assert len(frame) == 60 and view.row.horizon == 60 and view.step == pd.Timedelta("10s")
    assert frame.index[0] == END + pd.Timedelta("10s")
    assert (frame.index.to_series().diff().dropna() == pd.Timedelta("10s")).all()
    assert view.row.fitted_on == 360  # the hour's 10 s means, not its 3,600 readings
    truth = 50 + 5 * np.sin(2 * np.pi * (frame.index - index[0]).total_seconds() / 300)
    means = truth.to_numpy()  # a 10 s mean lags its end point by 5 s: at most 0.53 off
    assert np.abs(frame["mean"].to_numpy() - means).max() < 1.0
    again = refresh_forecasts(
        store, model="fourier_linear", horizon="10min", max_age="1h", windows=3, now=NOW
    )
    assert again.not_due == 1  # the same grid: its stored horizon matches
    finer = refresh_forecasts(
        store,
        model="fourier_linear",
        horizon="10min",
        max_age="1h",
        windows=3,
        now=NOW,
        points=120,
    )
    assert finer.refitted == ["fast_flow"]
    assert len(stored_forecast(store, "fast_flow", now=NOW).frame()) == 120  # 5 s steps


def test_a_stop_ends_the_refresh_between_sensors_keeping_what_it_made(history):
    import threading

    stop = threading.Event()
    summary = refresh_forecasts(
        history,
        model="seasonal_naive",
        now=NOW,
        stop=stop,
        on_progress=lambda done, total, name: stop.set(),  # asked to stop after the first
        **FAST,
    )
    assert len(summary.refitted) == 1 and summary.stopped == 1
    assert [v.row.sensor for v in list_stored(history, now=NOW)] == summary.refitted
    rest = refresh_forecasts(history, model="seasonal_naive", now=NOW, **FAST)
    assert rest.not_due == 1 and len(rest.refitted) == 1 and rest.stopped == 0


def test_a_database_made_before_the_table_says_what_to_run(history, db_url):
    with history.write() as conn:
        conn.exec_driver_sql("DROP TABLE forecasts")
    with pytest.raises(NotFound, match="plantcast init"):
        stored_forecast(history, "pump_flow")
    with pytest.raises(NotFound, match="plantcast init"):
        list_stored(history)
    done = CliRunner().invoke(
        cli,
        [
            "forecast",
            "refresh",
            "--database-url",
            db_url,
            "--sensor",
            "pump_flow",
            "--model",
            "seasonal_naive",
            "--horizon",
            "3h",
            "--windows",
            "3",
        ],
    )
    assert done.exit_code == 0, done.output  # refresh makes the table
    assert stored_forecast(history, "pump_flow").row.chosen == "seasonal_naive"
