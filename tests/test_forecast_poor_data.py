"""Poor data, the detector-facing API (predict_at), preprocessing and the cache's manners."""

from __future__ import annotations

import threading

import numpy as np
import pandas as pd
import pytest

from plantcast.core.errors import InputError, NotEnoughData
from plantcast.forecast import ForecastCache, backtest, get_model, rolling_mean
from plantcast.signals import SignalModel, generate_readings


def readings(days: float, interval: str = "30min", **kw) -> pd.Series:
    periods = int(days * pd.Timedelta("24h") / pd.Timedelta(interval))
    return generate_readings(SignalModel(**kw), "2024-05-01", periods=periods, interval=interval)


def test_predict_at_api_for_detectors():
    s = readings(7)
    model = get_model("fourier_linear", periods=("24h",), harmonics=3)
    assert not hasattr(model, "pipeline_")
    model.fit(s)
    expected = SignalModel().expected(s.index)
    got = model.predict_at(s.index)
    assert isinstance(got, np.ndarray) and got.shape == (len(s),)
    assert np.mean(np.abs(got - expected)) < 0.3  # in-sample: close to the noiseless signal
    odd = pd.DatetimeIndex(["2024-05-03 07:13:11", "2030-01-01"], tz="UTC")
    assert np.isfinite(model.predict_at(odd)).all()


def test_seasonal_naive_predict_at_in_sample_is_one_season_back():
    s = readings(3)
    model = get_model("seasonal_naive", periods=("24h",)).fit(s)
    assert model.period_ == pd.Timedelta("24h")
    idx = s.index[60:70]
    assert np.allclose(model.predict_at(idx), s.iloc[12:22].to_numpy())
    future = model.predict(48)
    assert np.allclose(future["mean"].to_numpy(), s.iloc[-48:].to_numpy())
    assert np.isfinite(model.predict_at(s.index[:5])).all()  # first season: borrowed forward


@pytest.mark.parametrize("name", ["fourier_linear", "svr", "mstl", "ets"])
def test_too_little_history_names_the_minimum(name):
    short = readings(40 / 48)
    with pytest.raises(
        NotEnoughData,
        match=r"need 2 periods of 24h of history \(2d, at most 50% of it in gaps\); "
        r"have 20h in 40 readings",
    ):
        get_model(name).fit(short)


def test_weekly_period_needs_two_weeks():
    with pytest.raises(NotEnoughData, match="2 periods of 7d"):
        get_model("fourier_linear", periods=("24h", "7d")).fit(readings(10))


def test_seasonal_naive_needs_one_season():
    with pytest.raises(NotEnoughData, match="1 period of 24h"):
        get_model("seasonal_naive").fit(readings(0.5))


def test_single_reading_and_empty_series():
    s = readings(1)
    with pytest.raises(NotEnoughData):
        get_model("fourier_linear").fit(s.iloc[:1])
    with pytest.raises(NotEnoughData):
        get_model("fourier_linear").fit(s.iloc[:0])


def test_constant_series_and_nans():
    s = readings(4, noise=0.0, cycles=())
    assert s.nunique() == 1
    s.iloc[10:20] = np.nan
    for name in ("fourier_linear", "svr", "random_forest", "seasonal_naive", "mstl", "ets"):
        out = get_model(name).fit(s).predict(5)
        assert np.allclose(out["mean"], 100.0)
    result = backtest(s, get_model("fourier_linear"), 12, windows=3)
    assert result.metrics["mae"] < 1e-6 and np.isfinite(result.metrics["mase"])


def test_far_horizon_is_served():
    s = readings(3)
    out = get_model("fourier_linear").fit(s).predict(48 * 30)  # a month from 3 days of data
    assert len(out) == 48 * 30
    assert out["mean"].between(85, 115).all()
    with pytest.raises(InputError):
        get_model("fourier_linear").fit(s).predict(0)


def test_bad_input_is_refused_clearly():
    s = readings(3)
    with pytest.raises(InputError, match="tz-aware"):
        get_model("svr").fit(s.tz_localize(None))
    with pytest.raises(InputError, match="unknown model"):
        get_model("prophet")
    with pytest.raises(InputError, match="bad parameters"):
        get_model("svr", colour="red")


def test_bounded_training_window_and_smoothing():
    s = readings(60)
    model = get_model("fourier_linear", max_train_points=500).fit(s)
    assert model.n_train_ == 500
    # a window too short for two seasons is widened to two seasons, never more
    assert get_model("fourier_linear", max_train_points=10).fit(s).n_train_ == 97
    raw = get_model("fourier_linear").fit(s)
    smoothed = get_model("fourier_linear", smooth="3h").fit(s)
    truth = SignalModel().expected(raw.predict(48).index)
    err_raw = np.abs(raw.predict(48)["mean"] - truth).mean()
    err_smooth = np.abs(smoothed.predict(48)["mean"] - truth).mean()
    assert err_smooth > err_raw  # the trailing mean lags the cycle


def test_rolling_mean_by_points_and_duration():
    s = pd.Series([1.0, 2.0, 3.0, 4.0], index=pd.date_range("2024", periods=4, freq="h", tz="UTC"))
    assert rolling_mean(s, 2).tolist() == [1.0, 1.5, 2.5, 3.5]
    assert rolling_mean(s, "2h").tolist() == [1.0, 1.5, 2.5, 3.5]


def test_cache_lru_key_and_threads():
    s = readings(4)
    cache = ForecastCache(maxsize=2)
    cache.get_or_fit("a", "fourier_linear", {}, s)
    cache.get_or_fit("a", "fourier_linear", {"harmonics": 3}, s)  # defaults spelled out: hit
    assert cache.stats() == {"hits": 1, "misses": 1, "size": 1}
    cache.get_or_fit("a", "fourier_linear", {"max_train_points": 100}, s)  # window: new key
    cache.get_or_fit("b", "fourier_linear", {}, s)
    assert len(cache) == 2 and cache.misses == 3
    cache.get_or_fit("a", "fourier_linear", {}, s)  # evicted as least recently used
    assert cache.misses == 4

    with_nan = s.copy()
    with_nan.iloc[-1] = np.nan
    cache.get_or_fit("n", "seasonal_naive", {}, with_nan)
    assert cache.get_or_fit("n", "seasonal_naive", {}, with_nan) is not None
    assert cache.hits == 2

    shared = ForecastCache()
    shared.get_or_fit("x", "seasonal_naive", {}, s)
    threads = [
        threading.Thread(target=shared.get_or_fit, args=("x", "seasonal_naive", {}, s))
        for _ in range(8)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert shared.stats() == {"hits": 8, "misses": 1, "size": 1}


def test_ets_on_readings_coarser_than_its_period_fits_without_a_season():
    """A daily period on weekly readings is one step: ets fits no season instead of failing
    (statsforecast refuses an additive season of length 1)."""
    idx = pd.date_range("2000-01-02", periods=300, freq="7D", tz="UTC")
    series = pd.Series(np.linspace(300, 330, len(idx)) + np.sin(np.arange(len(idx))), index=idx)
    model = get_model("ets", periods="24h").fit(series)
    out = model.predict(4)
    assert len(out) == 4 and np.isfinite(out["mean"]).all()
    assert model.season_length_ == 1
