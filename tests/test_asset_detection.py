"""Asset detection through the store, on SQLite and PostgreSQL: a relationship fault planted
in a simulated pump (every sensor inside its own range) raises one asset alert whose first
contributor is the faulty sensor; its clean twin raises none; passes are incremental; too
little history says so and moves on; `detect` scores assets (`--asset`, `--no-assets`)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from plantcast.cli.main import cli
from plantcast.core.types import Source
from plantcast.services import assets as asset_service
from plantcast.services.asset_detection import detect_asset, detect_assets
from plantcast.signals.pump import generate_pump_scenario

SENSORS = ("speed", "flow", "discharge_pressure", "motor_current", "bearing_temp", "vibration")


@pytest.fixture(scope="module")
def scenario():
    # one sticking valve (flow falls at the same speed), 7.6σ of the flow's relation
    return generate_pump_scenario(1000, faults=("sticking_valve",), days=24)


def _asset(store, name, frame, interval, *, until=None, pinned=None):
    """An asset of the six pump sensors (``name_speed``, …) with readings before ``until``."""
    members = []
    for s in SENSORS:
        sensor = store.ensure_sensor(f"{name}_{s}", source=Source.IMPORTED, interval=interval)
        series = frame[s] if until is None else frame[s][frame.index < until]
        store.write_readings(sensor.id, series)
        members.append(sensor.name)
    asset_service.create_asset(store, name, members)
    if pinned is not None:
        asset_service.set_training(store, name, *pinned)


def _more(store, name, frame, since):
    for s in SENSORS:
        sensor = store.get_sensor(f"{name}_{s}")
        store.write_readings(sensor.id, frame[s][frame.index >= since])


def _pinned(sc):
    start = sc.frame.index[0]
    return start, start + sc.warmup


def test_a_planted_fault_raises_one_alert_naming_the_faulty_sensor(store, scenario):
    sc = scenario
    _asset(store, "pump", sc.frame, sc.interval, pinned=_pinned(sc))
    _asset(store, "twin", sc.clean, sc.interval, pinned=_pinned(sc))
    results = detect_assets(store)
    pump, twin = store.get_asset("pump"), store.get_asset("twin")
    assert results["pump"].opened == 1 and results["twin"].opened == 0
    assert results["pump"].scored_from == _pinned(sc)[1]  # scored after the known-good period
    (alert,) = store.list_alerts(asset_id=pump.id)
    assert store.list_alerts(asset_id=twin.id) == []
    fault = sc.labels.iloc[0]
    assert alert.sensor_id is None and alert.asset_id == pump.id
    assert next(iter(alert.contributors)) == "pump_flow"  # the sensor the valve throttles
    assert abs(sum(alert.contributors.values()) - 1.0) < 1e-9
    assert fault["starts_at"] - pd.Timedelta("1h") <= alert.ts <= fault["ends_at"]
    assert alert.ends_at is not None and alert.ends_at >= fault["starts_at"]
    assert alert.detector == "normal_behaviour" and alert.score > 1.0
    again = detect_assets(store)  # nothing new: nothing scored, nothing changed
    assert again["pump"].scored == 0 and again["pump"].opened == again["pump"].updated == 0
    assert len(store.list_alerts(asset_id=pump.id)) == 1


def test_passes_are_incremental_and_match_one_pass(store, scenario):
    sc = scenario
    fault = sc.labels.iloc[0]
    cut = fault["starts_at"] + (fault["ends_at"] - fault["starts_at"]) / 2  # mid-fault
    _asset(store, "pump", sc.frame, sc.interval, until=cut, pinned=_pinned(sc))
    first = detect_asset(store, "pump")
    assert first.opened == 1
    (ongoing,) = store.list_alerts(asset_id=store.get_asset("pump").id)
    assert ongoing.ends_at is None  # the fault goes on at the last reading
    _more(store, "pump", sc.frame, cut)
    second = detect_asset(store, "pump")
    assert second.opened == 0 and second.updated >= 1
    assert second.scored_from > first.scored_until
    (alert,) = store.list_alerts(asset_id=store.get_asset("pump").id)
    assert alert.id == ongoing.id and alert.ends_at is not None  # the same alert, now ended
    assert next(iter(alert.contributors)) == "pump_flow"


def test_causal_training_skips_what_has_too_little_history_and_never_stalls(store, scenario):
    sc = scenario
    _asset(store, "twin", sc.clean, sc.interval)  # no pinned period: trains on its past
    result = detect_asset(store, "twin")
    assert "needs at least 200 training rows" in result.skipped["normal_behaviour"]
    assert result.opened == 0 and result.scored_until == sc.clean.index[-1]
    assert 0 < result.scored < len(sc.clean)  # the first week had no history to learn from
    again = detect_asset(store, "twin")
    assert again.scored == 0 and again.skipped == {}  # moved on: nothing is retried


def test_detect_scores_assets_and_alerts_lists_their_contributors(store, db_url, scenario):
    sc = scenario
    _asset(store, "pump", sc.frame, sc.interval, pinned=_pinned(sc))
    runner = CliRunner()
    sensors_only = runner.invoke(cli, ["detect", "--database-url", db_url, "--sensor", "pump_flow"])
    assert sensors_only.exit_code == 0, sensors_only.output
    assert "asset pump" not in sensors_only.output  # --sensor alone: no asset
    skipped = runner.invoke(cli, ["detect", "--database-url", db_url, "--no-assets"])
    assert skipped.exit_code == 0 and "asset pump" not in skipped.output
    assert store.list_alerts(asset_id=store.get_asset("pump").id) == []
    ran = runner.invoke(cli, ["detect", "--database-url", db_url, "--asset", "pump"])
    assert ran.exit_code == 0, ran.output
    assert "asset pump: scored" in ran.output and "1 new alert(s)" in ran.output
    assert "pump_speed:" not in ran.output  # --asset alone: no sensor
    listed = runner.invoke(
        cli, ["alerts", "--database-url", db_url, "--asset", "pump", "--format", "json"]
    )
    (alert,) = json.loads(listed.output)["alerts"]
    assert alert["asset"] == "pump" and alert["contributors"][0]["sensor"] == "pump_flow"
    table = runner.invoke(cli, ["alerts", "--database-url", db_url, "--asset", "pump"])
    assert "asset pump" in table.output and "pump_flow" in table.output
    unknown = runner.invoke(cli, ["detect", "--database-url", db_url, "--asset", "nope"])
    assert unknown.exit_code != 0 and "no asset named 'nope'" in unknown.output
    assert "Traceback" not in unknown.output


def test_evaluate_detectors_asset_scores_the_pumps_as_detect_runs():
    from plantcast.services.asset_evaluation import evaluate_assets

    (row,) = evaluate_assets(1, 0, modes=("pinned",)).to_dict("records")
    assert row["events"] == 5 and row["detected"] == 5 and row["false_pos"] == 0
    assert row["top_contributor"] == 1.0 and row["false_alerts_30d"] == 0.0
    assert 0.5 < row["point_f1"] <= 1.0
    out = CliRunner().invoke(
        cli, ["evaluate-detectors", "--asset", "--scenarios", "1", "--format", "json"]
    )
    assert out.exit_code == 0, out.output
    rows = {r["training"]: r for r in json.loads(out.output)}
    assert set(rows) == {"pinned", "causal"} and rows["pinned"]["event_f1"] == 1.0


def test_the_dask_path_writes_the_alerts_of_the_bulk_path(sqlite_url, scenario):
    from distributed import Client

    from plantcast.scale import detect_assets_many
    from plantcast.store import Store

    sc = scenario
    with Store.open(sqlite_url) as store:
        store.init()
        _asset(store, "pump", sc.frame, sc.interval, pinned=_pinned(sc))
        _asset(store, "twin", sc.clean, sc.interval, pinned=_pinned(sc))
        with Client(
            processes=False, n_workers=1, threads_per_worker=1, dashboard_address=":0"
        ) as client:
            results = detect_assets_many(store, None, client=client)
        assert results["pump"].opened == 1 and results["twin"].opened == 0
        (alert,) = store.list_alerts(asset_id=store.get_asset("pump").id)
        assert next(iter(alert.contributors)) == "pump_flow"
        with Client(
            processes=False, n_workers=1, threads_per_worker=1, dashboard_address=":0"
        ) as client:
            again = detect_assets_many(store, ["pump"], client=client)
        assert again["pump"].scored == 0 and len(store.list_alerts()) == 1


def test_the_asset_view_shows_traces_score_threshold_and_contributions(store, scenario):
    from plantcast.services.views import asset_view

    sc = scenario
    _asset(store, "pump", sc.frame, sc.interval, pinned=_pinned(sc))
    before = asset_view(store, "pump", pd.Timedelta("7d"))
    assert "not fitted yet" in before.why and before.score.empty
    assert list(before.normalized.columns) == [f"pump_{s}" for s in SENSORS]
    assert before.end == sc.frame.index[-1] and len(before.normalized) == 7 * 144
    detect_assets(store)
    view = asset_view(store, "pump", pd.Timedelta("7d"))
    assert view.why is None and view.threshold is not None and view.threshold > 0
    assert view.score.index.equals(view.normalized.index)
    scored = view.shares.dropna()
    assert len(scored) > 0 and np.allclose(scored.sum(axis=1), 1.0)
    (alert,) = view.alerts
    fault = sc.labels.iloc[0]
    during = view.shares.loc[fault["starts_at"] : fault["ends_at"]].mean()
    assert during.idxmax() == "pump_flow"  # the valve's sensor carries the score
    assert view.score.loc[alert.ts : alert.ends_at].max() >= view.threshold
    means = view.normalized.mean()
    assert np.allclose(means, 0.0, atol=1e-9)


def test_the_asset_page_draws_the_view(sqlite_url, monkeypatch, scenario):
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    import plantcast.dashboard
    from plantcast.store import Store

    sc = scenario
    with Store.open(sqlite_url) as s:
        s.init()
        _asset(s, "pump", sc.frame, sc.interval, pinned=_pinned(sc))
        detect_assets(s)
    monkeypatch.setenv("PLANTCAST_DATABASE_URL", sqlite_url)
    st.cache_resource.clear()
    try:
        at = AppTest.from_file(str(plantcast.dashboard.APP), default_timeout=60)
        at.run()
        at.switch_page("screens/asset.py").run()
        assert not at.exception, [str(e.value) for e in at.exception]
        shown = at.session_state["asset_view"]
        assert shown["asset"] == "pump" and shown["why"] is None
        assert shown["rows"] == 144 and shown["scored"] > 0  # a day of 10-min rows
        titles = [
            json.loads(c.proto.spec)["layout"]["title"]["text"] for c in at.get("plotly_chart")
        ]
        assert any(t.startswith("Asset score") for t in titles)
        assert any(t.startswith("Contributions") for t in titles)
    finally:
        st.cache_resource.clear()
