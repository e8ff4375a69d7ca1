"""The dashboard script under Streamlit's AppTest: each control changes what is computed and drawn.

The app reads its database from ``PLANTCAST_DATABASE_URL`` and keeps the store and the model
caches in ``st.cache_resource``; every test points the variable at its own database and clears
that cache, so no test sees another's store. After a run the app records what it computed in
``session_state["computed"]``; the chart is checked through the Plotly JSON Streamlit sends.
"""

from __future__ import annotations

import base64
import contextlib
import json

import numpy as np
import pandas as pd
import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

import plantcast.dashboard
from plantcast.core.errors import PlantcastError
from plantcast.core.types import EventKind, Source
from plantcast.dashboard import state
from plantcast.ingest.backfill import backfill
from plantcast.ingest.stream import Streamer
from plantcast.services.injection import DEMO_SPIKE_MAGNITUDE
from plantcast.store import Store

STEP = pd.Timedelta("30min")
END = pd.Timestamp("2026-03-01", tz="UTC")
FORECAST = "forecast · "


# -- helpers ------------------------------------------------------------------------------
def _values(arr) -> np.ndarray:
    """A Plotly JSON array: a plain list, or a typed array ``{"dtype", "bdata"}`` (Plotly ≥ 6)."""
    if isinstance(arr, dict) and "bdata" in arr:
        return np.frombuffer(base64.b64decode(arr["bdata"]), dtype=np.dtype(arr["dtype"]))
    return np.asarray(arr, dtype=float)


def figure(at: AppTest) -> dict:
    charts = at.get("plotly_chart")
    assert len(charts) == 1, f"expected one chart, found {len(charts)}"
    return json.loads(charts[0].proto.spec)


def traces(at: AppTest) -> dict[str, dict]:
    return {t["name"]: t for t in figure(at)["data"]}


def forecast_traces(at: AppTest) -> dict[str, int]:
    """Forecast trace name (model) -> number of points in it."""
    return {
        name.removeprefix(FORECAST): len(_values(t["y"]))
        for name, t in traces(at).items()
        if name.startswith(FORECAST)
    }


def texts(elements) -> str:
    return "\n".join(str(e.value) for e in elements)


def run_app() -> AppTest:
    """The Sensor page (the app opens on the plant overview)."""
    at = AppTest.from_file(str(plantcast.dashboard.APP), default_timeout=60)
    at.run()
    assert not at.exception, texts(at.exception)
    at.switch_page("screens/sensor.py").run()
    assert not at.exception, texts(at.exception)
    return at


def fill(url: str, *names: str) -> Store:
    store = Store.open(url)
    store.init()
    for name in names:
        backfill(store, name, days=5, interval=STEP, end=END)
    return store


@pytest.fixture(autouse=True)
def fresh_resources():
    """Each test gets its own store and model caches; background backtests end with the test."""
    st.cache_resource.clear()
    yield
    state.forecasting().wait()
    board = state.model_board()
    board.wait(timeout=60)
    board.shutdown()
    with contextlib.suppress(PlantcastError):  # a test may point at a database that is down
        state.store().close()
    st.cache_resource.clear()


def _point_app_at(url: str, monkeypatch):
    """A populated database that the app is pointed at."""
    monkeypatch.setenv("PLANTCAST_DATABASE_URL", url)
    store = fill(url, "reservoir_pressure", "export_flow")
    yield store
    store.close()


@pytest.fixture
def app_db(db_url, monkeypatch):
    """On SQLite and on PostgreSQL."""
    yield from _point_app_at(db_url, monkeypatch)


@pytest.fixture
def sqlite_app_db(sqlite_url, monkeypatch):
    yield from _point_app_at(sqlite_url, monkeypatch)


