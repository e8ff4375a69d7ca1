"""Asset detectors: relationship breaks inside every sensor's range, contributors, causality,
the frame contract; and the simulated pump they are measured on."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from plantcast.core.errors import InputError, NotEnoughData
from plantcast.detect import NotFitted
from plantcast.detect.multivariate import (
    SHARE,
    NormalBehaviourDetector,
    PCADetector,
    validate_frame,
)
from plantcast.signals.pump import (
    FAULTS,
    RELATION_SIGMA,
    SENSORS,
    generate_pump_scenario,
)

DETECTORS = {"normal_behaviour": NormalBehaviourDetector, "pca_t2q": PCADetector}


def _scored(eps: pd.DataFrame, scenario) -> pd.DataFrame:
    return eps[eps["end"] >= scenario.frame.index[0] + scenario.warmup]


@pytest.fixture(scope="module")
def pump():
    """Three weeks of a pump: two fault-free weeks to learn from, then an impeller wearing."""
    return generate_pump_scenario(3, days=21, faults=("impeller_wear",), magnitudes_sigma=(8, 10))


def test_pump_is_seeded_and_its_faults_stay_inside_every_range():
    a = generate_pump_scenario(5)
    b = generate_pump_scenario(5)
    pd.testing.assert_frame_equal(a.frame, b.frame)
    assert not a.frame.equals(generate_pump_scenario(6).frame)
    assert sorted(a.labels["kind"]) == sorted(FAULTS)
    assert list(a.frame.columns) == list(SENSORS)
    inside = (a.frame >= a.ranges["low"]) & (a.frame <= a.ranges["high"])
    assert inside.all().all()  # each sensor alone looks normal
    for ev in a.labels.itertuples():
        during = (a.frame.index >= ev.starts_at) & (a.frame.index < ev.ends_at)
        broken = (a.frame.loc[during, ev.sensor] - a.clean.loc[during, ev.sensor]).abs()
        # the relation breaks by the labelled size (in σ of that relation), at its fullest
        assert broken.max() >= 0.9 * ev.magnitude_sigma * RELATION_SIGMA[ev.sensor]
        assert ev.magnitude_sigma >= 5
    outside = ~a.frame.index.isin(a.frame.index[a.frame.ne(a.clean).any(axis=1)])
    assert outside.sum() > 0.9 * len(a.frame)  # faults touch only their spans


def test_the_pump_sensors_are_coupled_and_sweep_wide_ranges():
    s = generate_pump_scenario(8).clean
    corr = s.corr()
    assert corr.loc["speed", ["flow", "discharge_pressure", "motor_current"]].min() > 0.95
    assert (s["speed"].max() - s["speed"].min()) > 100 * 4.0  # a duty profile, not a set point


@pytest.mark.parametrize("name", DETECTORS)
def test_a_relationship_break_is_caught_and_its_sensor_ranked_first(pump, name):
    det = DETECTORS[name]().fit(pump.train)
    eps = _scored(det.episodes(pump.frame), pump)
    fault = pump.labels.iloc[0]
    hit = eps[(eps["start"] <= fault["ends_at"]) & (eps["end"] >= fault["starts_at"])]
    assert len(hit) >= 1
    strongest = hit.sort_values("peak_score").iloc[-1]
    assert strongest["sensor"] == fault["sensor"] == strongest["contributors"][0]
    assert set(strongest["contributors"]) == set(SENSORS)
    assert sum(strongest["shares"].values()) == pytest.approx(1.0)
    assert len(eps) - len(hit) <= 1  # at most one false alarm in the rest of the week


@pytest.mark.parametrize("name", DETECTORS)
def test_a_clean_asset_is_not_flagged(pump, name):
    det = DETECTORS[name]().fit(pump.train)
    assert _scored(det.episodes(pump.clean), pump).empty


def test_shares_sum_to_one_and_the_top_sensor_reports_its_expected_value(pump):
    det = NormalBehaviourDetector().fit(pump.train)
    out = det.detect(pump.frame)
    shares = out[[f"{SHARE}{s}" for s in SENSORS]]
    assert np.allclose(shares.sum(axis=1), 1.0)
    fault = pump.labels.iloc[0]
    inside = out[(out.index >= fault["starts_at"]) & (out.index < fault["ends_at"])]
    peak = inside.loc[inside["score"].idxmax()]
    clean_value = pump.clean.loc[peak.name, fault["sensor"]]
    # the relations expect what the healthy pump would have read, not the faulty reading
    assert abs(peak["expected"] - clean_value) < abs(peak["value"] - clean_value)


@pytest.mark.parametrize("name", DETECTORS)
def test_scoring_is_causal(pump, name):
    """A row's score reads no later row, and a fit sees only what it is given."""
    det = DETECTORS[name]().fit(pump.train)
    cut = len(pump.train) + 200
    changed = pump.frame.copy()
    changed.iloc[cut:] = changed.iloc[cut:].to_numpy()[::-1]  # a different future
    a, b = det.detect(pump.frame), det.detect(changed)
    pd.testing.assert_frame_equal(a.iloc[:cut], b.iloc[:cut])
    assert not a["score"].iloc[cut:].equals(b["score"].iloc[cut:])
    # fitting on the history before t: the same model whatever follows t
    before = pump.frame.iloc[:cut]
    refit = DETECTORS[name]().fit(before)
    again = DETECTORS[name]().fit(changed.iloc[:cut])
    assert refit.threshold_ == again.threshold_


