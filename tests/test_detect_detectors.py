"""Each detector finds its kind in a labeled scenario and stays quiet on clean demo data."""

from __future__ import annotations

import pandas as pd
import pytest

from plantcast.detect import (
    DropoutDetector,
    LevelShiftDetector,
    RandomDetector,
    ResidualZDetector,
    StuckDetector,
    ThresholdDetector,
)
from plantcast.detect.episodes import hysteresis
from plantcast.signals import SignalModel, generate_readings
from plantcast.signals.scenarios import generate_scenario

# Which detector must catch which kind (see plantcast.detect.evaluation.COVERS).
CASES = [
    (ResidualZDetector, "spike"),
    (ResidualZDetector, "noise_burst"),
    (ResidualZDetector, "level_shift"),
    (LevelShiftDetector, "level_shift"),
    (LevelShiftDetector, "drift"),
    (StuckDetector, "stuck"),
    (DropoutDetector, "dropout"),
]
DETECTORS = [ResidualZDetector, LevelShiftDetector, StuckDetector, DropoutDetector]


@pytest.fixture(scope="module")
def scenario():
    return generate_scenario(7, magnitudes_sigma=(6, 10))


@pytest.mark.parametrize(("cls", "kind"), CASES, ids=lambda x: getattr(x, "__name__", x))
def test_detector_finds_its_kind(scenario, cls, kind):
    event = scenario.labels.set_index("kind").loc[kind]
    eps = cls().fit(scenario.train).episodes(scenario.series)
    hit = eps[
        (eps["start"] <= event["ends_at"] + 3 * scenario.interval)
        & (eps["end"] >= event["starts_at"])
    ]
    assert len(hit) >= 1
    # a drift ramps up from zero: it is caught once it has grown, before it ends
    allowed = event["ends_at"] - event["starts_at"] if kind == "drift" else "3h"
    assert hit["detected_at"].min() - event["starts_at"] <= pd.Timedelta(allowed)


@pytest.mark.parametrize("cls", [*DETECTORS, ThresholdDetector], ids=lambda c: c.__name__)
def test_no_alert_on_14_clean_days_of_the_demo_signal(cls):
    clean = generate_readings(SignalModel(), "2024-03-01", periods=14 * 48, interval="30min")
    det = cls().fit(clean.iloc[: 7 * 48])
    frame = det.detect(clean)
    assert not frame["flag"].any(), frame[frame["flag"]]
    assert list(frame.columns[:4]) == ["value", "score", "flag", "expected"]
    assert frame.index.equals(clean.index)


def test_stuck_episode_brackets_the_event(scenario):
    event = scenario.labels.set_index("kind").loc["stuck"]
    eps = StuckDetector().fit(scenario.train).episodes(scenario.series)
    assert len(eps) == 1
    assert eps["start"].iloc[0] == event["starts_at"]
    assert eps["end"].iloc[0] == event["ends_at"] - scenario.interval


def test_dropout_reports_the_gap_as_one_episode(scenario):
    event = scenario.labels.set_index("kind").loc["dropout"]
    eps = DropoutDetector(interval="30min").episodes(scenario.series)
    assert len(eps) == 1
    assert eps["start"].iloc[0] == event["starts_at"]
    assert eps["end"].iloc[0] == event["ends_at"]
    assert eps["peak_score"].iloc[0] == (event["ends_at"] - event["starts_at"]) / "30min" + 1


@pytest.mark.parametrize("unit", ["s", "us", "ns"])
def test_dropout_learns_the_interval_whatever_the_index_unit(unit):
    """Fitted without ``interval``, the dropout learns the median step: the same on an index
    in seconds, microseconds or nanoseconds (a store read, a CSV import), so only the gap is
    flagged."""
    idx = pd.date_range("2026-01-01", periods=600, freq="1s", tz="UTC").as_unit(unit)
    series = pd.Series(range(600), index=idx, dtype=float).drop(idx[300:330])
    det = DropoutDetector().fit(series.iloc[:250])
    assert det.interval_ == pd.Timedelta("1s")
    (episode,) = det.episodes(series.iloc[250:]).itertuples()
    assert (episode.start, episode.end) == (idx[300], idx[330])


