"""A fast sensor's pass reads what its detectors' scores depend on, and finds the same.

Each detector says how many readings before a reading its score depends on
(``Detector.context_points``); a sensor with no ongoing alert is scored from that far back
(``services.detection.scoring_context``), not from its whole context: a 1 s sensor's pass reads
minutes, not hours. Checked here: each detector's claim (its score of the last readings, from
that far back, equals its score of the whole series), and that an incremental pass of a 1 s
sensor read short finds on its new readings what the whole context finds, catches a planted
fault, and, while an alert is ongoing, reads from the short context before the alert's start
and finds what the whole context finds; a dropout's ongoing alert (a memoryless detector's,
which keeps where its gap ended) is not rescored at all, and closes as a rescoring would close
it — on SQLite and PostgreSQL.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pandas as pd
import pytest

from plantcast.core.types import Sensor, Source
from plantcast.services.detection import (
    CONTEXT_MARGIN,
    DETECTORS,
    DetectOptions,
    alert_changes,
    alert_record,
    context_span,
    detect_sensor,
    make_detectors,
    plan_sensor,
    read_chunk,
    score_chunk,
    scoring_context,
)
from plantcast.signals import SignalModel, generate_readings

START = pd.Timestamp("2026-01-01", tz="UTC")
TAIL = 40  # the last readings whose scores are compared


def _signal(step: str, n: int, seed: int = 3) -> pd.Series:
    return generate_readings(SignalModel(seed=seed), START, periods=n, interval=pd.Timedelta(step))


@pytest.mark.parametrize(("step", "periods"), [("30min", ("24h",)), ("1s", ()), ("1min", ("24h",))])
@pytest.mark.parametrize("name", DETECTORS)
def test_a_detectors_score_needs_no_more_than_its_context_points(name, step, periods):
    """Scored from ``context_points`` readings before the last ``TAIL`` on, each detector
    gives them the scores (to rounding) and flags the whole series (several times longer)
    gives them."""
    series = _signal(step, 8_000)
    v = series.to_numpy().copy()
    v[-25] += 30.0  # a spike among the compared readings: scores there are not all quiet
    series = pd.Series(v, index=series.index)
    sensor = Sensor(1, "s", "", "", Source.IMPORTED, pd.Timedelta(step), START)
    det = make_detectors(sensor, periods, (name,))[name].fit(series.iloc[:4_000])
    points = det.context_points()
    assert points is not None and 0 < points < 8_000 - TAIL - 500  # a real bound, shorter
    whole = det.detect(series)
    part = det.detect(series.iloc[-(TAIL + points) :])
    a, b = whole["score"].to_numpy()[-TAIL:], part["score"].to_numpy()[-TAIL:]
    # to rounding (a rolling mean's running sum depends on where it starts); an EWMA
    # forgets its start to within (1 - alpha)^(8 span)
    tol = 1e-5 if name == "drift" else 1e-12
    np.testing.assert_allclose(b, a, rtol=tol, atol=tol)
    np.testing.assert_array_equal(part["flag"].to_numpy()[-TAIL:], whole["flag"].to_numpy()[-TAIL:])


def _fast_sensor(store, *, hours: float = 3.0) -> tuple[int, pd.Series]:
    """A 1 s sensor with ``hours`` of history, all scored (its fit stored), and no alert."""
    series = _signal("1s", int(hours * 3600) + 120, seed=5)
    sid = store.ensure_sensor("fast", source=Source.IMPORTED, interval=pd.Timedelta("1s")).id
    store.update_sensor_params(sid, {"periods": []})
    store.write_readings(sid, series.iloc[:-120])
    detect_sensor(store, "fast", since=series.index[-1800])
    return sid, series


def _in_a_dropout(store):
    """``_fast_sensor`` silent for 30 s and scored: its dropout alert ongoing, just opened."""
    sid, series = _fast_sensor(store)
    new = series.iloc[-120:-40].drop(series.index[-100:-70])  # the sensor silent for 30 s
    store.write_readings(sid, new)
    detect_sensor(store, "fast")
    (alert,) = store.list_alerts(sensor_id=sid)
    assert alert.detector == "dropout" and alert.ends_at is None  # ongoing: just now
    return sid, series, alert


def test_a_quiet_fast_sensor_is_read_short_and_finds_what_the_whole_context_finds(store):
    sid, series = _fast_sensor(store)
    assert not store.list_alerts(sensor_id=sid)  # quiet: nothing ongoing
    new = series.iloc[-120:].copy()
    new.iloc[60] += 25.0  # a spike among the new readings
    store.write_readings(sid, new)
    plan = plan_sensor(store, "fast")
    assert not plan.ongoing and plan.fit is not None and len(plan.chunks) == 1
    (a, b), options = plan.chunks[0], DetectOptions()
    short = scoring_context(plan, plan.fit)
    points = max(d.context_points() or 0 for d in plan.fit.detectors.values())
    assert short == pd.Timedelta("1s") * math.ceil(points * CONTEXT_MARGIN)
    assert short < 0.75 * context_span(plan.sensor)  # shorter than the whole 2.8 h context
    read = read_chunk(store, plan, plan.fit, a, b, options)
    whole = dataclasses.replace(plan, ongoing=True)  # as a pass with an ongoing alert reads
    read_whole = read_chunk(store, whole, whole.fit, a, b, options)
    assert len(read) < 0.75 * len(read_whole)
    quick = score_chunk(plan, read, a, b, options, plan.fit)
    full = score_chunk(whole, read_whole, a, b, options, whole.fit)
    assert quick is not None and full is not None and not quick.refitted
    assert quick.scored == full.scored == 120
    for name in full.found:
        got = quick.found[name]
        want = full.found[name]
        want = want[want["end"] >= a]  # the new readings' episodes
        assert list(got["start"]) == list(want["start"]), name
        assert list(got["end"]) == list(want["end"]), name
        np.testing.assert_allclose(got["peak_score"], want["peak_score"], rtol=1e-6)
    assert len(quick.found["residual_z"])  # the spike: not vacuous
    result = detect_sensor(store, "fast")
    assert result.scored == 120 and result.opened == 1
    (alert,) = store.list_alerts(sensor_id=sid)
    assert alert.ts == new.index[60]


def test_an_ongoing_alert_is_scored_from_its_start_and_finds_what_the_whole_context_finds(store):
    """While an alert is ongoing its episode is scored whole: from the short context before
    the alert's start, not the sensor's whole context (a plant-wide fault would otherwise
    make every tag's pass read hours), with the alerts the whole context gives. The alert
    here is a dropout's stored before alerts kept where their gap ended (``seen_until``
    cleared): such an alert is rescored, as any detector's is."""
    sid, series, alert = _in_a_dropout(store)
    with store.transaction() as tx:
        tx.update_alert(alert.id, seen_until=None)
    later = series.iloc[-40:]
    store.write_readings(sid, later)
    plan = plan_sensor(store, "fast")
    assert plan.ongoing and plan.ongoing_since == alert.ts
    assert plan.ongoing_detectors == {"dropout"}  # it alone scores the alert's episode whole
    short = scoring_context(dataclasses.replace(plan, ongoing=False), plan.fit)
    context = scoring_context(plan, plan.fit)
    assert context == short + (later.index[-1] - alert.ts) < context_span(plan.sensor)
    # its start and detectors unknown: every detector scores all of it
    whole = dataclasses.replace(plan, ongoing_since=None, ongoing_detectors=None)
    assert scoring_context(whole, whole.fit) == context_span(plan.sensor)
    (a, b), options = plan.chunks[0], DetectOptions()
    for at in (a, a + pd.Timedelta("7s"), b):  # wherever a pass's chunk starts, the same back
        assert at - scoring_context(plan, plan.fit, at) == alert.ts - short
    read = read_chunk(store, plan, plan.fit, a, b, options)
    read_whole = read_chunk(store, whole, whole.fit, a, b, options)
    assert read.index[0] <= alert.ts - short and len(read) < 0.75 * len(read_whole)
    got = score_chunk(plan, read, a, b, options, plan.fit)
    want = score_chunk(whole, read_whole, a, b, options, whole.fit)
    assert got is not None and want is not None and got.scored == want.scored == 40
    for name in want.found:
        mine, theirs = got.found[name], want.found[name]
        theirs = theirs[theirs["end"] >= read.index[0] + short]  # what both windows score
        assert list(mine["start"]) == list(theirs["start"]), name
        assert list(mine["end"]) == list(theirs["end"]), name
    existing = [alert_record(x) for x in store.list_alerts(sensor_id=sid)]
    resolve = pd.Timedelta(options.resolve_after)
    assert alert_changes(existing, got, resolve) == alert_changes(existing, want, resolve)
    # the alert closes once the signal has been normal for resolve_after (here the pass's
    # own readings are longer than that: at the start of what it scored)
    detect_sensor(store, "fast", options=DetectOptions(resolve_after="20s"))
    (closed,) = store.list_alerts(sensor_id=sid)
    assert closed.id == alert.id and closed.ends_at is not None
    assert alert.ts <= closed.ends_at <= later.index[0]


