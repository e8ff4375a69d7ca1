"""Forecasting over the store: bounded reads, caching across refreshes, CLI outputs and report."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from click.testing import CliRunner

from plantcast.cli.main import cli
from plantcast.ingest.backfill import backfill
from plantcast.ingest.stream import Streamer
from plantcast.services.forecasting import Forecasting, ForecastSpec, forecast_sensor

END = pd.Timestamp("2026-03-01", tz="UTC")
STEP = pd.Timedelta("30min")


@pytest.fixture
def history(store):
    backfill(store, "reservoir_pressure", days=14, interval=STEP, end=END)
    return store


def test_forecast_length_bands_and_cache(history):
    svc = Forecasting()
    spec = ForecastSpec(model="svr", horizon=12)
    first = forecast_sensor(history, "reservoir_pressure", spec, svc)
    assert len(first.frame) == 12
    assert first.frame.index[0] == END + STEP
    assert (first.frame["lower_80"] < first.frame["mean"]).all()
    assert (first.frame["upper_95"] > first.frame["upper_80"]).all()
    misses = svc.cache.misses
    forecast_sensor(history, "reservoir_pressure", spec, svc)
    assert svc.cache.misses == misses and svc.cache.hits >= 1  # no new data: nothing refitted
    Streamer(history, ["reservoir_pressure"], tick=0, step=STEP, count=1).run()
    third = forecast_sensor(history, "reservoir_pressure", spec, svc)
    assert svc.cache.misses == misses + 1  # a new reading refits the model once
    assert third.frame.index[0] == END + 2 * STEP


def test_background_calibration_serves_at_once_then_adds_bands(history):
    svc = Forecasting(background=True)
    spec = ForecastSpec(model="fourier_linear", horizon=6)
    first = forecast_sensor(history, "reservoir_pressure", spec, svc)
    svc.wait()
    second = forecast_sensor(history, "reservoir_pressure", spec, svc)
    assert "lower_80" in second.frame.columns
    assert len(first.frame) == len(second.frame) == 6


def test_forecast_cli_csv_and_json(history, db_url):
    runner = CliRunner()
    base = ["forecast", "--database-url", db_url, "--sensor", "reservoir_pressure"]
    csv = runner.invoke(cli, [*base, "--horizon", "3h", "--format", "csv"])
    assert csv.exit_code == 0, csv.output
    lines = csv.output.strip().splitlines()
    assert lines[0] == "ts,mean,lower_80,upper_80,lower_95,upper_95" and len(lines) == 7
    js = runner.invoke(cli, [*base, "--model", "seasonal_naive", "--format", "json"])
    payload = json.loads(js.output)
    assert payload["model"] == "seasonal_naive" and len(payload["forecast"]) == 48


def test_backtest_cli_json_and_report(history, db_url, tmp_path):
    report = tmp_path / "report.html"
    result = CliRunner().invoke(
        cli,
        [
            "backtest",
            "--database-url",
            db_url,
            "--sensor",
            "reservoir_pressure",
            "--models",
            "fourier_linear,seasonal_naive",
            "--windows",
            "4",
            "--report",
            str(report),
            "--format",
            "json",
        ],
    )
    assert result.exit_code == 0, result.output
    payload = json.loads(result.output[result.output.index("{") :])
    models = payload["models"]
    assert set(models) == {"fourier_linear", "seasonal_naive"}
    for m in models.values():
        assert {"mae", "rmse", "mase", "smape", "coverage_80", "coverage_95"} <= set(m)
    assert models["fourier_linear"]["mase"] < models["seasonal_naive"]["mase"]
    html = report.read_text()
    assert "fourier_linear" in html and "Plotly" in html


def test_too_little_history_names_the_minimum(sqlite_url):
    from plantcast.store import Store

    with Store.open(sqlite_url) as store:
        store.init()
        backfill(store, "reservoir_pressure", days=0.5, interval=STEP, end=END)
    result = CliRunner().invoke(
        cli, ["forecast", "--database-url", sqlite_url, "--sensor", "reservoir_pressure"]
    )
    assert result.exit_code == 1
    assert (
        "need 2 periods of 24h of history (2d, at most 50% of it in gaps); have 12h30min in 25"
        in result.output
    )


def test_evaluate_detectors_cli_json():
    result = CliRunner().invoke(cli, ["evaluate-detectors", "--scenarios", "2", "--format", "json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output[result.output.index("[") :])
    detectors = {r["detector"] for r in rows}
    assert {"combined", "static_threshold", "random"} <= detectors
    assert all({"precision", "recall", "f1"} <= set(r) for r in rows)


def test_live_mode_forecasts_from_the_latest_reading_and_refits_in_background(history):
    svc = Forecasting(background=True)
    spec = ForecastSpec(model="random_forest", horizon=4, intervals=False)
    forecast_sensor(history, "reservoir_pressure", spec, svc)  # first fit: synchronous
    misses = svc.cache.misses
    Streamer(history, ["reservoir_pressure"], tick=0, step=STEP, count=1).run()
    served = forecast_sensor(history, "reservoir_pressure", spec, svc)
    assert served.frame.index[0] == END + 2 * STEP  # anchored at the new reading at once
    assert served.fitted_on == 673  # ...by the previous fit, not a refit on the hot path
    svc.wait()
    assert svc.cache.misses == misses + 1  # the refit happened in the background
    again = forecast_sensor(history, "reservoir_pressure", spec, svc)
    assert again.fitted_on == 674
    assert len(svc.cache) == 1  # the superseded fit was dropped: memory stays flat
