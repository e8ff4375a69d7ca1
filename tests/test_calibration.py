"""Calibration's block maxima: the fast path gives exactly what ``resample`` gives."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from plantcast.detect.calibration import block_maxima


def _resampled(score: pd.Series, block: pd.Timedelta) -> np.ndarray:
    """The reference: the blocks of ``resample(origin="start")`` over the finite scores."""
    s = score[np.isfinite(score.to_numpy(dtype=np.float64))]
    if s.empty:
        return np.empty(0)
    return s.resample(block, origin="start").max().dropna().to_numpy(dtype=np.float64)


def _irregular(seed: int, n: int) -> pd.Series:
    """Scores at irregular times (gaps of minutes to hours, readings on block edges), with
    NaN and infinite ones, on a microsecond index as the store reads them."""
    rng = np.random.default_rng(seed)
    steps = rng.choice([1, 1, 1, 5, 60, 600, 3600], size=n) * 1_000_000  # µs
    ts = pd.Timestamp("2026-03-01 00:00:07", tz="UTC") + pd.to_timedelta(np.cumsum(steps), "us")
    values = rng.gamma(2.0, 1.0, n)
    values[rng.random(n) < 0.05] = np.nan
    values[rng.random(n) < 0.01] = np.inf
    index = pd.DatetimeIndex(ts, name="ts").as_unit("us")
    return pd.Series(values, index=index, name="score")


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("block", ["1min", "90s", "7min", "1h", "22min30s", "6h"])
def test_block_maxima_equal_resample_s(seed, block):
    score = _irregular(seed, 3_000)
    got = block_maxima(score, pd.Timedelta(block))
    want = _resampled(score, pd.Timedelta(block))
    assert len(want) > 1
    np.testing.assert_array_equal(got, want)


def test_block_maxima_of_a_regular_series_on_block_edges():
    index = pd.date_range("2026-03-01", periods=600, freq="1s", tz="UTC", name="ts")
    score = pd.Series(np.sin(np.arange(600) / 7.0), index=index)
    for block in ("1min", "10s", "1s"):
        np.testing.assert_array_equal(
            block_maxima(score, pd.Timedelta(block)), _resampled(score, pd.Timedelta(block))
        )


def test_block_maxima_of_no_finite_score_is_empty():
    index = pd.date_range("2026-03-01", periods=3, freq="1min", tz="UTC", name="ts")
    assert (
        block_maxima(pd.Series([np.nan, np.inf, -np.inf], index=index), pd.Timedelta("1h")).size
        == 0
    )


def test_block_maxima_of_an_unsorted_index_still_equal_resample_s():
    score = _irregular(7, 500).sample(frac=1.0, random_state=1)
    np.testing.assert_array_equal(
        block_maxima(score, pd.Timedelta("1h")), _resampled(score, pd.Timedelta("1h"))
    )