# -- controls -> computation and chart ----------------------------------------------------
def test_horizon_sets_the_forecast_length(app_db):
    at = run_app()
    computed = at.session_state["computed"]
    assert computed["sensor"] == "reservoir_pressure"
    assert computed["forecast_lengths"] == {"fourier_linear": 48, "svr": 48, "random_forest": 48}
    assert forecast_traces(at) == computed["forecast_lengths"]

    at.select_slider(key="horizon").set_value("6h").run()
    assert not at.exception
    assert set(at.session_state["computed"]["forecast_lengths"].values()) == {12}
    assert forecast_traces(at) == {"fourier_linear": 12, "svr": 12, "random_forest": 12}
    # The forecast starts one step after the last reading.
    fl = traces(at)[f"{FORECAST}fourier_linear"]
    assert pd.Timestamp(fl["x"][0]) == END + STEP
    assert pd.Timestamp(fl["x"][-1]) == END + 12 * STEP

    at.select_slider(key="horizon").set_value("12h").run()
    assert forecast_traces(at) == {"fourier_linear": 24, "svr": 24, "random_forest": 24}


def test_harmonics_and_periods_set_the_feature_count(sqlite_app_db):
    at = run_app()
    assert at.session_state["computed"]["features"]["fourier_linear"] == 2 * 3
    at.slider(key="harmonics").set_value(5).run()
    assert not at.exception
    features = at.session_state["computed"]["features"]
    assert features == {"fourier_linear": 10, "svr": 10, "random_forest": 10}
    at.text_input(key="periods").input("24h, 12h").run()
    assert not at.exception
    assert at.session_state["computed"]["features"]["fourier_linear"] == 2 * 5 * 2


def test_sensor_choice_changes_the_data(sqlite_app_db):
    at = run_app()
    before = traces(at)["raw"]
    assert figure(at)["layout"]["yaxis"]["title"]["text"] == "reservoir_pressure (bar)"
    at.selectbox(key="sensor").set_value("export_flow").run()
    assert not at.exception
    assert at.session_state["computed"]["sensor"] == "export_flow"
    assert figure(at)["layout"]["yaxis"]["title"]["text"] == "export_flow (m³/h)"
    after = traces(at)["raw"]
    # reservoir_pressure lives around 100 bar, export_flow around 420 m³/h.
    assert 80 < _values(before["y"]).mean() < 120
    assert 350 < _values(after["y"]).mean() < 490


def test_models_choose_the_forecast_traces(sqlite_app_db):
    at = run_app()
    at.multiselect(key="models").set_value(["svr", "seasonal_naive"]).run()
    assert not at.exception
    assert set(forecast_traces(at)) == {"svr", "seasonal_naive"}
    assert set(at.session_state["computed"]["forecast_lengths"]) == {"svr", "seasonal_naive"}
    at.multiselect(key="models").set_value([]).run()
    assert not at.exception
    assert forecast_traces(at) == {}
    assert {"raw", "smoothed"} <= set(traces(at))


def calibrated(at: AppTest) -> AppTest:
    """Rerun once the background interval calibration has finished (bands come from it)."""
    state.forecasting().wait()
    at.run()
    assert not at.exception
    return at


def test_interval_control_draws_the_bands(sqlite_app_db):
    at = run_app()
    assert not any(n.endswith("%") for n in traces(at)), "bands are calibrated off the hot path"
    calibrated(at)
    assert {"fourier_linear 80%", "svr 80%", "random_forest 80%"} <= set(traces(at))
    at.radio(key="level").set_value("95 %").run()
    names = set(traces(at))
    assert "fourier_linear 95%" in names and "fourier_linear 80%" not in names
    upper = _values(traces(at)["fourier_linear 95% upper"]["y"])
    mean = _values(traces(at)[f"{FORECAST}fourier_linear"]["y"])
    assert (upper > mean).all()
    at.radio(key="level").set_value("none").run()
    assert not any(n.endswith("%") for n in traces(at))


# -- the injection buttons write to the store ---------------------------------------------
def _stream_one(store: Store) -> None:
    Streamer(store, ["reservoir_pressure"], tick=0, step=STEP, count=1).run()


