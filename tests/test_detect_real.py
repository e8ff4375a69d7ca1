"""Real recordings: loader, real-background scenarios, rolling z baseline, real evaluation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from plantcast.core.types import EventKind
from plantcast.detect.baselines import RollingZDetector
from plantcast.detect.evaluation import (
    CLEAN_COLUMNS,
    SUMMARY_COLUMNS,
    baseline_detectors,
    summarize,
)
from plantcast.services.detector_evaluation import clean_days, run_evaluation
from plantcast.signals.recordings import (
    RECORDINGS,
    gaps,
    load_recording,
    noise_sigma,
    real_labels,
    real_scenario,
)

DATA = Path(__file__).parent / "data"
ROWS = {
    "taylor_electricity_demand": 4032,
    "seattle_temperature": 8759,
    "sf_temperature": 8759,
    "water_flow": 1268,
}


@pytest.fixture(scope="module")
def taylor() -> pd.Series:
    return load_recording(DATA / RECORDINGS["taylor_electricity_demand"])


@pytest.mark.parametrize("name", sorted(ROWS))
def test_loader_parses_every_fixture(name):
    s = load_recording(DATA / RECORDINGS[name])
    assert len(s) == ROWS[name]
    assert str(s.index.tz) == "UTC"
    assert s.index.is_monotonic_increasing and s.index.is_unique
    assert s.dtype == np.float64 and not s.isna().any()


def test_water_flow_labels_sit_on_real_low_flow_and_gaps():
    s = load_recording(DATA / RECORDINGS["water_flow"])
    labels = real_labels("water_flow", s)
    process = labels[labels["kind"] != "dropout"]
    assert len(process) == 4
    normal = s.median()
    for row in process.itertuples():
        inside = s[(s.index >= row.starts_at) & (s.index < row.ends_at)]
        assert (inside - normal).abs().max() > 5  # far from the normal ~102 l/s
    # every gap of more than two steps is labelled, and no reading falls inside one
    drops = labels[labels["kind"] == "dropout"]
    assert len(drops) == len(gaps(s)) > 0
    for row in drops.itertuples():
        assert not ((s.index >= row.starts_at) & (s.index < row.ends_at)).any()
    assert real_labels("seattle_temperature").empty


def test_noise_sigma_recovers_gaussian_noise_under_a_daily_cycle():
    idx = pd.date_range("2024-01-01", periods=48 * 21, freq="30min", tz="UTC")
    rng = np.random.default_rng(1)
    cycle = 10 * np.sin(2 * np.pi * np.arange(len(idx)) / 48)
    s = pd.Series(100 + cycle + rng.normal(0, 2.0, len(idx)), index=idx)
    assert noise_sigma(s, ("24h",)) == pytest.approx(2.0, rel=0.15)


def test_real_scenario_is_deterministic_per_seed(taylor):
    a, b, c = real_scenario(taylor, 3), real_scenario(taylor, 3), real_scenario(taylor, 4)
    pd.testing.assert_series_equal(a.series, b.series)
    pd.testing.assert_frame_equal(a.labels, b.labels)
    assert a.clean.index[0] != c.clean.index[0] or not a.labels.equals(c.labels)
    assert a.model is None


def test_real_scenario_labels_match_the_injected_changes(taylor):
    sc = real_scenario(taylor, 5, days=35, periods=("24h", "7d"))
    lab = sc.labels.set_index("kind")
    assert sorted(lab.index) == sorted(k.value for k in EventKind)
    assert (sc.labels["starts_at"] >= sc.clean.index[0] + sc.warmup).all()
    # the clean twin is the untouched real window
    pd.testing.assert_series_equal(sc.clean, taylor.loc[sc.clean.index].rename("value"))
    sigma = noise_sigma(sc.clean, ("24h", "7d"))
    sized = sc.labels.dropna(subset=["magnitude_sigma"])
    np.testing.assert_allclose(sized["magnitude"], sized["magnitude_sigma"] * sigma)
    common = sc.series.index
    diff = (sc.series - sc.clean.loc[common]).abs()
    inside = np.zeros(len(common), dtype=bool)
    for ev in sc.events:
        inside |= ev.mask(common)
    assert (diff[~inside] == 0).all()  # nothing changed outside the labels
    spike = lab.loc["spike"]
    got = sc.series[spike["starts_at"]] - sc.clean[spike["starts_at"]]
    assert got == pytest.approx(spike["magnitude"])
    drop = lab.loc["dropout"]
    gone = sc.clean.index[
        (sc.clean.index >= drop["starts_at"]) & (sc.clean.index < drop["ends_at"])
    ]
    assert len(gone) >= 4 and not gone.isin(common).any()
    stuck = lab.loc["stuck"]
    held = sc.series[(common >= stuck["starts_at"]) & (common < stuck["ends_at"])]
    assert held.nunique() == 1


def test_rolling_z_flags_a_10_sigma_spike_and_not_a_clean_sine():
    idx = pd.date_range("2024-01-01", periods=48 * 7, freq="30min", tz="UTC")
    rng = np.random.default_rng(0)
    noisy = pd.Series(50 + rng.normal(0, 1.0, len(idx)), index=idx)
    noisy.iloc[200] += 10.0
    eps = RollingZDetector().episodes(noisy)
    assert len(eps) == 1 and eps["start"].iloc[0] == idx[200]
    sine = pd.Series(100 + 10 * np.sin(2 * np.pi * np.arange(len(idx)) / 48), index=idx)
    assert RollingZDetector().episodes(sine).empty
    assert "rolling_z" in baseline_detectors()


def test_real_evaluation_end_to_end(taylor):
    ev, st = run_evaluation(
        1, 11, source="real", backgrounds={"taylor": taylor}, detectors=("stuck",), days=28
    )
    assert set(ev["background"]) == {"taylor"} and set(ev["scenario"]) == {11}
    table = summarize(ev, st)
    assert list(table.columns) == SUMMARY_COLUMNS
    assert {"stuck", "combined", "rolling_z", "static_threshold", "random"} <= set(
        table["detector"]
    )
    stuck = table[(table["detector"] == "stuck") & (table["kind"] == "stuck")]
    assert stuck["recall"].iloc[0] == 1.0


def test_clean_days_counts_false_alerts_per_sensor(taylor):
    wf = load_recording(DATA / RECORDINGS["water_flow"])
    labels = {"water_flow": real_labels("water_flow", wf)}
    out = clean_days(
        {"taylor": taylor.iloc[: 48 * 28], "water_flow": wf},
        labels=labels,
        detectors=("stuck",),
        baselines=(),
    )
    assert list(out.columns) == CLEAN_COLUMNS
    assert set(out["sensor"]) == {"taylor", "water_flow"}
    row = out.set_index(["sensor", "detector"]).loc[("taylor", "stuck")]
    assert row["days"] == pytest.approx(14, abs=0.1)
    assert row["false_alerts_per_30d"] == pytest.approx(30 * row["false_alerts"] / row["days"])
    assert np.isnan(row["recall"]) and np.isnan(row["nab"])
    wf_row = out.set_index(["sensor", "detector"]).loc[("water_flow", "stuck")]
    assert wf_row["events"] > 0 and not np.isnan(wf_row["nab"])


def test_real_evaluation_needs_backgrounds():
    with pytest.raises(ValueError, match="backgrounds"):
        run_evaluation(1, 0, source="real")


def test_rolling_z_at_a_budget_raises_its_threshold_on_heavy_tails():
    idx = pd.date_range("2024-01-01", periods=48 * 28, freq="30min", tz="UTC")
    rng = np.random.default_rng(2)
    heavy = pd.Series(50 + rng.standard_t(2, len(idx)), index=idx)
    plain = RollingZDetector().fit(heavy)
    budgeted = RollingZDetector(budget=2.0, train_window="28d").fit(heavy)
    assert plain.threshold_ == 4.0
    assert budgeted.threshold_ > 4.0
    flagged = budgeted.detect(heavy)["flag"]
    assert flagged.sum() < plain.detect(heavy)["flag"].sum()
