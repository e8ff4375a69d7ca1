"""Fitted once, scored many times: a pass stores each sensor's fitted detectors, the next pass
scores its new readings with them, and a fit that is old, drifted from or unreadable is
refitted — on the serial and the bulk path alike."""

from __future__ import annotations

import numpy as np
import pandas as pd

from plantcast.core.types import Source
from plantcast.services.detection import (
    CHUNK_SPAN,
    DETECTORS,
    DetectOptions,
    detect_sensor,
    explain_sensor,
)
from plantcast.services.detection_batch import detect_pass
from plantcast.services.detector_fits import REFIT_EVERY, VERSION, from_stored
from plantcast.signals import SignalModel, generate_readings
from plantcast.store.fits import StoredFit
from plantcast.store.maintenance import migrate
from plantcast.store.schema import detector_fits

STEP = pd.Timedelta("30min")
START = pd.Timestamp("2026-01-01", tz="UTC")
DAY = 48  # readings


def _series(seed: int, n: int, offset: int = 0) -> pd.Series:
    """The demo signal from reading ``offset`` on, ``n`` readings (the same for any split)."""
    whole = generate_readings(SignalModel(seed=seed), START, periods=offset + n, interval=STEP)
    return whole.iloc[offset:]


def _sensor(store, name: str, seed: int = 1, days: int = 7) -> int:
    """A sensor with ``days`` of readings whose last day is scored (a fit stored for it)."""
    sid = store.ensure_sensor(name, source=Source.IMPORTED, interval=STEP).id
    store.update_sensor_params(sid, {"periods": ["24h"]})
    series = _series(seed, days * DAY)
    store.write_readings(sid, series)
    detect_sensor(store, name, since=series.index[-DAY])
    return sid


def _append(store, sid: int, seed: int, n: int, *, shift: float = 0.0, spike: int | None = None):
    """The next ``n`` readings of the sensor's signal, optionally shifted, with a spike."""
    last = store.last_reading(sid)[0]
    offset = int((last - START) / STEP) + 1
    series = _series(seed, n, offset) + shift
    if spike is not None:
        series.iloc[spike] += 40.0
    store.write_readings(sid, series)


def _stored(store, sid: int) -> StoredFit | None:
    with store.transaction(readonly=True) as tx:
        return tx.get_fit(sid)


def _alerts(store, sid: int) -> set:
    return {(a.detector, a.ts, a.ends_at) for a in store.list_alerts(sensor_id=sid, limit=1000)}


def test_refit_every_is_the_chunk_span():
    """A first pass scored in weekly chunks refits each chunk, as the evaluation replays it."""
    assert REFIT_EVERY == CHUNK_SPAN


def test_second_pass_scores_with_the_stored_fit_and_alerts_as_a_refit(store):
    reused, refit = _sensor(store, "reused"), _sensor(store, "refit")
    first = _stored(store, reused)
    assert first is not None and first.version == VERSION
    assert first.detectors == DETECTORS
    for sid in (reused, refit):
        _append(store, sid, seed=1, n=10, spike=5)
    result = detect_sensor(store, "reused")
    detect_sensor(store, "refit", options=DetectOptions(refit=True))
    assert result.scored == 10
    again = _stored(store, reused)
    assert (again.fitted_at, again.trained_until) == (first.fitted_at, first.trained_until)
    assert _stored(store, refit).trained_until > first.trained_until  # refitted
    spike = store.last_reading(reused)[0] - 4 * STEP
    assert any(ts == spike for _, ts, _ in _alerts(store, reused))  # not vacuous
    assert _alerts(store, reused) == _alerts(store, refit)