def test_spike_and_normalize_buttons_write_events(app_db, monkeypatch):
    monkeypatch.setenv("PLANTCAST_USER", "ada")
    sensor = app_db.get_sensor("reservoir_pressure")
    span = (END - pd.Timedelta("30d"), END + pd.Timedelta("30d"))
    at = run_app()
    assert app_db.events_overlapping(sensor.id, *span) == []

    at.button(key="spike").click().run()
    assert not at.exception
    (ev,) = app_db.events_overlapping(sensor.id, *span)
    assert ev.kind is EventKind.LEVEL_SHIFT
    assert ev.magnitude == DEMO_SPIKE_MAGNITUDE
    assert ev.starts_at > END and ev.ends_at is None

    # Another session (a new AppTest: no shared session state) sees the stored event once the
    # streamer has written the next reading, and that reading carries the shift.
    _stream_one(app_db)
    other = run_app()
    assert other.session_state["computed"]["events"] == 1
    raw = _values(traces(other)["raw"]["y"])
    clean = raw[-49:-1]  # the day before the shift
    assert raw[-1] - clean.mean() > 12

    at.button(key="normalize").click().run()
    assert not at.exception
    (ev,) = app_db.events_overlapping(sensor.id, *span)
    assert ev.ends_at is not None and ev.ends_at > END
    assert "ended 1 event(s)" in texts(at.sidebar.success)
    with app_db.transaction(readonly=True) as tx:  # audited under the page's person
        done = [(e.actor, e.action) for e in tx.audit_entries(target=f"sensor:{sensor.name}")]
    assert sorted(done) == [("ada", "event.inject"), ("ada", "event.normalize")]


def test_imported_sensor_has_no_injection_buttons(sqlite_url, monkeypatch):
    monkeypatch.setenv("PLANTCAST_DATABASE_URL", sqlite_url)
    store = Store.open(sqlite_url)
    store.init()
    s = store.ensure_sensor("reservoir_pressure", source=Source.IMPORTED, interval=STEP)
    idx = pd.date_range(END - pd.Timedelta("7d"), END, freq=STEP, name="ts")
    store.write_readings(s.id, pd.Series(100.0 + np.sin(np.arange(len(idx))), index=idx))
    at = run_app()
    assert not [b for b in at.button if b.key in {"spike", "normalize"}]
    assert "imported data: no injection" in texts(at.sidebar.caption)
    store.close()


# -- poor input ---------------------------------------------------------------------------
def test_empty_database_says_what_to_do(sqlite_url, monkeypatch):
    monkeypatch.setenv("PLANTCAST_DATABASE_URL", sqlite_url)
    at = run_app()
    assert "no sensors yet" in texts(at.info)
    assert not at.get("plotly_chart")


def test_one_reading_renders_and_says_why_there_is_no_forecast(sqlite_url, monkeypatch):
    monkeypatch.setenv("PLANTCAST_DATABASE_URL", sqlite_url)
    store = Store.open(sqlite_url)
    store.init()
    s = store.ensure_sensor("reservoir_pressure", source=Source.SIMULATED, interval=STEP)
    store.write_readings(s.id, pd.Series([101.5], index=pd.DatetimeIndex([END], name="ts")))
    at = run_app()
    assert at.session_state["computed"]["points"] == 1
    assert at.session_state["computed"]["forecast_lengths"] == {}
    captions = texts(at.caption)
    for model in ("fourier_linear", "svr", "random_forest"):
        assert f"No forecast from {model}:" in captions
    assert _values(traces(at)["raw"]["y"]).tolist() == [101.5]
    store.close()


def test_sensor_without_readings_says_so(sqlite_url, monkeypatch):
    monkeypatch.setenv("PLANTCAST_DATABASE_URL", sqlite_url)
    store = Store.open(sqlite_url)
    store.init()
    store.ensure_sensor("reservoir_pressure", source=Source.SIMULATED, interval=STEP)
    at = run_app()
    assert "has no readings yet" in texts(at.info)
    store.close()


def test_empty_periods_forecast_without_a_season(sqlite_app_db):
    at = run_app()
    at.text_input(key="periods").input("").run()
    assert not at.exception and not at.sidebar.error
    assert at.session_state["computed"]["forecast_lengths"]["fourier_linear"] == 48


