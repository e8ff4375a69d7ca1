"""Pattern-change detectors: discords, scale and profile changes, slow drift."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from plantcast.core.errors import NotEnoughData
from plantcast.detect.discord import DiscordDetector, stumpy_module
from plantcast.detect.distribution import ProfileChangeDetector, ScaleChangeDetector
from plantcast.detect.drift import DriftDetector
from plantcast.detect.windows import acf_window, season_points

DAY = ("24h",)
STEP = "15min"
DAYS = 10
ONSET = pd.Timestamp("2026-01-08 12:00", tz="UTC")  # faults start here; training ends at day 7
TRAIN_END = pd.Timestamp("2026-01-08", tz="UTC")


@pytest.fixture(scope="module", autouse=True)
def warm_stumpy():
    """Compile stumpy's numba functions once (a minute of CPU uncached; ~1 s from the cache)."""
    stumpy_module().stump(np.random.default_rng(0).normal(size=64), 8)


def make(kind: str = "clean", seed: int = 1, *, seasonal: bool = True) -> pd.Series:
    """10 days at 15 min: a daily cycle (or none) + noise (AR(1) without a season), and a
    pattern change planted from ``ONSET`` (a drift from ``TRAIN_END``, over a day)."""
    rng = np.random.default_rng(seed)
    idx = pd.date_range("2026-01-01", periods=DAYS * 96, freq=STEP, tz="UTC")
    t = np.asarray((idx - idx[0]) / pd.Timedelta("1d"), dtype=float)
    cycle = 10 * np.sin(2 * np.pi * t) + 4 * np.sin(4 * np.pi * t + 1) if seasonal else 0 * t
    white = rng.normal(0, 1, len(t))
    noise = white if seasonal else pd.Series(white).ewm(alpha=0.5).mean().to_numpy() * 1.7
    on = idx >= ONSET
    if kind == "flat":  # the daily cycle loses its shape
        cycle = np.where(on, 0.3 * cycle, cycle)
    elif kind == "frequency":  # the motif is replaced by a new frequency
        cycle = np.where(on, 10 * np.sin(2 * np.pi * 6 * t), cycle)
    elif kind == "scale":  # the variance triples
        noise = np.where(on, noise * np.sqrt(3), noise)
    x = 50 + cycle + noise
    if kind == "drift":  # 4 σ over a day, then stays
        x = x + 4.0 * np.clip(t - 7.0, 0.0, 1.0)
    return pd.Series(x, index=idx)


def fit_detect(detector, series: pd.Series) -> pd.DataFrame:
    detector.fit(series[series.index < TRAIN_END])
    return detector.detect(series[series.index >= TRAIN_END])


DETECTORS = {
    "discord": DiscordDetector,
    "scale_change": ScaleChangeDetector,
    "profile_change": ProfileChangeDetector,
    "drift": DriftDetector,
}
CATCHES = [
    ("discord", "flat"),
    ("discord", "frequency"),
    ("scale_change", "scale"),
    ("profile_change", "flat"),
    ("profile_change", "frequency"),
    ("drift", "drift"),
]


@pytest.mark.parametrize(("name", "kind"), CATCHES)
def test_catches_its_planted_change_after_onset_only(name, kind):
    out = fit_detect(DETECTORS[name](DAY), make(kind))
    onset = TRAIN_END if kind == "drift" else ONSET
    assert out.flag[out.index >= onset].any(), f"{name} missed {kind}"
    assert not out.flag[out.index < onset].any()
    assert out.flag[out.index >= onset].idxmax() < onset + pd.Timedelta("1d")


@pytest.mark.parametrize("name", list(DETECTORS))
@pytest.mark.parametrize("seasonal", [True, False])
def test_clean_series_raise_no_flag_at_the_calibrated_threshold(name, seasonal):
    for seed in (1, 2, 3):
        periods = DAY if seasonal else ()
        det = DETECTORS[name](periods)
        out = fit_detect(det, make("clean", seed, seasonal=seasonal))
        assert det.budget is not None and det.threshold_ >= det.floor_
        assert not out.flag.any(), f"{name} flagged clean data (seed {seed}): {out.score.max()}"


def test_the_window_follows_the_season_or_the_autocorrelation():
    seasonal = DiscordDetector(DAY).fit(make()[lambda s: s.index < TRAIN_END])
    assert seasonal.window_ == 96 and seasonal.window_source_ == "season 24h"
    # the season needs two cycles of history
    assert season_points(make().index[:180], DAY) is None
    # without periods, a cycle is found in the autocorrelation (an hourly one at 1 min)
    rng = np.random.default_rng(3)
    hourly = np.sin(2 * np.pi * np.arange(600) / 60) + rng.normal(0, 0.3, 600)
    cycle, source = acf_window(hourly, 256)
    assert 57 <= cycle <= 63 and "cycle" in source
    noise = make(seasonal=False)
    m, source = acf_window(noise.to_numpy(), 256)
    assert m < 32 and "length" in source


@pytest.mark.parametrize("name", list(DETECTORS))
def test_a_one_second_sensor_with_fifteen_minutes_of_history(name):
    """No season given, 900 readings of training: each detector fits and catches its fault in
    the next 5 minutes, and the same 5 minutes left clean raise nothing. The sensor repeats a
    30 s motif (a pump stroke) in noise; its autocorrelation finds the cycle."""
    rng = np.random.default_rng(7)
    idx = pd.date_range("2026-03-01", periods=1200, freq="1s", tz="UTC")
    noise = pd.Series(rng.normal(0, 0.5, 1200)).ewm(alpha=0.5).mean().to_numpy()
    stroke = 2.0 * ((np.arange(1200) % 30) / 30.0) ** 2
    base = pd.Series(20 + stroke + noise, index=idx)
    k = np.arange(300)
    fault = {
        "discord": np.sin(2 * np.pi * k / 7) - stroke[900:],  # the motif breaks
        "profile_change": np.sin(2 * np.pi * k / 7) - stroke[900:],
        "scale_change": 2 * noise[900:],  # σ × 3
        "drift": np.minimum(k / 120, 1.0) * 1.5,  # 5 σ over two minutes
    }[name]
    faulty = base.copy()
    faulty.iloc[900:] += fault
    det = DETECTORS[name]().fit(base.iloc[:900])
    assert det.threshold_ >= det.floor_
    assert not det.detect(base.iloc[900:]).flag.any()
    assert det.detect(faulty.iloc[900:]).flag.any()


@pytest.mark.parametrize("name", list(DETECTORS))
def test_too_little_history_is_not_enough_data_and_unfitted_refuses(name):
    from plantcast.detect.base import NotFitted

    series = make()
    with pytest.raises(NotFitted):
        DETECTORS[name](DAY).detect(series)
    with pytest.raises(NotEnoughData, match="training readings"):
        DETECTORS[name](DAY).fit(series.iloc[:40])


def test_explain_says_what_window_each_uses_without_the_history():
    series = make()[lambda s: s.index < TRAIN_END]
    info = DiscordDetector(DAY).fit(series).explain()
    assert info["window"] == 96 and "history" not in info and "threshold" in info
    info = DriftDetector().fit(series).explain()
    assert info["span"] >= 32 and "profile" not in info


@pytest.mark.parametrize("name", list(DETECTORS))
def test_rescoring_the_training_window_is_quiet(name):
    """The service scores context that overlaps the training window: no flag, no warning."""
    train = make()[lambda s: s.index < TRAIN_END]
    det = DETECTORS[name](DAY).fit(train)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = det.detect(train)
    assert len(out) == len(train) and not out.flag.any()
