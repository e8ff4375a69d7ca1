"""Lag models, level-following forecasts and ``auto``'s choice: oracles, goals, real data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from plantcast.core.errors import Refused
from plantcast.forecast import get_model, mae
from plantcast.forecast.lags import LagForecaster, lag_features, lag_set, one_step
from plantcast.forecast.wrappers import EnsembleForecaster, forecast_after
from plantcast.services.forecasting import FitPending, Forecasting, ForecastSpec
from plantcast.signals import SignalModel, generate_readings

DATA = Path(__file__).parent / "data"


def demo(points=14 * 48, noise=2.0, seed=0) -> pd.Series:
    return generate_readings(
        SignalModel(noise=noise, seed=seed), "2024-01-01", periods=points, interval="30min"
    )


# --- lag features against a plain loop ------------------------------------------------------
@pytest.mark.parametrize(
    ("lags", "rolling", "ref"), [([1, 2, 3], (), 0), ([1, 5, 48], (4, 12), 3), ([2], (1,), 2)]
)
def test_lag_features_match_a_plain_loop(lags, rolling, ref):
    y = np.random.default_rng(1).normal(size=120).cumsum()
    x, r = lag_features(y, lags, rolling, ref)
    start = max([*lags, *rolling, ref, 1])
    rows, refs = [], []
    for t in range(start, len(y)):
        row = [y[t - lag] for lag in lags]
        row += [sum(y[t - w : t]) / w for w in rolling]
        rows.append(row)
        refs.append(sum(y[t - ref : t]) / ref if ref else 0.0)
    assert np.allclose(x, np.array(rows))
    assert np.allclose(r, np.array(refs))


def test_lag_set_adds_one_season_back():
    assert lag_set(3, [48, 336]) == [1, 2, 3, 48, 336]
    assert lag_set(2, [2]) == [1, 2]


@pytest.mark.parametrize("name", ["lag_gbm", "lag_linear"])
def test_lag_models_forecast_the_demo_near_the_noise_floor(name):
    s = demo()
    train, test = s.iloc[:-48], s.iloc[-48:]
    out = get_model(name).fit(train).predict(48)
    assert mae(test.to_numpy(), out["mean"].to_numpy()) < 1.6  # noise floor: 1.0
    assert not hasattr(get_model(name), "predict_at")  # steps ahead only


def test_recursive_lag_linear_is_exact_on_a_clean_cycle():
    s = demo(noise=0.0)
    out = LagForecaster("linear", lags=4, regressor_params={"alpha": 1e-6}).fit(s.iloc[:-48])
    assert np.abs(out.predict(48)["mean"].to_numpy() - s.iloc[-48:].to_numpy()).max() < 0.05


def test_lag_model_forecasts_from_new_readings_without_refit():
    s = demo()
    model = LagForecaster("lightgbm", lags=6).fit(s.iloc[:-6])  # relative to the last 6
    same = model.forecast_from(s.iloc[:-6], 12)
    pd.testing.assert_frame_equal(same, model.predict(12), check_freq=False)
    shifted = s.copy()
    shifted.iloc[-6:] += 20.0
    fresh = model.forecast_from(shifted, 12)
    assert fresh.index[0] == shifted.index[-1] + pd.Timedelta("30min")
    before = model.forecast_from(s, 12)
    assert (fresh["mean"] - before["mean"]).mean() > 5.0  # moved towards the new level


# --- following the level --------------------------------------------------------------------
@pytest.mark.parametrize("name", ["fourier_linear", "svr", "random_forest"])
def test_forecast_follows_a_level_shift_within_four_readings(name):
    """Issue #9 goal: +20 shift, 4 readings later the next 6 h are within 3 bar."""
    noisy, clean = demo(), demo(noise=0.0)
    at = 12 * 48 + 7
    shifted = noisy.copy()
    shifted.iloc[at:] += 20.0
    model = get_model(name).fit(shifted.iloc[: at + 4])
    out = model.predict(12)["mean"]
    expected = clean.loc[out.index] + 20.0
    assert np.abs(out - expected).max() < 3.0
    # the detectors' expectation stays the time-feature fit: it does not follow the anomaly
    assert np.abs(model.predict_at(out.index) - clean.loc[out.index]).max() < 3.0


def test_level_correction_stays_off_on_a_steady_signal():
    s = demo()
    model = get_model("fourier_linear").fit(s)
    assert model.level_ == 0.0
    assert np.allclose(model.predict(48)["mean"], model.predict_at(model.predict(48).index))
    off = get_model("fourier_linear", level_window=0).fit(s.iloc[:-3].copy())
    assert off.level_ == 0.0


def test_forecast_after_uses_the_latest_readings_of_a_previous_fit():
    s = demo()
    model = get_model("fourier_linear").fit(s.iloc[:-4])
    later = s.copy()
    later.iloc[-4:] += 20.0
    out = forecast_after(model, later, 12)
    assert out.index[0] == later.index[-1] + pd.Timedelta("30min")
    assert (out["mean"] - model.predict_at(out.index)).min() > 15


