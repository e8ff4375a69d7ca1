"""Metrics, features and conformal quantiles checked against plain-loop oracles."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from plantcast.forecast import coverage, evaluate, fourier_terms, mae, mase, rmse, smape
from plantcast.forecast.conformal import ConformalIntervals
from plantcast.forecast.features import as_periods

floats = st.floats(-1e3, 1e3, allow_nan=False)
pairs = st.integers(2, 40).flatmap(
    lambda n: st.tuples(
        st.lists(floats, min_size=n, max_size=n), st.lists(floats, min_size=n, max_size=n)
    )
)


def loop_mae(y, f):
    return sum(abs(a - b) for a, b in zip(y, f, strict=True)) / len(y)


def loop_rmse(y, f):
    return math.sqrt(sum((a - b) ** 2 for a, b in zip(y, f, strict=True)) / len(y))


def loop_smape(y, f):
    total = 0.0
    for a, b in zip(y, f, strict=True):
        d = abs(a) + abs(b)
        total += 0.0 if d == 0 else 2 * abs(a - b) / d
    return 100 * total / len(y)


def loop_mase(y, f, insample, m):
    if m >= len(insample):
        m = 1
    diffs = [abs(insample[i] - insample[i - m]) for i in range(m, len(insample))]
    return loop_mae(y, f) / (sum(diffs) / len(diffs))


@settings(max_examples=60, deadline=None)
@given(pairs)
def test_metrics_match_loops(pair):
    y, f = pair
    assert mae(y, f) == pytest.approx(loop_mae(y, f), rel=1e-9, abs=1e-9)
    assert rmse(y, f) == pytest.approx(loop_rmse(y, f), rel=1e-9, abs=1e-9)
    assert smape(y, f) == pytest.approx(loop_smape(y, f), rel=1e-9, abs=1e-9)


@pytest.mark.parametrize("season", [1, 4, 7, 50])
def test_mase_matches_loop_and_falls_back_to_naive1(season):
    rng = np.random.default_rng(season)
    insample, y, f = rng.normal(size=20), rng.normal(size=5), rng.normal(size=5)
    assert mase(y, f, insample, season) == pytest.approx(loop_mase(y, f, list(insample), season))


def test_mase_constant_insample_is_finite():
    assert mase([5.0, 5.0], [5.0, 5.0], [5.0] * 10, 2) == 0.0
    assert np.isfinite(mase([5.0], [5.0 + 1e-12], [5.0] * 10, 2))


def test_coverage_and_evaluate():
    y = np.array([1.0, 2.0, 3.0, 4.0])
    assert coverage(y, y - 1, y + 1) == 1.0
    assert coverage(y, [0, 0, 0, 5], [9, 9, 9, 9]) == 0.75
    frame = pd.DataFrame(
        {"origin": [0, 0, 1, 1], "y": y, "mean": y + np.array([1, -1, 2, 0]), "scale": [1, 1, 2, 2]}
    )
    got = evaluate(frame, ["mae", "rmse", "mase", rmse])
    assert got["mae"] == pytest.approx(1.0)
    assert got["mase"] == pytest.approx((1 + 1 + 1 + 0) / 4)
    per = evaluate(frame, ["mae"], by="origin")
    assert per.loc[0, "mae"] == 1.0 and per.loc[1, "mae"] == 1.0


def test_fourier_terms_match_loop():
    idx = pd.date_range("2024-01-01", periods=30, freq="37min", tz="UTC")
    periods = as_periods(("24h", "7d"))
    got = fourier_terms(idx, periods, 2)
    for i, ts in enumerate(idx):
        seconds = ts.timestamp()
        col = 0
        for p in periods:
            for k in (1, 2):
                angle = 2 * math.pi * k * seconds / p.total_seconds()
                assert got[i, col] == pytest.approx(math.sin(angle), abs=1e-9)
                assert got[i, col + 1] == pytest.approx(math.cos(angle), abs=1e-9)
                col += 2


def test_conformal_quantile_matches_sorted_rank():
    rng = np.random.default_rng(1)
    res = rng.normal(size=(19, 3))
    cal = ConformalIntervals.calibrate(res, (80, 95), min_samples=19)  # enough: per step
    for step in range(3):
        ranked = sorted(abs(res[:, step]))
        assert cal.quantiles[0, step] == ranked[math.ceil(20 * 0.8) - 1]
        assert cal.quantiles[1, step] == ranked[18]  # ⌈20·0.95⌉ = 19th of 19
    frame = cal.apply(pd.DataFrame({"mean": [10.0, 10.0, 10.0, 10.0]}))
    assert frame["upper_80"].iloc[3] == 10.0 + cal.quantiles[0, 2]  # past the horizon: last step


def test_few_origins_pool_neighbouring_steps():
    """With 5 origins the 80 % and 95 % bands must differ: each step borrows its neighbours."""
    rng = np.random.default_rng(2)
    res = rng.normal(size=(5, 48))
    cal = ConformalIntervals.calibrate(res, (80, 95), min_samples=40)
    assert (cal.quantiles[1] > cal.quantiles[0]).all()
    # Step 10 pools steps 6..14 (w = 4): its 80 % quantile is the conformal rank of those 45.
    near = np.sort(np.abs(res[:, 6:15]).ravel())
    assert cal.quantiles[0, 10] == near[math.ceil(46 * 0.8) - 1]
    per_step = ConformalIntervals.calibrate(res, (80, 95), min_samples=1)
    assert (per_step.quantiles[1] == np.abs(res).max(axis=0)).all()  # the degenerate case