@pytest.mark.parametrize("text", ["soon", "-2h"])
def test_invalid_periods_show_an_error(sqlite_app_db, text):
    at = run_app()
    at.text_input(key="periods").input(text).run()
    assert not at.exception
    assert at.sidebar.error, "an invalid period must be reported in place"
    assert "period" in texts(at.sidebar.error).lower()
    assert not at.get("plotly_chart")
    at.text_input(key="periods").input("12h").run()
    assert not at.exception and not at.sidebar.error
    assert at.session_state["computed"]["forecast_lengths"]["fourier_linear"] == 48


def test_unreachable_database_is_a_message_not_a_trace(monkeypatch):
    monkeypatch.setenv("PLANTCAST_DATABASE_URL", "postgresql://postgres@127.0.0.1:9/test")
    at = run_app()
    assert "Cannot reach the database" in texts(at.error)
    assert not at.get("plotly_chart")


@pytest.mark.postgres
def test_page_recovers_when_its_connections_are_killed(pg_url, monkeypatch):
    """The server drops the page's connections (a restart looks the same to a client)."""
    import uuid

    import psycopg

    app = f"pc_dash_{uuid.uuid4().hex[:8]}"
    url = f"{pg_url}&application_name={app}"
    fill(url, "reservoir_pressure").close()
    monkeypatch.setenv("PLANTCAST_DATABASE_URL", url)
    at = run_app()
    assert forecast_traces(at)
    admin_url = pg_url.split("?")[0].replace("+psycopg", "")
    with psycopg.connect(admin_url, autocommit=True) as admin:
        killed = admin.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE application_name = %s",
            (app,),
        ).fetchone()[0]
    assert killed >= 1
    at.run()
    assert not at.exception, texts(at.exception)
    assert forecast_traces(at)  # the pool reconnected: same page, fresh data


def test_acknowledge_an_alert_from_the_page(sqlite_url, monkeypatch):
    from plantcast.core.types import AlertStatus
    from plantcast.services.detection import detect_sensor
    from plantcast.services.injection import inject

    store = fill(sqlite_url, "reservoir_pressure")
    inject(store, "reservoir_pressure", "level_shift", magnitude=20)
    Streamer(store, ["reservoir_pressure"], tick=0, step=STEP, count=4).run()
    detect_sensor(store, "reservoir_pressure")
    open_ids = [a.id for a in store.list_alerts(status=AlertStatus.OPEN)]
    assert open_ids
    monkeypatch.setenv("PLANTCAST_DATABASE_URL", sqlite_url)
    at = run_app()
    assert at.session_state["computed"]["alerts"] == len(open_ids)
    at.selectbox(key="ack_id").select(open_ids[0])
    at.button(key="ack").click().run()
    assert not at.exception, texts(at.exception)
    statuses = {a.id: a.status for a in store.list_alerts()}
    assert statuses[open_ids[0]] is AlertStatus.ACKNOWLEDGED
    store.close()


def test_silence_annotation_and_limits_are_drawn_on_the_chart(sqlite_app_db):
    from plantcast.services.limits import set_limits
    from plantcast.services.notes import annotate
    from plantcast.services.silences import add_silence

    store = sqlite_app_db
    name = "reservoir_pressure"
    annotate(store, name, "seal replaced on pump 3", author="olga", at=END - pd.Timedelta("1d"))
    add_silence(store, reason="maintenance", author="olga", sensor=name,
                start=END - pd.Timedelta("10h"), end=END - pd.Timedelta("6h"))  # fmt: skip
    set_limits(store, name, author="olga", levels={"high": 130.0, "high_high": 140.0})
    at = run_app()
    assert at.session_state["overlays"] == {
        "silences": 1,
        "annotations": ["seal replaced on pump 3"],
        "limits": {"high": 130.0, "high_high": 140.0},
    }
    layout = figure(at)["layout"]
    texts_drawn = [a.get("text", "") for a in layout["annotations"]]
    assert "silenced: maintenance" in texts_drawn
    assert "seal replaced on pump 3" in texts_drawn
    assert {"high 130", "high-high 140"} <= set(texts_drawn)
    hlines = [s for s in layout["shapes"] if s.get("y0") == s.get("y1") and s.get("y0")]
    assert {s["y0"] for s in hlines} == {130.0, 140.0}