def test_level_shift_is_one_episode(scenario):
    event = scenario.labels.set_index("kind").loc["level_shift"]
    eps = LevelShiftDetector().fit(scenario.train).episodes(scenario.series)
    inside = eps[(eps["start"] < event["ends_at"]) & (eps["end"] >= event["starts_at"])]
    assert len(inside) == 1


def test_hysteresis_matches_a_plain_loop():
    x = pd.Series(range(500)).map(lambda i: ((i * 7919) % 101) / 10.0).to_numpy()
    flags = hysteresis(x, 8.0, 4.0)
    on, want = False, []
    for v in x:
        on = v >= 8.0 or (on and v >= 4.0)
        want.append(on)
    assert flags.tolist() == want and flags.any() and not flags.all()


def test_static_threshold_and_random_baselines():
    clean = generate_readings(SignalModel(), "2024-03-01", periods=200, interval="30min")
    fixed = ThresholdDetector(low=95.0, high=105.0).detect(clean)
    assert fixed["flag"].equals((clean > 105) | (clean < 95))
    a, b = RandomDetector(seed=1).detect(clean), RandomDetector(seed=1).detect(clean)
    pd.testing.assert_frame_equal(a, b)
    assert a["score"].between(0, 1).all()


def test_residual_threshold_follows_the_noise_tails():
    """Uniform noise keeps the floor (small spikes are caught); Gaussian noise raises it, so
    60 clean days at 30-min steps raise at most a couple of alerts instead of about eight."""
    uniform = generate_readings(SignalModel(), "2024-03-01", periods=74 * 48, interval="30min")
    gauss_model = SignalModel(noise=SignalModel().noise_std, noise_kind="gaussian", seed=5)
    gauss = generate_readings(gauss_model, "2024-03-01", periods=74 * 48, interval="30min")
    det_u = ResidualZDetector().fit(uniform.iloc[: 14 * 48])
    det_g = ResidualZDetector().fit(gauss.iloc[: 14 * 48])
    assert det_u.threshold_ < 3.3  # about the 3σ floor
    assert 3.5 < det_g.threshold_ < 4.5
    episodes = det_g.episodes(gauss.iloc[14 * 48 :])
    assert len(episodes) <= 2
    fixed = ResidualZDetector(tail_factor=0.0).fit(gauss.iloc[: 14 * 48])  # a flat 3σ rule
    assert len(fixed.episodes(gauss.iloc[14 * 48 :])) > len(episodes)


def _wandering(seed: int, n: int) -> pd.Series:
    """The demo cycle plus AR(1) noise (φ = 0.95, innovations σ = 0.5): residuals that wander
    like weather, around which a spike of 4 is 8 innovation σ but 2.5 σ of the residuals."""
    import numpy as np

    rng = np.random.default_rng(seed)
    e = rng.normal(0.0, 0.5, n)
    ar = np.zeros(n)
    for t in range(1, n):
        ar[t] = 0.95 * ar[t - 1] + e[t]
    base = generate_readings(SignalModel(noise=0.0), "2024-03-01", periods=n, interval="30min")
    return base + ar


def test_residual_z_scores_innovations_where_residuals_wander():
    series = _wandering(3, 28 * 48)
    spiked = series.copy()
    spiked.iloc[21 * 48] += 4.0
    det = ResidualZDetector().fit(series.iloc[: 14 * 48])
    assert det.ar_ is not None  # chosen: the AR prediction narrows the spread a lot
    eps = det.episodes(spiked.iloc[14 * 48 :])
    assert ((eps["start"] <= spiked.index[21 * 48]) & (eps["end"] >= spiked.index[21 * 48])).any()
    plain = ResidualZDetector(ar_order=0).fit(series.iloc[: 14 * 48])
    hit = plain.detect(spiked.iloc[14 * 48 :]).loc[spiked.index[21 * 48], "flag"]
    assert not hit  # on the residuals alone the spike hides in the wander


def test_residual_z_keeps_plain_residuals_for_white_noise():
    clean = generate_readings(SignalModel(), "2024-03-01", periods=14 * 48, interval="30min")
    assert ResidualZDetector().fit(clean).ar_ is None
