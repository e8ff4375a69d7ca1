"""Contract test over the registry: every model fits, predicts, caches and backtests."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from plantcast.forecast import MODELS, ForecastCache, available_models, backtest, get_model
from plantcast.signals import SignalModel, generate_readings

HORIZON = 12
# Only "auto" gets lighter settings: its fit is itself a backtest of four candidates.
PARAMS = {"auto": {"horizon": HORIZON, "windows": 2}}


def _models():
    return available_models()


@pytest.fixture(scope="module")
def series() -> pd.Series:
    return generate_readings(SignalModel(seed=3), "2024-03-01", periods=10 * 48, interval="30min")


@pytest.fixture(scope="module")
def gappy(series) -> pd.Series:
    # a 6-hour dropout, a 1-hour one, NaNs and jittered timestamps: sampling is not regular
    s = series.drop(series.index[200:212]).drop(series.index[300:302]).copy()
    s.iloc[50:53] = np.nan
    jitter = pd.to_timedelta(np.random.default_rng(0).integers(-120, 120, len(s)), unit="s")
    s.index = s.index + jitter
    return s


def test_registry_lists_names():
    assert available_models() == list(MODELS)
    for required in ("seasonal_naive", "fourier_linear", "svr", "random_forest", "mstl", "ets"):
        assert required in MODELS
    assert "auto" in MODELS


@pytest.mark.parametrize("name", _models())
def test_fit_predict_exact_future_grid(name, series):
    model = get_model(name, **PARAMS.get(name, {}))
    assert not [k for k in vars(model) if k.endswith("_") and not k.startswith("_")]
    assert isinstance(model.get_params(), dict)
    assert model.fit(series) is model
    out = model.predict(HORIZON)
    expected = pd.date_range(
        series.index[-1] + pd.Timedelta("30min"), periods=HORIZON, freq="30min"
    )
    assert list(out.index) == list(expected)
    assert str(out.index.tz) == "UTC"
    assert list(out.columns) == ["mean"]
    assert np.isfinite(out["mean"]).all()
    # a sane forecast of the daily cycle: within the signal's range
    assert out["mean"].between(85, 115).all()


@pytest.mark.parametrize("name", _models())
def test_survives_gaps_nans_and_jitter(name, gappy):
    model = get_model(name, **PARAMS.get(name, {})).fit(gappy)
    out = model.predict(HORIZON)
    assert len(out) == HORIZON
    assert out.index[0] > gappy.index[-1]
    assert np.isfinite(out["mean"]).all()


@pytest.mark.parametrize("name", _models())
def test_deterministic_and_refit_forgets(name, series):
    a = get_model(name, **PARAMS.get(name, {})).fit(series).predict(HORIZON)
    model = get_model(name, **PARAMS.get(name, {}))
    model.fit(series.iloc[:-48] + 50.0)  # different data first: refit must forget it
    b = model.fit(series).predict(HORIZON)
    pd.testing.assert_frame_equal(a, b)


@pytest.mark.parametrize("name", _models())
def test_served_from_cache(name, series):
    cache = ForecastCache(maxsize=4)
    params = PARAMS.get(name, {})
    first = cache.get_or_fit("s1", name, params, series)
    again = cache.get_or_fit("s1", name, params, series)
    assert again is first
    assert (cache.hits, cache.misses) == (1, 1)
    newer = pd.concat(
        [series, pd.Series([100.0], index=[series.index[-1] + pd.Timedelta("30min")])]
    )
    refit = cache.get_or_fit("s1", name, params, newer)
    assert refit is not first
    assert (cache.hits, cache.misses) == (1, 2)
    assert refit.predict(1).index[0] == newer.index[-1] + pd.Timedelta("30min")


@pytest.mark.parametrize("name", _models())
def test_backtests(name, series):
    result = backtest(series, get_model(name, **PARAMS.get(name, {})), HORIZON, windows=2)
    assert len(result.origins) == 2
    assert len(result.forecasts) == 2 * HORIZON
    for metric in ("mae", "rmse", "mase", "smape"):
        assert np.isfinite(result.metrics[metric])
    assert result.metrics["mae"] < 3.0