def test_a_fit_older_than_a_week_is_refitted(store):
    sid = _sensor(store, "aging")
    first = _stored(store, sid)
    _append(store, sid, seed=1, n=7 * DAY)  # a week more: still scored with the fit
    detect_sensor(store, "aging")
    assert _stored(store, sid).fitted_at == first.fitted_at
    _append(store, sid, seed=1, n=10)  # now the fit ends more than a week before them
    detect_sensor(store, "aging")
    later = _stored(store, sid)
    assert later.fitted_at > first.fitted_at
    assert later.trained_until > first.trained_until + 7 * pd.Timedelta("1D")


def test_drifted_readings_are_scored_by_a_refit(store):
    sid = _sensor(store, "drifting")
    first = _stored(store, sid)
    _append(store, sid, seed=1, n=10, shift=200.0)
    detect_sensor(store, "drifting")
    later = _stored(store, sid)
    assert later.fitted_at > first.fitted_at
    assert later.trained_until > first.trained_until


def test_a_drifted_fit_is_refitted_again_only_once_the_history_has_grown(store):
    """After a refit for drift, more drifted readings a pass later are scored with it: a
    refit then would learn from nearly the same history. Once the history since the fit has
    grown by ``DRIFT_SPACING`` of its training span (a week: 21 h), it is refitted again."""
    from plantcast.services.detector_fits import DRIFT_SPACING

    sid = _sensor(store, "drifting")
    _append(store, sid, seed=1, n=10, shift=200.0)
    detect_sensor(store, "drifting")
    refit = _stored(store, sid)  # the refit for drift, trained on the week before them
    _append(store, sid, seed=1, n=10, shift=200.0)  # 5 h more, still drifted
    assert detect_sensor(store, "drifting").scored == 10
    assert _stored(store, sid).fitted_at == refit.fitted_at  # scored with it, not refitted
    span = from_stored(refit).span()
    more = int(DRIFT_SPACING * span / STEP)  # readings that grow the history enough
    _append(store, sid, seed=1, n=more, shift=200.0)
    detect_sensor(store, "drifting")  # these were not history yet: scored with the fit
    assert _stored(store, sid).fitted_at == refit.fitted_at
    _append(store, sid, seed=1, n=10, shift=200.0)
    detect_sensor(store, "drifting")  # now they are, and the fit is refitted
    assert _stored(store, sid).fitted_at > refit.fitted_at


def test_a_state_that_cannot_be_loaded_is_refitted_not_an_error(store):
    bad, old = _sensor(store, "bad", seed=2), _sensor(store, "old", seed=3)
    with store.transaction() as tx:
        row = tx.get_fit(old)
        tx.put_fit(StoredFit(bad, row.detectors, row.periods, row.trained_until,
                             row.fitted_at, VERSION, b"not a pickle"))  # fmt: skip
        tx.put_fit(StoredFit(old, row.detectors, row.periods, row.trained_until,
                             row.fitted_at, VERSION + 1, row.state))  # fmt: skip
    assert from_stored(_stored(store, bad)) is None
    assert from_stored(_stored(store, old)) is None
    for sid, seed in ((bad, 2), (old, 3)):
        _append(store, sid, seed=seed, n=10)
    results = detect_pass(store, ["bad", "old"])
    assert all(r.scored == 10 for r in results.values())
    for sid in (bad, old):
        assert from_stored(_stored(store, sid)) is not None  # refitted and stored again


