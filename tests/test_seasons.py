"""Season detection: known periods found, none invented; stored with the sensor; the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from plantcast.cli.main import cli
from plantcast.core.errors import InputError, NotEnoughData, NotFound
from plantcast.core.types import Source
from plantcast.forecast.seasons import (
    Season,
    detect_seasons,
    eligible_periods,
    format_periods,
)
from plantcast.ingest.backfill import backfill
from plantcast.services.context import sensor_periods
from plantcast.services.forecasting import ForecastSpec, forecast_sensor
from plantcast.services.seasons import maybe_refresh_seasons, needs_refresh, refresh_seasons

DATA = Path(__file__).parent / "data"
H = pd.Timedelta("1h")


def _index(days: float, step: str = "30min", start: str = "2024-01-01") -> pd.DatetimeIndex:
    n = int(pd.Timedelta(days=days) / pd.Timedelta(step))
    return pd.date_range(start, periods=n, freq=step, tz="UTC", name="ts")


def _cycle(index: pd.DatetimeIndex, period: str, amplitude: float, harmonics=(1,)) -> np.ndarray:
    phase = 2 * np.pi * (index.asi8 % pd.Timedelta(period).value) / pd.Timedelta(period).value
    return sum(amplitude / k * np.sin(k * phase + k) for k in harmonics)


def _series(index, values) -> pd.Series:
    return pd.Series(values, index=index, name="value")


def _real(name: str) -> pd.Series:
    frame = pd.read_csv(DATA / f"{name}.csv")
    return _series(
        pd.DatetimeIndex(pd.to_datetime(frame["ts"], utc=True)), frame["value"].to_numpy()
    )


def _found(series: pd.Series) -> tuple[str, ...]:
    return format_periods(detect_seasons(series))


# -- synthetic series with known periods ------------------------------------------------------
def test_a_daily_cycle_is_found_alone():
    idx = _index(28)
    rng = np.random.default_rng(0)
    seasons = detect_seasons(
        _series(idx, 100 + _cycle(idx, "24h", 10) + rng.normal(0, 2, len(idx)))
    )
    assert format_periods(seasons) == ("24h",)
    assert seasons[0].strength > 0.8


def test_a_daily_shape_with_harmonics_is_one_season_not_three():
    idx = _index(28)
    rng = np.random.default_rng(1)
    values = _cycle(idx, "24h", 10, harmonics=(1, 2, 3)) + rng.normal(0, 1, len(idx))
    assert _found(_series(idx, values)) == ("24h",)


def test_daily_and_weekly_cycles_are_both_found_shortest_first():
    idx = _index(56)
    rng = np.random.default_rng(2)
    values = _cycle(idx, "24h", 10) + _cycle(idx, "7d", 6) + rng.normal(0, 2, len(idx))
    seasons = detect_seasons(_series(idx, values))
    assert format_periods(seasons) == ("24h", "7d")
    assert all(0.5 < s.strength <= 1 for s in seasons)


def test_a_twelve_hour_cycle_is_not_reported_as_a_day():
    idx = _index(14, "15min")
    rng = np.random.default_rng(3)
    assert _found(_series(idx, _cycle(idx, "12h", 5) + rng.normal(0, 1, len(idx)))) == ("12h",)


# -- cycles that are not calendar ones: proposed by the data's periodogram --------------------
def test_a_clean_ten_hour_sine_is_found_at_ten_hours():
    idx = _index(20, "1h")
    seasons = detect_seasons(_series(idx, 50 + 10 * np.sin(2 * np.pi * np.arange(len(idx)) / 10)))
    assert format_periods(seasons) == ("10h",)
    assert seasons[0].strength > 0.99
    assert format_periods(detect_seasons(_series(idx, _cycle(idx, "10h", 10)), search=False)) == ()


def test_a_37_minute_compressor_cycle_on_minute_data_is_found():
    idx = _index(2, "1min")
    rng = np.random.default_rng(11)
    square = np.sign(np.sin(2 * np.pi * np.arange(len(idx)) / 37))  # on/off, with harmonics
    assert _found(_series(idx, 3 * square + rng.normal(0, 1, len(idx)))) == ("37min",)


def test_a_batch_cycle_beside_the_day_is_found_with_it():
    idx = _index(14, "10min")
    rng = np.random.default_rng(12)
    values = _cycle(idx, "10h", 4, harmonics=(1, 2, 3)) + _cycle(idx, "24h", 6)
    assert _found(_series(idx, values + rng.normal(0, 1, len(idx)))) == ("10h", "24h")


def test_daily_and_weekly_stay_calendar_cycles_when_the_data_is_searched():
    idx = _index(56, "1h")
    rng = np.random.default_rng(13)
    values = _cycle(idx, "24h", 8) + _cycle(idx, "7d", 5) + rng.normal(0, 1, len(idx))
    assert _found(_series(idx, values)) == ("24h", "7d")


@pytest.mark.parametrize(("n", "step"), [(480, "1h"), (2880, "1min"), (20_000, "10s")])
def test_pure_noise_and_wander_get_no_searched_season(n, step):
    idx = pd.date_range("2024-01-01", periods=n, freq=step, tz="UTC")
    for seed in range(10):
        rng = np.random.default_rng(seed)
        for values in (_white(rng, n), _random_walk(rng, n), _persistent(rng, n)):
            assert _found(_series(idx, values)) == (), f"seed {seed}"


def _white(rng, n):
    return rng.normal(0, 1, n)


def _random_walk(rng, n):
    return np.cumsum(rng.normal(0, 1, n))


def _trend(rng, n):
    return np.linspace(0, 50, n) + rng.normal(0, 1, n)


def _persistent(rng, n):  # AR(1) with φ = 0.9: a sluggish sensor without any cycle
    return pd.Series(rng.normal(0, 1, n)).ewm(alpha=0.1).mean().to_numpy()


def _level_shift(rng, n):
    return np.where(np.arange(n) > 0.6 * n, 10.0, 0.0) + rng.normal(0, 1, n)


@pytest.mark.parametrize("make", [_white, _random_walk, _trend, _persistent, _level_shift])
@pytest.mark.parametrize("days", [14.2, 84])  # two weekly cycles (the hardest case) and twelve
def test_series_without_a_cycle_get_none(make, days):
    idx = _index(days)
    for seed in range(5):
        values = make(np.random.default_rng(seed), len(idx))
        assert _found(_series(idx, values)) == (), f"seed {seed}"


def test_a_weak_but_real_cycle_in_heavy_noise_is_found():
    idx = _index(28)
    rng = np.random.default_rng(4)
    # Seasonal variance 3.1 against noise variance 6.25: strength about 0.33.
    values = _cycle(idx, "24h", 2.5) + rng.normal(0, 2.5, len(idx))
    seasons = detect_seasons(_series(idx, values))
    assert format_periods(seasons) == ("24h",)
    assert 0.2 < seasons[0].strength < 0.45


def test_gappy_irregular_readings_keep_their_seasons():
    idx = _index(56)
    rng = np.random.default_rng(5)
    values = _cycle(idx, "24h", 10) + _cycle(idx, "7d", 6) + rng.normal(0, 2, len(idx))
    keep = rng.random(len(idx)) > 0.3  # 30 % of readings dropped
    jitter = pd.to_timedelta(rng.uniform(-7, 7, len(idx)), unit="min")  # and off the grid
    gappy = _series((idx + jitter)[keep], values[keep])
    assert _found(gappy) == ("24h", "7d")


def test_a_week_long_outage_does_not_hide_the_daily_cycle():
    idx = _index(42)
    rng = np.random.default_rng(6)
    s = _series(idx, _cycle(idx, "24h", 10) + rng.normal(0, 2, len(idx)))
    outage = (s.index >= "2024-01-15") & (s.index < "2024-01-22")
    assert _found(s[~outage]) == ("24h",)


def test_a_cycle_needs_two_whole_cycles_of_history():
    idx = _index(1.5)
    s = _series(idx, _cycle(idx, "24h", 10))
    assert _found(s) == ()
    assert pd.Timedelta("24h") not in eligible_periods(idx)


def test_candidates_follow_the_step_and_the_history():
    half_hourly = eligible_periods(_index(10))
    assert half_hourly[0] == pd.Timedelta("2h")  # 1h would be 2 steps: too few
    assert pd.Timedelta("24h") in half_hourly and pd.Timedelta("7d") not in half_hourly
    hourly = eligible_periods(_index(731, "1h"))
    assert pd.Timedelta("365d") in hourly and pd.Timedelta("2h") not in hourly
    assert pd.Timedelta("365d") not in eligible_periods(_index(700, "1h"))


def test_only_the_latest_readings_are_used():
    idx = _index(28 * 30, "10min")  # 120,960 readings
    values = np.where(np.arange(len(idx)) < len(idx) - 20_000, _cycle(idx, "24h", 10), 0.0)
    values = values + np.random.default_rng(7).normal(0, 1, len(idx))
    s = _series(idx, values)
    assert _found(s) == ()  # the cycle ended before the latest 20,000 readings
    assert _found(s.iloc[:-20_000]) == ("24h",)


def test_flat_and_tiny_series_have_no_season():
    idx = _index(14)
    assert _found(_series(idx, np.full(len(idx), 3.0))) == ()
    assert _found(_series(idx[:3], [1.0, 2.0, 3.0])) == ()


def test_bad_input_is_a_clear_error():
    with pytest.raises(InputError, match="tz-aware"):
        detect_seasons(pd.Series([1.0, 2.0], index=pd.date_range("2024-01-01", periods=2)))
    with pytest.raises(InputError, match="pandas Series"):
        detect_seasons([1.0, 2.0])
    with pytest.raises(InputError, match="min_strength"):
        detect_seasons(_series(_index(3), np.zeros(144)), min_strength=1.5)
    with pytest.raises(InputError, match="max_points"):
        detect_seasons(_series(_index(3), np.zeros(144)), max_points=0)


def test_seasons_format_as_the_periods_models_take():
    seasons = (Season(pd.Timedelta("24h"), 0.91234), Season(pd.Timedelta("7d"), 0.5))
    assert format_periods(seasons) == ("24h", "7d")
    assert seasons[0].to_dict() == {"period": "24h", "strength": 0.912}


# -- real series (tests/data) -----------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("taylor_electricity_demand", ("24h", "7d")),  # load: daily and weekly
        ("seattle_temperature", ("24h",)),  # weather: a day, no week
        ("sf_temperature", ("24h",)),
        ("water_flow", ()),  # pipeline flow: no calendar cycle in its 53 days
    ],
)
def test_real_series(name, expected):
    assert _found(_real(name)) == expected


# -- stored with the sensor -------------------------------------------------------------------
def test_store_merges_params_and_reads_them_with_the_last_reading(store):
    s = store.ensure_sensor("p", source=Source.IMPORTED, interval=H, params={"keep": 1})
    assert store.params_and_last_ts(s.id) == ({"keep": 1}, None)
    store.update_sensor_params(s.id, {"periods": ["24h"]})
    idx = _index(1, "1h")
    store.write_readings(s.id, _series(idx, np.arange(len(idx), dtype=float)))
    params, last = store.params_and_last_ts(s.id)
    assert params == {"keep": 1, "periods": ["24h"]}
    assert last == idx[-1]
    with pytest.raises(NotFound):
        store.update_sensor_params(10_000, {"x": 1})
    with pytest.raises(NotFound):
        store.params_and_last_ts(10_000)


def test_import_detects_and_stores_the_seasons(store, db_url):
    runner = CliRunner()
    path = DATA / "taylor_electricity_demand.csv"
    result = runner.invoke(cli, ["import", str(path), "--sensor", "load", "--database-url", db_url])
    assert result.exit_code == 0, result.output
    assert "seasons: 24h, 7d" in result.output
    sensor = store.get_sensor("load")
    params = store.sensor_params(sensor.id)
    assert params["periods"] == ["24h", "7d"]
    assert [s["period"] for s in params["seasons"]] == ["24h", "7d"]
    assert all(0.5 < s["strength"] <= 1 for s in params["seasons"])
    assert params["seasons_at"] == "2000-08-27T23:30:00+00:00"
    assert sensor_periods(store, sensor.id) == ("24h", "7d")

    shown = runner.invoke(cli, ["seasons", "--sensor", "load", "--database-url", db_url])
    assert shown.exit_code == 0, shown.output
    assert "24h" in shown.output and "7d" in shown.output
    assert "periods models use: 24h, 7d (detected)" in shown.output
    as_json = runner.invoke(
        cli, ["seasons", "--sensor", "load", "--format", "json", "--database-url", db_url]
    )
    payload = json.loads(as_json.output)
    assert payload["periods"] == ["24h", "7d"]
    assert payload["seasons"] == params["seasons"]


def test_a_sensor_without_a_cycle_stores_none_and_models_fit_without_a_season(store, db_url):
    runner = CliRunner()
    path = DATA / "water_flow.csv"
    result = runner.invoke(cli, ["import", str(path), "--sensor", "flow", "--database-url", db_url])
    assert result.exit_code == 0, result.output
    assert "seasons: none found" in result.output
    sensor = store.get_sensor("flow")
    params = store.sensor_params(sensor.id)
    assert params["periods"] == [] and params["seasons"] == []
    assert sensor_periods(store, sensor.id) == ()
    shown = runner.invoke(cli, ["seasons", "--sensor", "flow", "--database-url", db_url])
    assert "no seasonal cycle found" in shown.output
    assert "periods models use: none, models fit without a season (no season found)" in (
        shown.output
    )


def test_a_simulated_sensor_keeps_its_configured_periods(store, db_url):
    # Ten days of export_flow: too short for a weekly test, so detection finds only the day.
    backfill(store, "export_flow", days=10, interval=pd.Timedelta("30min"), end="2026-01-11")
    sensor = store.get_sensor("export_flow")
    assert maybe_refresh_seasons(store, sensor) is None  # simulated: never automatic
    assert refresh_seasons(store, sensor)[0].period == pd.Timedelta("24h")
    params = store.sensor_params(sensor.id)
    assert params["periods"] == ["24h", "7d"]
    assert [s["period"] for s in params["seasons"]] == ["24h"]
    assert params["baseline"] == 420.0  # the signal model is intact
    shown = CliRunner().invoke(
        cli, ["seasons", "--sensor", "export_flow", "--refresh", "--database-url", db_url]
    )
    assert shown.exit_code == 0, shown.output
    assert "periods models use: 24h, 7d (configured with the simulated signal)" in shown.output


def test_new_history_triggers_a_new_detection(store):
    idx = _index(56)
    rng = np.random.default_rng(8)
    values = _cycle(idx, "24h", 10) + _cycle(idx, "7d", 6) + rng.normal(0, 2, len(idx))
    full = _series(idx, values)
    sensor = store.ensure_sensor("feed", source=Source.MQTT, interval=pd.Timedelta("30min"))
    assert maybe_refresh_seasons(store, sensor) is None  # no readings: nothing to do
    store.write_readings(sensor.id, full[: 48 * 5])  # five days: only the day is testable
    assert format_periods(maybe_refresh_seasons(store, sensor)) == ("24h",)
    assert maybe_refresh_seasons(store, sensor) is None  # nothing new
    store.write_readings(sensor.id, full[48 * 5 : 48 * 9])  # +4 days < the 5 it was made on
    assert maybe_refresh_seasons(store, sensor) is None
    store.write_readings(sensor.id, full[48 * 9 : 48 * 21])  # +16 days: due, and weekly now
    assert format_periods(maybe_refresh_seasons(store, sensor)) == ("24h", "7d")
    assert sensor_periods(store, sensor.id) == ("24h", "7d")


def test_forecasting_a_sensor_refreshes_its_seasons_when_due(store):
    idx = _index(6)
    sensor = store.ensure_sensor("feed", source=Source.IMPORTED, interval=pd.Timedelta("30min"))
    store.write_readings(sensor.id, _series(idx, 50 + _cycle(idx, "24h", 10)))
    spec = ForecastSpec(model="seasonal_naive", horizon=4, intervals=False)
    forecast_sensor(store, "feed", spec)
    assert store.sensor_params(sensor.id)["periods"] == ["24h"]


def test_refresh_needs_readings_and_the_cli_says_so(store, db_url):
    sensor = store.ensure_sensor("empty", source=Source.IMPORTED, interval=H)
    with pytest.raises(NotEnoughData, match="no readings"):
        refresh_seasons(store, sensor)
    result = CliRunner().invoke(
        cli, ["seasons", "--sensor", "empty", "--refresh", "--database-url", db_url]
    )
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "no readings yet" in result.output
    missing = CliRunner().invoke(cli, ["seasons", "--sensor", "nope", "--database-url", db_url])
    assert missing.exit_code == 1 and "no sensor named 'nope'" in missing.output


def test_when_a_detection_is_due():
    at = pd.Timestamp("2024-01-10", tz="UTC")
    done = {"seasons_at": at.isoformat(), "seasons_span": pd.Timedelta("3d").total_seconds()}
    assert not needs_refresh({}, None)
    assert needs_refresh({}, at)  # never analysed
    assert not needs_refresh(done, at)
    assert not needs_refresh(done, at + pd.Timedelta("2d"))
    assert needs_refresh(done, at + pd.Timedelta("3d"))  # history doubled
    mature = {**done, "seasons_span": pd.Timedelta("400d").total_seconds()}
    assert not needs_refresh(mature, at + pd.Timedelta("6d"))
    assert needs_refresh(mature, at + pd.Timedelta("7d"))  # a week of new readings


def test_plantcast_seasons_finds_a_ten_hour_cycle(store, db_url):
    idx = _index(20, "1h")
    sensor = store.ensure_sensor("batch", source=Source.IMPORTED, interval=H)
    store.write_readings(sensor.id, _series(idx, 50 + _cycle(idx, "10h", 10)))
    shown = CliRunner().invoke(
        cli, ["seasons", "--sensor", "batch", "--refresh", "--database-url", db_url]
    )
    assert shown.exit_code == 0, shown.output
    assert "periods models use: 10h (detected)" in shown.output
    assert sensor_periods(store, sensor.id) == ("10h",)
