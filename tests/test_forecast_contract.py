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


# --- seasons: one way in (``periods``), honoured by every model -------------------------------
SINE_PERIOD = 10  # hours: no calendar cycle, so a model falling back to 24h cannot pass


@pytest.fixture(scope="module")
def sine() -> pd.Series:
    idx = pd.date_range("2024-01-01", periods=20 * 24, freq="1h", tz="UTC")
    t = np.arange(len(idx))
    return pd.Series(50.0 + 10.0 * np.sin(2 * np.pi * t / SINE_PERIOD), index=idx)


def _sine_truth(sine: pd.Series, horizon: int) -> np.ndarray:
    t = np.arange(len(sine), len(sine) + horizon)
    return 50.0 + 10.0 * np.sin(2 * np.pi * t / SINE_PERIOD)


def _service_params(name: str, periods: tuple[str, ...]) -> dict:
    """What the service (forecast/backtest commands) passes for ``--periods``."""
    from plantcast.services.forecasting import ForecastSpec

    return ForecastSpec(periods=periods, horizon=30, windows=2).model_params(name)


@pytest.mark.parametrize("name", _models())
def test_every_model_takes_periods_and_nothing_else_names_seasons(name):
    accepted = get_model(name)._param_names()
    assert "periods" in accepted
    assert "period" not in accepted
    model = get_model(name, **_service_params(name, ("10h", "7d")))
    assert model.periods == ("10h", "7d")
    assert model.seasonal_period() == pd.Timedelta("10h")


@pytest.mark.parametrize("name", _models())
def test_every_model_follows_the_cycle_of_the_periods_given(name, sine):
    horizon = 30
    model = get_model(name, **_service_params(name, (f"{SINE_PERIOD}h",))).fit(sine)
    forecast = model.predict(horizon)["mean"].to_numpy()
    truth = _sine_truth(sine, horizon)
    assert np.corrcoef(forecast, truth)[0, 1] > 0.95
    assert np.abs(forecast - truth).max() < 2.0  # 10 % of the amplitude


def test_seasonal_naive_repeats_the_value_one_given_period_before(sine):
    model = get_model("seasonal_naive", **_service_params("seasonal_naive", ("10h",))).fit(sine)
    out = model.predict(25)
    period = pd.Timedelta(f"{SINE_PERIOD}h")
    seasons_back = np.ceil((out.index - sine.index[-1]) / period)  # the last season repeated
    before = sine.reindex(out.index - seasons_back * period)
    np.testing.assert_allclose(out["mean"].to_numpy(), before.to_numpy())
    day_before = sine.reindex(out.index[:10] - pd.Timedelta("24h")).to_numpy()
    assert not np.allclose(out["mean"].to_numpy()[:10], day_before)  # not the 24h fallback


def test_ets_models_the_given_season(sine):
    model = get_model("ets", **_service_params("ets", ("10h", "7d"))).fit(sine)
    assert model.season_length_ == SINE_PERIOD  # the first period, in steps
    forecast = model.predict(20)["mean"].to_numpy()
    assert np.ptp(forecast) > 15.0  # follows the ±10 cycle, not a flat line


@pytest.mark.parametrize("name", _models())
def test_every_model_fits_with_no_season(name, series):
    params = {"horizon": HORIZON, "windows": 2} if name == "auto" else {}
    out = get_model(name, periods=(), **params).fit(series).predict(HORIZON)
    assert len(out) == HORIZON and np.isfinite(out["mean"]).all()


def test_forecast_modules_import_each_other_without_a_cycle():
    """The package's import graph (module-level and function-level imports) is acyclic;
    imports for type checking only (``if TYPE_CHECKING:``) never run and are left out."""
    import ast
    from pathlib import Path

    import plantcast.forecast as pkg

    root = Path(pkg.__file__).parent
    graph = {}
    for path in root.glob("*.py"):
        if path.stem == "__init__":
            continue
        names = set()
        tree = ast.parse(path.read_text())
        typing_only = {
            id(n)
            for block in ast.walk(tree)
            if isinstance(block, ast.If) and ast.unparse(block.test).endswith("TYPE_CHECKING")
            for n in ast.walk(block)
        }
        for node in ast.walk(tree):
            if id(node) in typing_only:
                continue
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(pkg.__name__):
                names.add(node.module.removeprefix(pkg.__name__ + "."))
        graph[path.stem] = names & {p.stem for p in root.glob("*.py")}

    def reaches(start, goal, seen=()):
        return any(
            n == goal or (n not in seen and reaches(n, goal, (*seen, n))) for n in graph[start]
        )

    assert graph["wrappers"] and "registry" not in graph["wrappers"]
    cycles = [m for m in graph if reaches(m, m)]
    assert cycles == []


def test_seasonal_naive_repeats_the_longest_season_that_holds_the_others():
    idx = pd.date_range("2024-01-01", periods=21 * 24, freq="1h", tz="UTC")
    t = np.arange(len(idx))
    weekday = np.where(idx.dayofweek < 5, 10.0, 0.0)  # the day's shape differs at weekends
    s = pd.Series(np.sin(2 * np.pi * t / 24) + weekday, index=idx)
    model = get_model("seasonal_naive", periods=("24h", "7d")).fit(s)
    out = model.predict(48)
    np.testing.assert_allclose(out["mean"].to_numpy(), s.reindex(out.index - pd.Timedelta("7d")))
    assert model.seasonal_period() == pd.Timedelta("24h")  # the MASE scale of every model
    short = get_model("seasonal_naive", periods=("24h", "7d")).fit(s.iloc[:100])  # < a week
    assert short.period_ == pd.Timedelta("24h")
    unrelated = get_model("seasonal_naive", periods=("10h", "24h")).fit(s)  # 10h ∤ 24h
    assert unrelated.period_ == pd.Timedelta("10h")