# --- auto -----------------------------------------------------------------------------------
def test_auto_reports_its_choice_and_blends():
    s = demo(10 * 48)
    model = get_model(
        "auto",
        candidates=("fourier_linear", "lag_linear", "seasonal_naive"),
        horizon=12,
        windows=3,
    ).fit(s)
    assert {"fourier_linear", "lag_linear", "seasonal_naive"} <= set(model.scores_)
    assert any(k.startswith("mean(") for k in model.scores_)  # blends were scored
    singles = min(model.scores_[k] for k in ("fourier_linear", "lag_linear", "seasonal_naive"))
    assert model.scores_[model.chosen_] <= singles  # a blend only when it scores lower
    assert len(model.predict(12)) == 12


def test_ensemble_is_the_weighted_mean_of_its_members():
    s = demo(8 * 48)
    a, b = get_model("fourier_linear"), get_model("seasonal_naive")
    ens = EnsembleForecaster([a, b], weights=[0.75, 0.25]).fit(s)
    want = 0.75 * a.clone().fit(s).predict(12)["mean"] + 0.25 * b.clone().fit(s).predict(12)["mean"]
    assert np.allclose(ens.predict(12)["mean"], want)
    med = EnsembleForecaster([a, b, get_model("lag_linear")], combine="median").fit(s)
    assert np.isfinite(med.predict(12)["mean"]).all()


def test_live_path_fits_auto_in_the_background():
    s = demo(10 * 48)
    service = Forecasting(background=True)
    spec = ForecastSpec(model="auto", horizon=12, intervals=False, max_train_points=400)
    try:
        with pytest.raises(FitPending):
            service.forecast_series("s", s, spec)  # cold: never fitted on the refresh path
        assert isinstance(FitPending("x"), Refused)  # the live page lists it as a problem
        service.wait()
        result = service.forecast_series("s", s, spec)
        assert result.chosen in result.scores
        newer = pd.concat([s, pd.Series([100.0], index=[s.index[-1] + pd.Timedelta("30min")])])
        again = service.forecast_series("s", newer, spec)  # previous fit, from the new reading
        assert again.frame.index[0] == newer.index[-1] + pd.Timedelta("30min")
        service.wait()
    finally:
        service.shutdown()


# --- real data ------------------------------------------------------------------------------
def _load(name: str) -> pd.Series:
    frame = pd.read_csv(DATA / f"{name}.csv")
    return pd.Series(frame["value"].to_numpy(float), index=pd.to_datetime(frame["ts"], utc=True))


def test_auto_on_electricity_demand_beats_seasonal_naive_clearly():
    s = _load("taylor_electricity_demand")
    periods = ("24h", "7d")
    auto_err, naive_err, weekly_err = [], [], []
    for origin in (s.index[-1 - 48 * 8], s.index[-1 - 48 * 3]):
        train, test = s[s.index <= origin], s[s.index > origin].iloc[:48]
        auto = get_model(
            "auto",
            candidates=("mstl", "lag_gbm", "seasonal_naive"),
            periods=periods,
            horizon=48,
            windows=2,
        ).fit(train)
        assert auto.chosen_ != "seasonal_naive"
        auto_err.append(mae(test.to_numpy(), auto.predict(48)["mean"].to_numpy()))
        naive = get_model("seasonal_naive", periods=("24h",)).fit(train)  # the day before
        naive_err.append(mae(test.to_numpy(), naive.predict(48)["mean"].to_numpy()))
        weekly = get_model("seasonal_naive", periods=periods).fit(train)  # the week before
        weekly_err.append(mae(test.to_numpy(), weekly.predict(48)["mean"].to_numpy()))
    assert np.mean(auto_err) < 0.6 * np.mean(naive_err)
    assert np.mean(auto_err) < np.mean(weekly_err)


def test_models_panel_board_reports_autos_choice(sqlite_url):
    from plantcast.ingest.backfill import backfill
    from plantcast.services.model_board import ModelBoard
    from plantcast.store import Store

    store = Store.open(sqlite_url)
    store.init()
    board = ModelBoard()
    try:
        end = pd.Timestamp("2026-03-01", tz="UTC")
        backfill(store, "reservoir_pressure", days=7, interval=pd.Timedelta("30min"), end=end)
        spec = ForecastSpec(horizon=12, windows=2, max_train_points=240)
        models = ("fourier_linear", "auto")
        board.get(store, "reservoir_pressure", models, spec, end)
        board.wait(timeout=120)
        entry = board.get(store, "reservoir_pressure", models, spec, end)
        assert entry.error is None and entry.table is not None
        assert entry.auto_choice in entry.auto_scores
        assert entry.auto_scores[entry.auto_choice] <= entry.auto_scores["seasonal_naive"]
    finally:
        board.shutdown()
        store.close()


@pytest.mark.parametrize("regressor", ["linear", "lightgbm", "hgb"])
def test_the_recursions_one_step_prediction_is_the_regressors_own(regressor):
    """``one_step`` skips scikit-learn's checks, not its arithmetic: every row of a fitted lag
    model's design predicts as ``model.predict`` does, bit for bit."""
    rng = np.random.default_rng(4)
    idx = pd.date_range("2026-01-01", periods=600, freq="10s", tz="UTC")
    y = pd.Series(50 + np.sin(np.arange(600) / 9) + rng.normal(0, 0.1, 600), index=idx)
    model = LagForecaster(regressor, periods=("5min",), lags=4).fit(y)
    x, _ = model._design(y.to_numpy(), idx)
    predict = one_step(model.model_)
    rows = x[:: max(1, len(x) // 50)]
    got = np.array([predict(row[None, :]) for row in rows])
    assert np.array_equal(got, model.model_.predict(rows))
