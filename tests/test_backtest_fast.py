"""Fast backtests and honest bands: parallel == serial, `all,auto`, bands after events, coverage
on real series."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from plantcast.cli.forecasting import parse_models
from plantcast.cli.main import cli
from plantcast.forecast import ConformalIntervals, available_models, backtest, get_model
from plantcast.forecast.backtest import backtest_many, excluded_mask
from plantcast.ingest.backfill import backfill
from plantcast.ingest.stream import Streamer
from plantcast.services.forecasting import (
    Forecasting,
    ForecastSpec,
    backtest_sensor,
    forecast_sensor,
)
from plantcast.services.injection import inject
from plantcast.signals import SignalModel, generate_readings

DATA = Path(__file__).parent / "data"
SENSOR = "reservoir_pressure"
STEP = pd.Timedelta("30min")
END = pd.Timestamp("2026-03-01", tz="UTC")


def _real(name: str) -> pd.Series:
    frame = pd.read_csv(DATA / f"{name}.csv")
    return pd.Series(frame["value"].to_numpy(float), index=pd.to_datetime(frame["ts"], utc=True))


# --- parallel == serial -------------------------------------------------------------------
def test_parallel_backtest_gives_the_serial_results():
    s = generate_readings(SignalModel(seed=5), "2024-03-01", periods=10 * 48, interval="30min")
    models = [
        get_model("seasonal_naive"),
        get_model("fourier_linear"),
        get_model("random_forest"),
        get_model("mstl"),
    ]
    too_long = get_model("mstl", periods=("7d",))  # needs two weeks: fails in both runs
    too_long.registry_name = "mstl_weekly"
    shift = [(s.index[-20], s.index[-10])]
    args = (s, [*models, too_long], 12, 6, 6)
    serial, failed_serial = backtest_many(*args, exclude=shift, n_jobs=1)
    ticks = []
    parallel, failed_parallel = backtest_many(
        *args, exclude=shift, n_jobs=2, on_progress=lambda d, t, label: ticks.append((d, t))
    )
    assert set(failed_serial) == set(failed_parallel) == {"mstl_weekly"}
    assert list(serial) == list(parallel) == [m.name for m in models]
    for name, one in serial.items():
        other = parallel[name]
        pd.testing.assert_frame_equal(one.forecasts, other.forecasts, rtol=1e-9, atol=1e-9)
        assert one.metrics == pytest.approx(other.metrics, rel=1e-9, nan_ok=True)
        np.testing.assert_allclose(one.intervals.quantiles, other.intervals.quantiles, rtol=1e-9)
    assert ticks[-1][0] == ticks[-1][1] == len(ticks)  # every fit reported, the last as done
    # the one-model entry point is the same computation
    single = backtest(s, get_model("fourier_linear"), 12, 6, 6, exclude=shift)
    pd.testing.assert_frame_equal(single.forecasts, serial["fourier_linear"].forecasts)


def test_excluded_mask_covers_closed_and_open_intervals():
    t = pd.date_range("2024-01-01", periods=10, freq="1h", tz="UTC")
    mask = excluded_mask(t, [(t[1], t[2]), (t[8], None)])
    assert mask.tolist() == [False, True, True, False, False, False, False, False, True, True]


# --- --models all,auto ----------------------------------------------------------------------
def test_parse_models_expands_all_beside_other_names():
    every = [m for m in available_models() if m != "auto"]
    assert parse_models("all") == tuple(every)
    assert parse_models("all,auto") == (*every, "auto")
    assert parse_models("svr, all") == ("svr", *[m for m in every if m != "svr"])


def test_backtest_cli_accepts_all_and_auto(sqlite_url, tmp_path):
    from plantcast.services.context import open_store

    with open_store(sqlite_url, init=True) as store:
        backfill(store, SENSOR, days=6, interval=STEP, end=END)
    result = CliRunner().invoke(
        cli,
        [
            "backtest",
            "--database-url",
            sqlite_url,
            "--sensor",
            SENSOR,
            "--models",
            "all,auto",
            "--horizon",
            "3h",
            "--windows",
            "2",
            "--train-points",
            "150",
            "--jobs",
            "2",
            "--report",
            str(tmp_path / "r.html"),
            "--format",
            "json",
        ],
    )
    assert result.exit_code == 0, result.output
    payload = json.loads(result.output[result.output.index("{") :])
    assert set(payload["models"]) | set(payload["failed"]) == set(available_models())
    assert "auto" in payload["models"]


# --- bands that stay honest after events ----------------------------------------------------
def _band(result, level: int) -> np.ndarray:
    frame = result.frame
    return (frame[f"upper_{level}"] - frame[f"lower_{level}"]).to_numpy()


def test_band_after_a_level_shift_stays_within_1_5x_of_before(store):
    backfill(store, SENSOR, days=14, interval=STEP, end=END)
    spec = ForecastSpec(model="fourier_linear")  # the dashboard's default: 1 day, 10 origins
    before = forecast_sensor(store, SENSOR, spec, Forecasting())
    inject(store, SENSOR, "level_shift", magnitude=20.0)
    Streamer(store, [SENSOR], tick=0, step=STEP, count=24).run()  # 12 h at the new level
    after = forecast_sensor(store, SENSOR, spec, Forecasting())
    for level in (80, 95):
        assert _band(after, level).max() <= 1.5 * _band(before, level).max()
        assert _band(after, level).mean() <= 1.5 * _band(before, level).mean()
    # The event is what the exclusion removed: calibrated on every residual, the 95 % band's
    # last steps take the +20 errors in.
    sensor = store.get_sensor(SENSOR)
    series = store.read_tail(sensor.id, spec.history_points())
    blind = Forecasting().forecast_series(SENSOR, series, spec, exclude=())
    assert _band(blind, 95)[-6:].mean() > 1.5 * _band(before, 95)[-6:].mean()


def test_backtest_sensor_leaves_event_steps_out_of_coverage(store):
    backfill(store, SENSOR, days=10, interval=STEP, end=END)
    inject(store, SENSOR, "level_shift", magnitude=20.0)
    Streamer(store, [SENSOR], tick=0, step=STEP, count=12).run()
    spec = ForecastSpec(horizon=12, windows=6)
    _, results, _ = backtest_sensor(store, SENSOR, ("seasonal_naive",), spec, step=6)
    frame = results["seasonal_naive"].forecasts
    event_start = store.events_overlapping(store.get_sensor(SENSOR).id, END, END + STEP)[0]
    assert frame.loc[frame["ts"] >= event_start.starts_at, "excluded"].all()
    assert not frame.loc[frame["ts"] < event_start.starts_at, "excluded"].any()


def test_band_does_not_widen_at_the_last_steps():
    """Stationary residuals, few origins: the last steps' quantiles are like the middle ones
    (a window cut short at the end used to make the 95 % band the single largest residual)."""
    rng = np.random.default_rng(7)
    worse = 0
    for _ in range(50):
        res = rng.normal(size=(5, 48))
        q = ConformalIntervals.calibrate(res, (80, 95)).quantiles
        assert np.isfinite(q).all() and (q[1] >= q[0]).all()
        worse += q[1, -1] > 1.25 * np.median(q[1])
        assert q[1, -1] < np.abs(res).max() or q[1, -1] == pytest.approx(np.median(q[1]), 0.5)
    assert worse <= 5  # ≤ 10 % of draws: sampling noise, not a systematic widening


def test_monotone_option_makes_bands_non_decreasing():
    rng = np.random.default_rng(3)
    res = rng.normal(size=(20, 24)) * np.linspace(1.0, 2.0, 24)
    q = ConformalIntervals.calibrate(res, (80, 95), monotone=True).quantiles
    assert (np.diff(q, axis=1) >= 0).all()


def test_masked_residuals_do_not_calibrate():
    res = np.ones((10, 6))
    res[-2:, :] = 50.0  # an event's residuals
    mask = np.zeros_like(res, dtype=bool)
    mask[-2:, :] = True
    assert ConformalIntervals.calibrate(res, (95,), mask=mask).quantiles.max() == 1.0
    assert ConformalIntervals.calibrate(res, (95,)).quantiles.max() == 50.0
    everything = np.ones_like(mask)  # nothing left: every residual is used
    assert ConformalIntervals.calibrate(res, (95,), mask=everything).quantiles.max() == 50.0


# --- coverage on real series ----------------------------------------------------------------
# Enough origins that the coverage estimate is tight: its standard error (the spread of the
# per-origin coverage over √origins) is asserted at most 2.5 points, so the 5-point tolerance is
# at least two standard errors (measured: 1.0-2.0 points; the figures are deterministic, no
# random draw is involved). Seattle: 200 daily, non-overlapping origins over the year (MSTL on
# 4 weeks of history). Taylor has 12 weeks only: 120 origins 8 h apart (MSTL on 3 weeks).
REAL = [
    ("seattle_temperature", ("24h",), 24, 24, 200, 672),
    ("taylor_electricity_demand", ("24h", "7d"), 48, 16, 120, 1008),
]


@pytest.mark.parametrize(("name", "periods", "horizon", "step", "origins", "train"), REAL)
def test_cross_fold_coverage_on_real_series_is_within_5_points(
    name, periods, horizon, step, origins, train
):
    series = _real(name)
    model = get_model("mstl", periods=periods, max_train_points=train)
    result = backtest(series, model, horizon, step, origins, n_jobs=2)
    assert len(result.origins) == origins
    frame = result.forecasts
    for level in (80, 95):
        inside = frame["y"].between(frame[f"lower_{level}"], frame[f"upper_{level}"])
        per_origin = inside.groupby(frame["origin"]).mean()
        se = per_origin.std(ddof=1) / math.sqrt(len(per_origin))
        assert se <= 0.025, f"{name} {level}: sampling error {se:.3f} too large to judge"
        assert abs(result.coverage[level] - level / 100) <= 0.05, (name, result.coverage)


class _Refuses(type(get_model("seasonal_naive"))):
    """A model whose library refuses the data (as statsforecast's ets did on weekly data)."""

    name = "refuses"

    def _fit(self, series):
        raise ValueError("Nonseasonal data")


def test_a_model_that_raises_fails_alone_and_the_others_are_backtested():
    s = generate_readings(SignalModel(seed=3), "2026-01-01", periods=10 * 48, interval="30min")
    results, failed = backtest_many(s, [get_model("seasonal_naive"), _Refuses()], 12, windows=3)
    assert list(results) == ["seasonal_naive"]
    assert failed == {"refuses": "could not be fitted: ValueError: Nonseasonal data"}
