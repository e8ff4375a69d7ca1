"""Accuracy and interval coverage on the reference demo's signal (30 min, 14 days, ±2 noise)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from plantcast.forecast import ConformalForecaster, ConformalIntervals, backtest, get_model
from plantcast.signals import SignalModel, generate_readings

HORIZON = 48


@pytest.fixture(scope="module")
def demo() -> pd.Series:
    return generate_readings(SignalModel(), "2024-01-01", periods=14 * 48, interval="30min")


@pytest.mark.parametrize(
    ("name", "limit"), [("fourier_linear", 1.05), ("svr", 1.15), ("random_forest", 1.15)]
)
def test_mean_mae_near_noise_floor(demo, name, limit):
    # 40 origins 6 steps apart over the last ~6 days; the noise floor MAE is 1.0
    result = backtest(demo, get_model(name), HORIZON, step=6, windows=40)
    assert len(result.origins) == 40
    assert result.metrics["mae"] <= limit
    assert result.metrics["mase"] < 1.0  # beats the seasonal naive scale


def test_conformal_80_covers_honestly(demo):
    # Calibrate on the earlier origins, count coverage on later, disjoint origins only.
    result = backtest(demo, get_model("fourier_linear"), HORIZON, step=4, windows=80)
    fc = result.forecasts
    origins = sorted(fc["origin"].unique())
    late = origins[40:]
    res = (fc["y"] - fc["mean"]).to_numpy().reshape(len(origins), HORIZON)
    cal = ConformalIntervals.calibrate(res[:40], (80, 95))
    late_res = np.abs(res[40:])
    cover80 = float(np.mean(late_res <= cal.quantiles[0]))
    cover95 = float(np.mean(late_res <= cal.quantiles[1]))
    assert len(late) == 40
    assert 0.75 <= cover80 <= 0.85
    assert 0.90 <= cover95 <= 0.99
    # the backtest's own honest (cross-fold) figure agrees
    assert 0.75 <= result.coverage[80] <= 0.85


def test_conformal_forecaster_attaches_bands(demo):
    model = ConformalForecaster(get_model("fourier_linear"), horizon=HORIZON, windows=12).fit(demo)
    out = model.predict(HORIZON)
    assert list(out.columns) == ["mean", "lower_80", "upper_80", "lower_95", "upper_95"]
    assert (out["lower_95"] <= out["lower_80"]).all()
    assert (out["lower_80"] < out["mean"]).all() and (out["mean"] < out["upper_80"]).all()
    assert (out["upper_80"] <= out["upper_95"]).all()
    width = (out["upper_80"] - out["lower_80"]).mean()
    assert 2.0 < width < 5.0  # uniform ±2 noise: the 80 % band is about ±1.6
    assert np.allclose(model.predict_at(out.index), out["mean"])


def test_auto_picks_the_best_by_backtest(demo):
    from plantcast.forecast.wrappers import DEFAULT_CANDIDATES

    model = get_model("auto").fit(demo)
    assert set(DEFAULT_CANDIDATES) <= set(model.scores_)  # every candidate scored
    assert model.scores_[model.chosen_] <= min(model.scores_[c] for c in DEFAULT_CANDIDATES)
    assert model.scores_[model.chosen_] < model.scores_["seasonal_naive"]
    assert len(model.predict(HORIZON)) == HORIZON
