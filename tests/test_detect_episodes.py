"""Episodes, the alert lifecycle and the evaluation metrics, checked against hand-made cases."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from plantcast.detect import find_episodes, merge_episodes
from plantcast.detect.alerts import drop_uncorroborated
from plantcast.detect.base import score_frame
from plantcast.detect.evaluation import match_events, summarize, union_episodes
from plantcast.services.detector_evaluation import evaluate_detectors

IDX = pd.date_range("2024-01-01", periods=20, freq="30min", tz="UTC", name="ts")
STEP = pd.Timedelta("30min")


def frame(flags, scores=None):
    flags = np.array(flags + [0] * (20 - len(flags)), dtype=bool)
    scores = np.where(flags, 1.0, 0.0) if scores is None else np.asarray(scores, float)
    series = pd.Series(np.arange(20.0), index=IDX)
    return score_frame(series, scores, flags, series.to_numpy() - 0.5)


def test_contiguous_flags_are_one_episode_with_its_peak():
    scores = np.zeros(20)
    scores[3:7] = [1, 5, 2, 1]
    eps = find_episodes(frame([0, 0, 0, 1, 1, 1, 1, 0, 0, 1], scores))
    assert len(eps) == 2
    first = eps.iloc[0]
    assert (first["start"], first["end"], first["n_flagged"]) == (IDX[3], IDX[6], 4)
    assert (first["peak_ts"], first["peak_score"], first["value"]) == (IDX[4], 5.0, 4.0)
    assert first["expected"] == 3.5 and first["detected_at"] == IDX[3]


def test_max_gap_bridges_short_quiet_stretches_and_empty_is_typed():
    flags = [0, 1, 0, 0, 1, 0, 0, 0, 1]
    assert len(find_episodes(frame(flags), max_gap=2)) == 2
    assert len(find_episodes(frame(flags), max_gap=3)) == 1
    empty = find_episodes(frame([]))
    assert empty.empty and str(empty["start"].dtype) == "datetime64[ns, UTC]"


def _grouped_one_by_one(scores, max_gap, merge_gap, min_duration):
    """find_episodes' oracle: the flagged rows walked one by one."""
    rows, groups = list(scores.itertuples()), []
    flagged = [i for i, r in enumerate(rows) if r.flag]
    for i in flagged:
        if groups:
            j = groups[-1][-1]
            near = i - j <= max_gap + 1 or rows[i].Index - rows[j].Index <= merge_gap
            if near:
                groups[-1].append(i)
                continue
        groups.append([i])
    out = []
    for g in groups:
        peak = max(
            g, key=lambda i: (rows[i].score if rows[i].score == rows[i].score else -np.inf, -i)
        )
        start = min(rows[i].since for i in g) if "since" in scores else rows[g[0]].Index
        seen = min(rows[i].detected_at for i in g) if "detected_at" in scores else rows[g[0]].Index
        ends, last = rows[g[-1]].Index, scores.index[-1]
        if ends - start < min_duration and ends < last:
            continue
        r = rows[peak]
        out.append((start, ends, seen, len(g), r.Index, r.score, r.value, r.expected))
    return out


