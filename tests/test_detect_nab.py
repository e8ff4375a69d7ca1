"""Early detection counts: lead time and the NAB score, checked against hand-computed cases."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from plantcast.detect.evaluation import (
    false_alert_weights,
    labelled_scores,
    match_events,
    nab_score,
    scaled_sigmoid,
)

IDX = pd.date_range("2024-01-01", periods=200, freq="1h", tz="UTC")
STEP = pd.Timedelta("1h")


def _labels(*spans):
    rows = [("level_shift", IDX[a], IDX[b]) for a, b in spans]
    return pd.DataFrame(rows, columns=["kind", "starts_at", "ends_at"])


def _alerts(*detections):
    """One-reading alerts detected where they start."""
    ts = [IDX[i] for i in detections]
    return pd.DataFrame({"start": ts, "end": ts, "detected_at": ts})


# two failure windows of 10 h each: [10, 20] and [100, 110] (ends_at 17, 107 + 3 readings)
LABELS = _labels((10, 17), (100, 107))


def _nab(*detections) -> float:
    return labelled_scores(LABELS, _alerts(*detections), STEP, tolerance=3)["nab"]


def test_the_scaled_sigmoid_is_nabs():
    assert scaled_sigmoid(-1.0) == pytest.approx(2 / (1 + math.exp(-5)) - 1)
    assert scaled_sigmoid(0.0) == 0.0 and scaled_sigmoid(3.5) == -1.0
    assert scaled_sigmoid(1.0) == pytest.approx(2 / (1 + math.exp(5)) - 1)


def test_no_alerts_score_0_and_alerts_at_each_window_start_score_100():
    assert _nab() == 0.0
    assert _nab(10, 100) == pytest.approx(100.0)


def test_earlier_in_the_window_scores_more_and_leads_longer():
    start, middle, end = (labelled_scores(LABELS, _alerts(i, 100), STEP) for i in (10, 15, 20))
    assert start["nab"] > middle["nab"] > end["nab"]
    # at the window's end the event earns 0 (not the −1 of a miss): 100 × (0 + 1 + 2) / 4
    assert end["nab"] == pytest.approx(75.0)
    # halfway: σ(−0.5) / σ(−1) for that window
    half = (2 / (1 + math.exp(-2.5)) - 1) / (2 / (1 + math.exp(-5)) - 1)
    assert middle["nab"] == pytest.approx(100 * (half + 1 + 2) / 4)
    matched, _ = match_events(LABELS, _alerts(15, 100), STEP, tolerance=3)
    assert matched["lead_h"].tolist() == [5.0, 10.0]  # hours before the window's end
    assert matched["delay"].tolist() == [5.0, 0.0]
    assert start["median_lead_h"] == 10.0 and middle["median_lead_h"] == 7.5


def test_a_missed_window_costs_what_a_detection_at_its_start_earns():
    assert _nab(10) == pytest.approx(50.0)


def test_a_false_alert_lowers_the_score_by_its_weight():
    assert _nab(10, 100, 60) < _nab(10, 100)
    # before any window: the full A_FP; 4 window lengths (40 h) past one: full too
    assert _nab(10, 100, 2) == pytest.approx(100 * (2 - 0.11 + 2) / 4)
    assert _nab(10, 100, 60) == pytest.approx(100 * (2 - 0.11 + 2) / 4)
    # just past a window: NAB barely penalizes it (−σ(0.1) of the weight)
    near = _nab(10, 100, 21)
    assert _nab(10, 100, 2) < near < 100.0
    w = false_alert_weights(LABELS, _alerts(10, 21, 2, 60), STEP, tolerance=3)
    np.testing.assert_allclose(w, [-scaled_sigmoid(0.1), 1.0, 1.0])


def test_labelled_scores_give_precision_recall_and_f1():
    got = labelled_scores(LABELS, _alerts(12, 2, 60), STEP)
    assert (got["events"], got["detected"], got["alerts"], got["false_alerts"]) == (2, 1, 3, 2)
    assert got["recall"] == 0.5 and got["precision"] == pytest.approx(1 / 3)
    assert got["f1"] == pytest.approx(2 * 0.5 / 3 / (0.5 + 1 / 3))


def test_nab_without_events_is_undefined():
    assert math.isnan(nab_score(np.array([]), 0.0))