def test_bulk_and_serial_store_the_same_fit(store):
    sid = store.ensure_sensor("serial", source=Source.IMPORTED, interval=STEP).id
    bid = store.ensure_sensor("bulk", source=Source.IMPORTED, interval=STEP).id
    others = [store.ensure_sensor(f"bulk{i}", source=Source.IMPORTED, interval=STEP).id
              for i in range(2)]  # fmt: skip
    series = _series(4, 7 * DAY)
    for i in (sid, bid, *others):
        store.update_sensor_params(i, {"periods": ["24h"]})
        store.write_readings(i, series)
    since = series.index[-DAY]
    detect_sensor(store, "serial", since=since)
    detect_pass(store, ["bulk", "bulk0", "bulk1"], since=since)
    s, b = _stored(store, sid), _stored(store, bid)
    assert (s.detectors, s.periods, s.trained_until) == (b.detectors, b.periods, b.trained_until)
    fs, fb = from_stored(s), from_stored(b)
    assert (fs.trained_from, fs.readings, fs.level, fs.scale) == (
        fb.trained_from,
        fb.readings,
        fb.level,
        fb.scale,
    )
    for name, det in fs.detectors.items():
        assert det.threshold_ == fb.detectors[name].threshold_
    assert np.isfinite(fs.scale) and fs.scale > 0
    # the next bulk pass scores with it, as the serial one does
    for i in (sid, bid, *others):
        _append(store, i, seed=4, n=10, spike=3)
    detect_sensor(store, "serial")
    results = detect_pass(store, ["bulk", "bulk0", "bulk1"])
    assert all(r.scored == 10 for r in results.values())
    assert _stored(store, bid).fitted_at == b.fitted_at
    assert _stored(store, sid).fitted_at == s.fitted_at
    assert _alerts(store, sid) == _alerts(store, bid)


def test_explain_says_when_the_stored_fit_was_made(store):
    _sensor(store, "explained")
    info = explain_sensor(store, "explained")
    assert str(info["stored fit"]).startswith("fitted 20")
    assert "readings" in str(info["stored fit"])
    store.ensure_sensor("new", source=Source.IMPORTED, interval=STEP)
    store.write_readings(store.get_sensor("new").id, _series(1, DAY))
    assert str(explain_sensor(store, "new")["stored fit"]).startswith("none")


def test_migrate_creates_the_fit_table_on_an_older_database(store):
    with store.write() as conn:
        detector_fits.drop(conn)
    assert "detector_fits" in migrate(store).created
    _sensor(store, "after")  # the pass stores its fit there
    assert _stored(store, store.get_sensor("after").id) is not None


def test_a_fit_missing_a_detector_is_refitted_as_the_history_grows_not_every_pass(store):
    """A 1 s sensor with 110 readings: ``drift`` cannot fit yet (it needs 128). Its fit is
    reused until the history before a pass's new readings holds the 128 readings drift asked
    for, then refitted at that pass (and ``drift`` fits): two fits over eight passes, not one
    a pass, and drift from the first pass it can fit (a quarter's growth waited two more)."""
    idx = pd.date_range(START, periods=150, freq="1s", name="ts")
    values = pd.Series(10.0 + np.random.default_rng(3).normal(0, 1, len(idx)), index=idx)
    sid = store.ensure_sensor("young", source=Source.IMPORTED, interval=pd.Timedelta("1s")).id
    store.update_sensor_params(sid, {"periods": []})
    store.write_readings(sid, values.iloc[:110])
    detect_sensor(store, "young")
    made, skipped = [], []
    for k in range(8):
        store.write_readings(sid, values.iloc[110 + 5 * k : 115 + 5 * k])
        result = detect_sensor(store, "young")
        assert result.scored == 5
        made.append(_stored(store, sid).fitted_at)
        skipped.append("drift" in result.skipped)
    # passes 0-3 score from readings 110-125 (fewer than 128 before them); pass 4 from 130
    assert skipped == [True] * 4 + [False] * 4
    assert len(set(made)) == 2  # the fit missing drift reused, then one refit


def _young_tags(store, prefix: str, *, total: int, first: int, n: int = 30):
    """``n`` new 1 s tags created together, without a season, each with its ``first``
    readings stored: their names, and per tag its id and all ``total`` readings to come."""
    idx = pd.date_range(START, periods=total, freq="1s", name="ts")
    names = [f"{prefix}{k:02d}" for k in range(n)]
    ids = []
    for k, name in enumerate(names):
        sid = store.ensure_sensor(name, source=Source.IMPORTED, interval=pd.Timedelta("1s")).id
        store.update_sensor_params(sid, {"periods": []})
        values = pd.Series(10.0 + np.random.default_rng(k).normal(0, 1, len(idx)), index=idx)
        store.write_readings(sid, values.iloc[:first])
        ids.append((sid, values))
    return names, ids


