"""What ``detect --follow`` keeps between passes (``detection_batch.PassMemory``): the same
alerts as passes that read everything, from reads of only the new readings and loads of only
the fits stored since — on SQLite and PostgreSQL."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from plantcast.core.types import Source
from plantcast.services.detection import DetectOptions
from plantcast.services.detection_batch import PassMemory, detect_pass
from plantcast.store.transaction import Transaction

STEP = pd.Timedelta("1s")
START = pd.Timestamp("2026-01-01", tz="UTC")
HISTORY = 1_500  # readings before following: enough for every detector (no growth refit)
NEW = 20  # readings between passes
PASSES = 6
FAULT = (3, 8)  # the pass whose readings start a +20σ step, and its first faulty reading


def _values(seed: int, fault: bool = True) -> pd.Series:
    n = HISTORY + NEW * PASSES
    idx = pd.date_range(START, periods=n, freq=STEP, name="ts")
    rng = np.random.default_rng(seed)
    values = 50.0 + 3.0 * np.sin(np.arange(n) / 60.0) + rng.normal(0.0, 1.0, n)
    at = HISTORY + NEW * FAULT[0] + FAULT[1]
    values[at:] += 20.0 * fault  # a step the detectors must find
    return pd.Series(values, index=idx)


def _plant(store, prefix: str, n: int = 3, fault: bool = True) -> list[tuple[str, int, pd.Series]]:
    out = []
    for k in range(n):
        name = f"{prefix}{k}"
        sid = store.ensure_sensor(name, source=Source.IMPORTED, interval=STEP).id
        store.update_sensor_params(sid, {"periods": []})
        values = _values(seed=k, fault=fault)
        store.write_readings(sid, values.iloc[:HISTORY])
        out.append((name, sid, values))
    return out


def _follow(store, plant, memory: PassMemory | None) -> None:
    names = [name for name, _, _ in plant]
    detect_pass(store, names, memory=memory)  # the first pass: fits stored
    for p in range(PASSES):
        lo = HISTORY + NEW * p
        for _, sid, values in plant:
            store.write_readings(sid, values.iloc[lo : lo + NEW])
        results = detect_pass(store, names, memory=memory)
        assert all(r.scored == NEW for r in results.values()), results


def _alerts(store, sid: int) -> list[tuple]:
    rows = store.list_alerts(sensor_id=sid, limit=1000)
    return sorted((a.ts, a.ends_at, tuple(sorted(a.detectors))) for a in rows)


@pytest.fixture
def reads(monkeypatch) -> list[tuple[tuple[int, ...], pd.Timestamp]]:
    """Every ``read_series_many`` of the passes: the sensors and from when (a spy: the store
    still reads)."""
    seen: list[tuple[tuple[int, ...], pd.Timestamp]] = []
    real = Transaction.read_series_many

    def spy(self, ids, start, end, *args, **kw):
        seen.append((tuple(ids), pd.Timestamp(start)))
        return real(self, ids, start, end, *args, **kw)

    monkeypatch.setattr(Transaction, "read_series_many", spy)
    return seen


def test_passes_with_memory_raise_the_alerts_passes_without_raise(store):
    kept, whole = _plant(store, "kept"), _plant(store, "whole")
    memory = PassMemory()
    _follow(store, kept, memory)
    _follow(store, whole, None)
    for (_, a, _), (_, b, _) in zip(kept, whole, strict=True):
        assert _alerts(store, a), "the planted step raised no alert: the test proves nothing"
        assert _alerts(store, a) == _alerts(store, b)
    assert set(memory.contexts) == {sid for _, sid, _ in kept}


def test_a_followed_pass_reads_only_the_readings_after_its_kept_context(store, reads):
    plant = _plant(store, "tag", fault=False)  # no alert ongoing: read its short context
    ids = tuple(sorted(sid for _, sid, _ in plant))
    memory = PassMemory()
    _follow(store, plant, memory)
    # the last pass read only from just after the readings the pass before it had read
    last = [(tuple(sorted(i)), at) for i, at in reads[-1:]]
    previous_end = START + STEP * (HISTORY + NEW * (PASSES - 1) - 1)
    assert last == [(ids, previous_end + pd.Timedelta("1us"))]
    # and the kept contexts hold what a whole read would: the store's readings back to `since`
    for _, sid, values in plant:
        ctx = memory.contexts[sid]
        want = values[(values.index >= ctx.since) & (values.index < ctx.until)]
        assert len(ctx.series) > NEW
        np.testing.assert_array_equal(ctx.series.index, want.index)
        np.testing.assert_allclose(ctx.series.to_numpy(), want.to_numpy())


def test_a_context_is_read_whole_again_after_reread(store, reads):
    plant = _plant(store, "tag", fault=False)
    memory = PassMemory(reread=0.0)  # every context due again at once
    _follow(store, plant, memory)
    first_new = START + STEP * (HISTORY + NEW * (PASSES - 1))
    assert reads[-1][1] < first_new - STEP * NEW  # read back into the context, not only new


def test_a_followed_pass_loads_only_the_fits_stored_since(store, monkeypatch):
    plant = _plant(store, "tag")
    asked: list[list[int]] = []
    real = Transaction.fits_many

    def spy(self, ids):
        ids = list(ids)
        asked.append(ids)
        return real(self, ids)

    monkeypatch.setattr(Transaction, "fits_many", spy)
    memory = PassMemory()
    names = [name for name, _, _ in plant]

    def follow(k: int, only: list[str] | None = None, refit: bool = False) -> list[list[int]]:
        """Pass ``k``: its new readings, then the pass; the fits it asked for."""
        for name, sid, values in plant:
            if only is None or name in only:
                store.write_readings(sid, values.iloc[HISTORY + NEW * k : HISTORY + NEW * (k + 1)])
        asked.clear()
        detect_pass(store, only or names, memory=memory, options=DetectOptions(refit=refit))
        return list(asked)

    detect_pass(store, names, memory=memory)  # a first, in-sample fit
    follow(0)  # refitted on the history before the new readings
    assert follow(1) == [sorted(sid for _, sid, _ in plant)]  # those fits, loaded once
    assert follow(2) == [[]]  # every fit already in memory, none stored since
    # a fit stored since (here by a pass with --refit) is loaded again, its sensor's only
    name, sid, _ = plant[0]
    follow(3, only=[name], refit=True)
    with store.transaction(readonly=True) as tx:
        stamp = tx.fit_stamps_many([sid])[sid]
    assert stamp != memory.fits[sid][0]
    assert follow(4) == [[sid]]
    assert memory.fits[sid][0] == stamp


@pytest.mark.parametrize("follow", [False, True])
def test_each_batch_scores_the_readings_stored_before_it_was_planned(store, follow):
    """A pass plans each batch just before reading it: readings stored while an earlier batch
    was scored are scored by this pass (a plan made at the pass's start stopped short of them,
    and the detection lag of the last batch was one whole pass longer)."""
    plant = _plant(store, "tag", fault=False)
    names = [name for name, _, _ in plant]
    memory = PassMemory() if follow else None
    detect_pass(store, names, memory=memory)
    _, sid, values = plant[-1]
    for _, s, v in plant:  # what every sensor has when the pass begins
        store.write_readings(s, v.iloc[HISTORY : HISTORY + NEW])

    def late(done: int, total: int, name: str) -> None:
        if done == 1:  # the first batch is written: the last sensor's tag gets more
            store.write_readings(sid, values.iloc[HISTORY + NEW : HISTORY + 2 * NEW])

    results = detect_pass(store, names, batch_size=1, on_progress=late, memory=memory)
    assert [results[n].scored for n in names] == [NEW, NEW, 2 * NEW]
    assert results[names[-1]].scored_until == values.index[HISTORY + 2 * NEW - 1]