def test_a_dropouts_ongoing_alert_is_not_rescored_and_closes_where_its_gap_ended(store):
    """A dropout's alert keeps where its gap ended (``seen_until``): while it is ongoing the
    pass reads only the new readings' context, as with no alert (a plant-wide dropout costs
    no long window, and keeps none in memory), changes what a rescoring of the whole context
    changes, and closes at the gap's end once the signal has been normal for
    ``resolve_after``."""
    sid, series, alert = _in_a_dropout(store)
    assert alert.seen_until == series.index[-70]  # the reading that ended the gap
    later = series.iloc[-40:]
    store.write_readings(sid, later)
    plan = plan_sensor(store, "fast")
    assert not plan.ongoing and plan.ongoing_since is None  # nothing to rescore
    rescored = dataclasses.replace(plan, ongoing=True, ongoing_since=alert.ts)
    assert scoring_context(plan, plan.fit) < scoring_context(rescored, rescored.fit)
    whole = dataclasses.replace(plan, ongoing=True)  # every detector, the whole context
    (a, b) = plan.chunks[0]
    existing = [alert_record(x) for x in store.list_alerts(sensor_id=sid)]
    for resolve_after, ends in (("2h", None), ("20s", alert.seen_until)):
        options = DetectOptions(resolve_after=resolve_after)
        read = read_chunk(store, plan, plan.fit, a, b, options)
        read_whole = read_chunk(store, whole, whole.fit, a, b, options)
        assert len(read) < 0.75 * len(read_whole)
        got = score_chunk(plan, read, a, b, options, plan.fit)
        want = score_chunk(whole, read_whole, a, b, options, whole.fit)
        assert got is not None and want is not None and got.scored == want.scored == 40
        assert got.found["dropout"].empty  # the gap is not scored again
        assert len(want.found["dropout"]) == (0 if ends else 1)  # rescored while ongoing
        resolve = pd.Timedelta(resolve_after)
        changes = alert_changes(existing, got, resolve)
        assert changes == alert_changes(existing, want, resolve)
        assert changes == (([{"id": alert.id, "ends_at": ends}], []) if ends else ([], []))
    detect_sensor(store, "fast", options=DetectOptions(resolve_after="20s"))
    (closed,) = store.list_alerts(sensor_id=sid)
    assert closed.id == alert.id and closed.ends_at == alert.seen_until


def test_an_older_alerts_table_gains_seen_until_and_its_dropout_alert_is_rescored_once(store):
    """``plantcast init`` adds ``seen_until`` to an older table; an ongoing dropout alert
    stored before has none, so the next pass rescores its gap whole (as before) and keeps
    where it ended: the pass after reads short."""
    sid, series, alert = _in_a_dropout(store)
    with store.write() as conn:  # the table as it was before
        conn.exec_driver_sql("ALTER TABLE alerts DROP COLUMN seen_until")
    assert "alerts.seen_until added" in store.init() and store.init() == []
    (old,) = store.list_alerts(sensor_id=sid)
    assert old.id == alert.id and old.seen_until is None and old.ends_at is None
    store.write_readings(sid, series.iloc[-40:-20])
    plan = plan_sensor(store, "fast")
    assert plan.ongoing_since == alert.ts and plan.ongoing_detectors == {"dropout"}
    detect_sensor(store, "fast")
    (now,) = store.list_alerts(sensor_id=sid)
    assert now.ends_at is None and now.seen_until == series.index[-70]
    store.write_readings(sid, series.iloc[-20:])
    assert not plan_sensor(store, "fast").ongoing