def test_a_row_missing_a_sensor_is_not_scored(pump):
    det = PCADetector().fit(pump.train)
    holed = pump.frame.copy()
    holed.iloc[2500, 2] = np.nan
    holed.iloc[2600] = np.nan  # every sensor missing: the row is dropped
    out = det.detect(holed)
    assert len(out) == len(holed) - 1
    row = out.loc[holed.index[2500]]
    assert np.isnan(row["score"]) and not row["flag"] and row["sensor"] is None


def test_training_with_gaps_uses_the_complete_rows(pump):
    train = pump.train.copy()
    train.iloc[::3, 1] = np.nan
    det = NormalBehaviourDetector().fit(train)
    assert det.is_fitted and np.isfinite(det.threshold_)


def test_bad_frames_are_refused_with_the_reason(pump):
    f = pump.frame
    with pytest.raises(InputError, match="DataFrame"):
        validate_frame(f["speed"])
    with pytest.raises(InputError, match="at least two"):
        validate_frame(f[["speed"]])
    with pytest.raises(InputError, match="naive"):
        validate_frame(f.tz_localize(None))
    with pytest.raises(InputError, match="not sorted"):
        validate_frame(f.iloc[::-1])
    with pytest.raises(InputError, match="floats; not: flow"):
        validate_frame(f.assign(flow=f["flow"].round().astype(int)))
    with pytest.raises(InputError, match="infinite values in: vibration"):
        validate_frame(f.assign(vibration=f["vibration"].replace(f["vibration"].iloc[4], np.inf)))
    with pytest.raises(InputError, match="duplicate sensor columns: speed"):
        validate_frame(pd.concat([f[["speed"]], f[["speed", "flow"]]], axis=1))


def test_fit_and_detect_preconditions(pump):
    with pytest.raises(NotFitted, match=r"call \.fit"):
        PCADetector().detect(pump.frame)
    with pytest.raises(NotEnoughData, match="training rows with every sensor"):
        PCADetector().fit(pump.train.iloc[:50])
    with pytest.raises(InputError, match=r"constant .*: flow"):
        PCADetector().fit(pump.train.assign(flow=1.0))
    det = PCADetector().fit(pump.train)
    with pytest.raises(InputError, match="missing vibration"):
        det.detect(pump.frame.drop(columns="vibration"))
    with pytest.raises(InputError, match="unknown oil_level"):
        det.detect(pump.frame.assign(oil_level=1.0))
    # the same sensors in another order are aligned, not refused
    shuffled = pump.frame[list(reversed(SENSORS))]
    pd.testing.assert_frame_equal(det.detect(shuffled), det.detect(pump.frame))
    with pytest.raises(InputError, match="unknown regressor 'svm'"):
        NormalBehaviourDetector("svm")
    with pytest.raises(ValueError, match="unknown fault kind 'leak'"):
        generate_pump_scenario(1, faults=("leak",))