def test_a_pass_refits_so_many_growing_sensors_the_most_overdue_first(store):
    """30 young 1 s sensors created together, all due a growth refit at once: a pass refits
    ``GROWTH_REFITS_LEAST`` (20) of them and scores the rest with their fits; the next pass
    refits the other 10. Every sensor's new readings are scored at each pass."""
    from plantcast.services.detection_batch import GROWTH_REFITS_LEAST

    names, ids = _young_tags(store, "tag", total=200, first=110)
    detect_pass(store, names)

    def made() -> list:
        return [_stored(store, sid).fitted_at for sid, _ in ids]

    def grow(lo: int, hi: int) -> dict:
        for sid, values in ids:
            store.write_readings(sid, values.iloc[lo:hi])
        return detect_pass(store, names)

    grow(110, 115)  # the first fits were in-sample: refitted, drift still missing (110 < 128)
    grow(115, 150)  # scored with those fits: 115 readings before the new ones, under 128
    before = made()
    first = grow(150, 155)  # now 150 readings before the new ones: every fit is due
    after_first = made()
    assert all(r.scored == 5 for r in first.values())
    refitted = sum(a != b for a, b in zip(before, after_first, strict=True))
    assert refitted == GROWTH_REFITS_LEAST
    second = grow(155, 160)
    assert all(r.scored == 5 for r in second.values())
    rest = sum(a != b for a, b in zip(after_first, made(), strict=True))
    assert rest == len(names) - GROWTH_REFITS_LEAST


def test_a_pass_refits_so_many_first_in_sample_fits_and_scores_the_rest_with_them(store):
    """30 new 1 s tags first scored together (each fit in-sample, on its own first readings):
    the next pass refits ``GROWTH_REFITS_LEAST`` (20) of them on their history and scores the
    other 10 with their first fits (their new readings were not in them); the pass after
    refits those 10. (A plant's 1,000 new tags had a second pass refitting all 1,000.)"""
    from plantcast.services.detection_batch import GROWTH_REFITS_LEAST

    names, ids = _young_tags(store, "new", total=400, first=300)

    def grow(lo: int, hi: int) -> tuple[dict, list]:
        for sid, values in ids:
            store.write_readings(sid, values.iloc[lo:hi])
        results = detect_pass(store, names)
        return results, [from_stored(_stored(store, sid)) for sid, _ in ids]

    detect_pass(store, names)
    first = [from_stored(_stored(store, sid)) for sid, _ in ids]
    assert all(f.in_sample for f in first)
    results, second = grow(300, 305)
    assert all(r.scored == 5 for r in results.values())
    assert sum(not f.in_sample for f in second) == GROWTH_REFITS_LEAST
    results, third = grow(305, 310)
    assert all(r.scored == 5 for r in results.values())
    assert not any(f.in_sample for f in third)


def test_scored_until_marks_are_upserted_in_one_statement(store):
    """The marks of a pass: new pairs inserted, known ones moved (also back), others kept."""
    a = store.ensure_sensor("marks_a", source=Source.IMPORTED, interval=STEP).id
    b = store.ensure_sensor("marks_b", source=Source.IMPORTED, interval=STEP).id
    t0, t1 = START + STEP * 3, START + STEP * 9 + pd.Timedelta("1us")
    with store.transaction() as tx:
        tx.set_scored_until(a, "stuck", t1)
        tx.set_scored_until(b, "drift", t0)
    with store.transaction() as tx:
        tx.set_scored_until_many({(a, "stuck"): t0, (a, "drift"): t1, (b, "stuck"): t1})
    with store.transaction(readonly=True) as tx:
        marks = tx.scored_until_many([a, b])
    assert marks == {(a, "stuck"): t0, (a, "drift"): t1, (b, "stuck"): t1, (b, "drift"): t0}