@pytest.mark.parametrize("seed", range(12))
def test_episodes_are_those_of_the_flagged_rows_walked_one_by_one(seed):
    """The grouping (numpy, on the flagged readings alone) against a plain loop: bridged by
    ``max_gap`` readings or ``merge_gap`` in time, short ones dropped unless still running,
    the peak the first highest score with NaN passed over, ``since``/``detected_at`` the
    earliest of the episode, those ending before ``ending_from`` left out — on random flags,
    scores with NaN and ties, irregular times."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(30, 300))
    idx = pd.DatetimeIndex(
        pd.Timestamp("2024-01-01", tz="UTC")
        + pd.to_timedelta(np.cumsum(rng.integers(1, 90, n)), "s")
    ).as_unit("us")
    flags = rng.random(n) < rng.choice([0.05, 0.3, 0.7])
    scores = rng.integers(0, 5, n).astype(float)  # ties
    scores[rng.random(n) < 0.1] = np.nan
    series = pd.Series(rng.normal(size=n), index=idx)
    extra = {}
    if seed % 2:
        back = pd.to_timedelta(rng.integers(0, 600, n), "s")
        extra = {"since": idx - back, "detected_at": idx - back / 2}
    frame = score_frame(series, scores, flags, rng.normal(size=n), **extra)
    max_gap, merge_gap = int(rng.integers(0, 3)), pd.Timedelta(int(rng.integers(0, 200)), "s")
    min_duration = pd.Timedelta(int(rng.integers(0, 400)), "s")
    got = find_episodes(frame, max_gap=max_gap, merge_gap=merge_gap, min_duration=min_duration)
    want = _grouped_one_by_one(frame, max_gap, merge_gap, min_duration)
    assert len(want) == len(got) and (
        len(want) > 0 or not flags.any() or min_duration > pd.Timedelta(0)
    )
    for row, expected in zip(got.itertuples(index=False), want, strict=True):
        assert tuple(row)[:5] == expected[:5]
        np.testing.assert_array_equal(tuple(row)[5:], expected[5:])
    assert str(got["start"].dt.tz) == "UTC" == str(got["detected_at"].dt.tz)
    for cut in (idx[int(rng.integers(0, n))], idx[0], idx[-1] + pd.Timedelta("1s")):
        late = find_episodes(
            frame, max_gap=max_gap, merge_gap=merge_gap, min_duration=min_duration, ending_from=cut
        )  # the same episodes, less those ending before the cut
        pd.testing.assert_frame_equal(late, got[got["end"] >= cut].reset_index(drop=True))


def _labels(*spans):
    rows = [(k, IDX[a], IDX[b], 1.0, 5.0) for k, a, b in spans]
    cols = ["kind", "starts_at", "ends_at", "magnitude", "magnitude_sigma"]
    return pd.DataFrame(rows, columns=cols)


def _eps(*spans):
    rows = [(IDX[a], IDX[b], IDX[d]) for a, b, d in spans]
    return pd.DataFrame(rows, columns=["start", "end", "detected_at"])


def test_match_events_oracle():
    labels = _labels(("spike", 2, 3), ("level_shift", 8, 12), ("stuck", 15, 17))
    # hits the spike (delay 0); hits the shift late (delay 2); one false positive; stuck missed
    # only via the tolerance: an episode at 19 is within ends_at (17) + 2 readings
    eps = _eps((2, 2, 2), (10, 11, 10), (6, 6, 6), (19, 19, 19))
    matched, fps = match_events(labels, eps, STEP, tolerance=2)
    assert matched["detected"].tolist() == [True, True, True]
    assert matched["delay"].tolist() == [0.0, 2.0, 4.0]
    assert fps == 1
    matched, fps = match_events(labels, eps, STEP, tolerance=1)
    assert matched["detected"].tolist() == [True, True, False] and fps == 2


def test_summary_metrics_oracle():
    events = pd.DataFrame(
        {
            "detector": ["d"] * 4,
            "kind": ["spike", "spike", "drift", "drift"],
            "detected": [True, False, True, True],
            "delay": [1.0, np.nan, 3.0, 5.0],
            "lead_h": [2.0, np.nan, 10.0, 4.0],
            "nab": [1.0, -1.0, 0.5, 0.5],
        }
    )
    stats = pd.DataFrame(
        {
            "detector": ["d"],
            "false_positives": [1],
            "fp_weight": [1.0],
            "clean_alerts": [2],
            "clean_days": [60.0],
        }
    )
    table = summarize(events, stats).set_index("kind")
    spike, all_ = table.loc["spike"], table.loc["all"]
    assert spike["precision"] == pytest.approx(1 / 2) and spike["recall"] == pytest.approx(1 / 2)
    assert spike["f1"] == pytest.approx(0.5)
    assert all_["precision"] == pytest.approx(3 / 4) and all_["recall"] == pytest.approx(3 / 4)
    assert table.loc["drift", "median_delay"] == 4.0
    assert table.loc["drift", "median_lead_h"] == 7.0 and all_["median_lead_h"] == 4.0
    # NAB: raw = Σ terms − 0.11 × Σ false-alert weights, 0 = all missed (−n), 100 = n
    assert all_["nab"] == pytest.approx(100 * (1.0 - 0.11 + 4) / 8)
    assert table.loc["spike", "nab"] == pytest.approx(100 * (0.0 - 0.11 + 2) / 4)
    assert all_["false_alerts_per_30d"] == pytest.approx(1.0)


def test_union_merges_overlaps_and_keeps_earliest_detection():
    u = union_episodes([_eps((2, 5, 3)), _eps((4, 8, 2), (10, 11, 10))])
    assert u["start"].tolist() == [IDX[2], IDX[10]]
    assert u["end"].tolist() == [IDX[8], IDX[11]] and u["detected_at"].iloc[0] == IDX[2]


def test_evaluate_detectors_table_and_progress():
    seen = []
    table = evaluate_detectors(2, 500, on_progress=lambda d, t: seen.append((d, t)))
    assert seen == [(1, 2), (2, 2)]
    assert {"combined", "random", "static_threshold", "residual_z"} <= set(table["detector"])
    combined = table[(table["detector"] == "combined") & (table["kind"] == "all")].iloc[0]
    assert combined["events"] == 12 and combined["recall"] >= 0.8


def _episode(start, end, score=3.0, detector="residual_z"):
    return {
        "start": IDX[start],
        "end": IDX[end],
        "detected_at": IDX[start],
        "n_flagged": 1,
        "peak_ts": IDX[start],
        "peak_score": score,
        "value": 1.0,
        "expected": 0.0,
        "detector": detector,
    }


def test_merge_episodes_opens_extends_closes_and_is_idempotent():
    new = pd.DataFrame([_episode(2, 4), _episode(10, 19, score=9.0)])
    updates, inserts = merge_episodes([], new, scored_until=IDX[19])
    assert updates == [] and len(inserts) == 2
    assert inserts[0]["ends_at"] == IDX[4] and inserts[1]["ends_at"] is None  # ongoing
    stored = [dict(a, id=i) for i, a in enumerate(inserts)]
    # running again on the same data changes nothing
    assert merge_episodes(stored, new, scored_until=IDX[19]) == ([], [])
    # later: the ongoing one ended at 12 (re-scored from its start); a new one starts at 18
    later = pd.DataFrame([_episode(10, 12, score=9.0), _episode(18, 19)])
    updates, inserts = merge_episodes(stored, later, scored_until=IDX[19], gap_tolerance="1h")
    assert updates == [{"id": 1, "ends_at": IDX[12]}]
    assert len(inserts) == 1 and inserts[0]["ts"] == IDX[18]
    # an episode within the gap tolerance extends the closed alert instead of opening one
    near = pd.DataFrame([_episode(5, 6, score=4.0)])
    updates, inserts = merge_episodes(stored, near, gap_tolerance="30min")
    assert inserts == [] and updates == [
        {
            "id": 0,
            "ends_at": IDX[6],
            "score": 4.0,  # value and expected at the new peak are those stored: unchanged
            "detectors": {"residual_z": 4.0},
        }
    ]


def test_detectors_agreeing_on_an_episode_make_one_alert_that_lists_them():
    new = pd.DataFrame(
        [_episode(3, 6, score=8.0), _episode(4, 9, score=5.0, detector="level_shift")]
    )
    updates, inserts = merge_episodes([], new, scored_until=IDX[19])
    assert updates == [] and len(inserts) == 1
    alert = inserts[0]
    assert (alert["detector"], alert["score"], alert["ts"], alert["ends_at"]) == (
        "residual_z",
        8.0,
        IDX[3],
        IDX[9],
    )
    assert alert["detectors"] == {"residual_z": 8.0, "level_shift": 5.0}
    stored = [dict(alert, id=7)]
    assert merge_episodes(stored, new, scored_until=IDX[19]) == ([], [])  # idempotent
    # a third detector far from it (beyond every cooldown) opens its own alert
    apart = pd.DataFrame([_episode(15, 16, detector="stuck")])
    tol = {"residual_z": "1h", "level_shift": "1h", "stuck": "30min"}
    updates, inserts = merge_episodes(stored, apart, gap_tolerance=tol)
    assert updates == [] and [a["detectors"] for a in inserts] == [{"stuck": 3.0}]
    # within the stuck detector's cooldown it joins the alert, the opener's peak unchanged
    near = pd.DataFrame([_episode(10, 11, score=2.0, detector="stuck")])
    updates, inserts = merge_episodes(stored, near, gap_tolerance=tol)
    assert inserts == [] and updates == [
        {
            "id": 7,
            "ends_at": IDX[11],
            "detectors": {"residual_z": 8.0, "level_shift": 5.0, "stuck": 2.0},
        }
    ]


def test_an_alert_stays_open_while_any_agreeing_detector_is_still_flagging():
    stored = [
        {
            "id": 1,
            "detector": "residual_z",
            "ts": IDX[3],
            "ends_at": None,
            "score": 8.0,
            "detectors": {"residual_z": 8.0, "level_shift": 5.0},
        }
    ]
    new = pd.DataFrame(
        [_episode(3, 5, score=8.0), _episode(4, 19, score=5.0, detector="level_shift")]
    )
    assert merge_episodes(stored, new, scored_until=IDX[19], resolve_after="1h") == ([], [])
    ended = pd.DataFrame(
        [_episode(3, 5, score=8.0), _episode(4, 12, score=5.0, detector="level_shift")]
    )
    updates, _ = merge_episodes(stored, ended, scored_until=IDX[19], resolve_after="1h")
    assert updates == [{"id": 1, "ends_at": IDX[12]}]


def test_an_unmatched_ongoing_alert_closes_only_when_all_its_detectors_were_scored():
    stored = [
        {
            "id": 1,
            "detector": "residual_z",
            "ts": IDX[3],
            "ends_at": None,
            "score": 8.0,
            "detectors": {"residual_z": 8.0, "level_shift": 5.0},
        }
    ]
    nothing = pd.DataFrame([_episode(15, 15)]).iloc[:0]
    kw = {"scored_until": IDX[19], "close_unmatched_at": IDX[10]}
    assert merge_episodes(stored, nothing, scored_detectors=("residual_z",), **kw) == ([], [])
    updates, _ = merge_episodes(
        stored, nothing, scored_detectors=("residual_z", "level_shift"), **kw
    )
    assert updates == [{"id": 1, "ends_at": IDX[10]}]
    # an alert stored before detectors were listed reads as raised by its one detector
    legacy = [{k: v for k, v in stored[0].items() if k != "detectors"}]
    updates, _ = merge_episodes(legacy, nothing, scored_detectors=("residual_z",), **kw)
    assert updates == [{"id": 1, "ends_at": IDX[10]}]


def test_a_memoryless_detectors_alert_keeps_where_its_episode_ended_and_closes_from_it():
    """A dropout's alert keeps its newest gap's end (``seen_until``): with no episode
    continuing it (the gap was not scored again), it stays open while that end is within
    ``resolve_after`` of the scored readings and then closes there, not where the pass began;
    an alert another detector agreed on is rescored whole, so it closes as before."""
    kw = {"resolve_after": "4h", "memoryless": ("dropout",), "close_unmatched_at": IDX[10]}
    gap = pd.DataFrame([_episode(4, 4, score=30.0, detector="dropout")])
    updates, inserts = merge_episodes([], gap, scored_until=IDX[5], **kw)
    assert updates == [] and len(inserts) == 1
    assert inserts[0]["ends_at"] is None and inserts[0]["seen_until"] == IDX[4]
    stored = [dict(inserts[0], id=1)]
    nothing = gap.iloc[:0]
    scored = {"scored_detectors": ("dropout", "residual_z")}
    for until in (IDX[10], IDX[12]):  # IDX[12] is 4 h after the gap: not yet resolved
        assert merge_episodes(stored, nothing, scored_until=until, **scored, **kw) == ([], [])
    updates, _ = merge_episodes(stored, nothing, scored_until=IDX[13], **scored, **kw)
    assert updates == [{"id": 1, "ends_at": IDX[4]}]  # where the gap ended, not IDX[10]
    # a later gap within the cooldown extends it and moves seen_until on
    again = pd.DataFrame([_episode(9, 9, score=12.0, detector="dropout")])
    updates, _ = merge_episodes(stored, again, scored_until=IDX[13], gap_tolerance="1h", **kw)
    assert updates == [{"id": 1, "seen_until": IDX[9]}]
    # another detector's episode that has ended joins it: still open while the gap is recent
    blip = pd.DataFrame([_episode(3, 3, score=9.0)])  # ended over 4 h before IDX[12]
    updates, _ = merge_episodes(stored, blip, scored_until=IDX[12], gap_tolerance="1h", **kw)
    assert updates == [{"id": 1, "detectors": {"dropout": 30.0, "residual_z": 9.0}}]
    # once another detector agreed, the alert is rescored whole: unmatched, it closes as before
    both = [dict(stored[0], detectors={"dropout": 30.0, "residual_z": 9.0})]
    updates, _ = merge_episodes(both, nothing, scored_until=IDX[11], **scored, **kw)
    assert updates == [{"id": 1, "ends_at": IDX[10]}]
    # without memoryless detectors named, nothing is kept: the merge is as it was
    plain = {k: v for k, v in kw.items() if k != "memoryless"}
    assert "seen_until" not in merge_episodes([], gap, scored_until=IDX[5], **plain)[1][0]


def test_a_lone_reading_nothing_corroborates_alerts_only_well_past_its_threshold():
    """residual_z at threshold 5: a lone reading at 6 alone is dropped, at 8 (≥ 1.25×) kept;
    a lone reading at 6 that level_shift flags within the tolerance is kept, and so is an
    episode of two flagged readings; a detector without a threshold keeps everything."""

    def eps(*rows):
        return pd.DataFrame([{**_episode(a, a, score=s), "n_flagged": n} for a, s, n in rows])

    found = {"residual_z": eps((2, 6.0, 1), (6, 8.0, 1), (10, 6.0, 1), (15, 6.0, 2))}
    found["level_shift"] = pd.DataFrame([_episode(11, 12, detector="level_shift")])
    kept = drop_uncorroborated(found, {"residual_z": 5.0}, tolerance="30min")
    assert list(kept["residual_z"]["start"]) == [IDX[6], IDX[10], IDX[15]]
    assert kept["level_shift"] is found["level_shift"]
    far = drop_uncorroborated(found, {"residual_z": 5.0}, tolerance="0s")
    assert list(far["residual_z"]["start"]) == [IDX[6], IDX[15]]
    assert drop_uncorroborated(found, {}) == found


def _hysteresis_reference(score: np.ndarray, enter: float, exit: float) -> np.ndarray:
    """The switch as first written: NaN as -inf for every reading, then the runs."""
    s = np.nan_to_num(np.asarray(score, dtype=np.float64), nan=-np.inf)
    exit = min(exit, enter)
    above, n = s >= exit, len(s)
    entered = above & (s >= enter)
    if n == 0 or not entered.any():
        return np.zeros(n, dtype=bool)
    starts = np.flatnonzero(np.r_[True, above[1:] != above[:-1]])
    run = np.cumsum(np.r_[True, above[1:] != above[:-1]]) - 1
    pos = np.arange(n)
    run_first = np.minimum.reduceat(np.where(entered, pos, n), starts)[run]
    return above & (pos >= run_first)


def test_hysteresis_answers_a_quiet_score_early_with_the_same_flags():
    """The early answer when nothing enters (most calls) changes no flag: NaN, ±inf and
    thresholds at the edges of the floats included, entering and not."""
    from plantcast.detect.episodes import hysteresis

    rng = np.random.default_rng(7)
    big = np.finfo(np.float64).max
    specials = [np.nan, np.inf, -np.inf, big, -big, 0.0]
    levels = [3.0, 0.5, -1.0, 0.0, big, -big, np.inf, -np.inf, np.nan]
    entered = 0
    for _ in range(300):
        n = int(rng.integers(0, 40))
        score = rng.normal(0, 1.5, n)
        hit = rng.random(n) < 0.15
        score[hit] = rng.choice(specials, hit.sum())
        enter = float(rng.choice(levels))
        exit = float(rng.choice([*levels, enter * 0.5]))
        want = _hysteresis_reference(score, enter, exit)
        np.testing.assert_array_equal(hysteresis(score, enter, exit), want)
        entered += bool(want.any())
    assert 30 < entered < 270  # both the early answer and the runs were compared
    edges = [  # where a NaN or -inf stand-in itself enters
        ([np.nan, np.nan], -np.inf, -np.inf),
        ([-np.inf, 1.0], -big, -big),
        ([np.nan, -np.inf], -big, -np.inf),
    ]
    for score, enter, exit in edges:
        want = _hysteresis_reference(np.array(score), enter, exit)
        assert want.any()
        np.testing.assert_array_equal(hysteresis(np.array(score), enter, exit), want)
