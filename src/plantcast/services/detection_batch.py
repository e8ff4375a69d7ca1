"""A detect pass over many sensors with bulk store calls: the same alerts as one sensor at a time.

``detect_sensor`` costs a handful of statements per sensor to plan (sensor, params, last
reading, resume points), one or two to read and a transaction of several to write. Over a
plant's thousands of sensors those round trips, not the scoring, dominate the client. Here a
batch of sensors is planned with a few statements (``plan_sensors``), read with one range query
per group of sensors that resume near the same time (``read_batch``), and its results written in
one transaction (``write_batch_results``). The scoring between is ``detection.score_chunk``,
unchanged, wherever it runs (this process or a Dask worker). The sensors' stored fits are
loaded with their plans (one statement), decide how far back each is read (``read_span``),
travel with the plans to the scoring and, when refitted, are written with the alerts.

``detect --follow`` keeps a :class:`PassMemory` from one pass to the next: the fits it loaded
(a pass asks the store only when each was stored and unpickles those stored since) and each
sensor's scoring context as last read (a pass reads only the readings after it).

Only sensors whose pass is a single chunk (the steady state: a few new readings) take the bulk
path; a sensor with a long unscored history (its first pass) is read and written chunk by chunk
as ``detect_sensor`` does, so its memory stays bounded.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from itertools import groupby

import pandas as pd

from plantcast.core.timeutil import parse_duration, to_utc
from plantcast.services.detection import (
    DETECTORS,
    MEMORYLESS,
    ChunkScore,
    DetectOptions,
    DetectResult,
    SensorPlan,
    Tally,
    alert_changes,
    alert_record,
    chunk_ranges,
    chunk_series,
    context_span,
    fit_key,
    history_span,
    needs_reading_before,
    read_chunk,
    read_span,
    score_chunk,
    scoring_context,
    write_scores,
)
from plantcast.services.detector_fits import Fit, from_stored, refit_due, reusable, to_stored
from plantcast.services.feedback import Feedback, feedback_for
from plantcast.services.limit_alerts import after_detect
from plantcast.services.seasons import current_periods
from plantcast.store import Store, Transaction

Work = tuple[SensorPlan, list[tuple]]  # a sensor's plan and its chunks: (a, b, series)
Scored = tuple[SensorPlan, list[ChunkScore | None]]
# score_batch's output: per sensor name, its chunk scores or why it failed
BatchScores = list[tuple[str, list[ChunkScore | None] | Exception]]
Progress = Callable[[int, int, str], None]
US = pd.Timedelta("1us")
# young sensors' refits (in-sample, growth) a pass makes at most: this share of the sensors
# it plans, at least LEAST
GROWTH_REFITS, GROWTH_REFITS_LEAST = 0.02, 20


@dataclass
class _Context:
    """A sensor's readings as a pass read them: every stored reading from ``since`` until
    ``until`` (exclusive) at the time, kept to be read whole again after ``expires``."""

    series: pd.Series
    since: pd.Timestamp
    until: pd.Timestamp
    expires: float  # time.monotonic()


@dataclass
class PassMemory:
    """What one process following a plant (``detect --follow``) keeps between its passes, so
    a steady pass reads and loads only what changed since the last:

    - ``fits``: each sensor's fit as loaded, with when it was stored. A pass asks the store
      for the ``fitted_at`` stamps only and loads (unpickles) just the fits stored since.
    - ``contexts``: each sensor's scoring context as last read. A pass reads only the
      readings after it and drops those older than the context it needs now; a sensor whose
      context must reach further back is read whole. A reading stored late, behind readings
      already read, is missing from a kept context (it is not scored either way: the resume
      point is past it), so a context is read whole again every ``reread`` (each sensor at
      its own phase of it, so the re-reads spread over the passes rather than come together).

    Reading a 1 s sensor's context (up to a few thousand readings) for its few new ones was
    most of a steady pass over a plant's sensors, on the client and on the database server.
    A memory belongs to one store and one process; a pass without one reads everything.
    """

    reread: float = 600.0  # seconds
    fits: dict[int, tuple[pd.Timestamp, Fit | None]] = field(default_factory=dict)
    contexts: dict[int, _Context] = field(default_factory=dict)

    def kept(self, sensor_id: int, back: pd.Timestamp) -> _Context | None:
        """The sensor's kept context if it still reaches back to ``back`` and is not due a
        whole read again."""
        ctx = self.contexts.get(sensor_id)
        if ctx is None or ctx.since > back or time.monotonic() >= ctx.expires:
            return None
        return ctx

    def keep(self, sensor_id: int, series: pd.Series, since: pd.Timestamp, until) -> None:
        old = self.contexts.get(sensor_id)
        if old is not None and old.expires > time.monotonic():
            expires = old.expires
        else:  # a whole read: the next one at this sensor's own phase of ``reread``
            phase = zlib.crc32(str(sensor_id).encode()) % 1000 / 1000
            expires = time.monotonic() + self.reread * (0.5 + phase)
        self.contexts[sensor_id] = _Context(series, since, until, expires)

    def forget(self, sensor_ids: Iterable[int]) -> None:
        for sid in sensor_ids:
            self.contexts.pop(sid, None)

    def loaded_fits(self, tx: Transaction, ids: list[int]) -> dict[int, Fit | None]:
        """Each sensor's stored fit, loaded from the store only where it changed."""
        stamps = tx.fit_stamps_many(ids)
        stale = [i for i in stamps if self.fits.get(i, (None, None))[0] != stamps[i]]
        for sid, row in tx.fits_many(stale).items():
            self.fits[sid] = (row.fitted_at, from_stored(row))
        for sid in ids:
            if sid not in stamps:  # none stored (yet, or dropped: derived data)
                self.fits.pop(sid, None)
        return {i: self.fits[i][1] for i in ids if i in self.fits}


def plan_sensors(
    store: Store,
    names: Iterable[str],
    *,
    periods: tuple[str, ...] | None = None,
    detectors: tuple[str, ...] = DETECTORS,
    since=None,
    memory: PassMemory | None = None,
    refits: int | None = None,
) -> dict[str, SensorPlan | Exception]:
    """``plan_sensor`` for many sensors in a few statements; an unknown sensor maps to the
    error ``plan_sensor`` would raise. With a ``memory``, only the fits stored since its
    last pass are loaded. ``refits``: the young sensors' refits these plans may make
    (``growth_refits`` of the sensors planned, by default)."""
    names = list(dict.fromkeys(names))
    with store.transaction(readonly=True) as tx:
        found = tx.sensors_by_name(names)
        ids = [s.id for s, _ in found.values()]
        latest = tx.edge_readings([(i, None) for i in ids], last=True)
        marks = tx.scored_until_many(ids) if since is None else {}
        unmarked = [i for i in ids if any((i, d) not in marks for d in detectors)]
        first = tx.edge_readings([(i, None) for i in unmarked], last=False)
        if memory is None:
            fits = {sid: from_stored(row) for sid, row in tx.fits_many(ids).items()}
        else:
            fits = memory.loaded_fits(tx, ids)
        ongoing = tx.ongoing_alerts(ids, MEMORYLESS)
    feedback = feedback_for(store, ids)  # false-alarm labels raise floors (services.feedback)
    plans: dict[str, SensorPlan | Exception] = {}
    for name in names:
        if name not in found:
            try:
                store.get_sensor(name)  # the NotFound that names the known sensors
            except Exception as exc:
                plans[name] = exc
            continue
        sensor, params = found[name]
        last = latest.get(sensor.id)
        chosen = periods or current_periods(store, sensor, params, last and last[0])
        if since is not None:
            start = to_utc(since)
        elif sensor.id in unmarked:
            start = first[sensor.id][0] if sensor.id in first else None
        else:
            start = to_utc(min(marks[(sensor.id, d)] for d in detectors)) + US
        if last is None or start is None or start > last[0]:
            plans[name] = SensorPlan(sensor, chosen, detectors, None, None)
            continue
        chunks = tuple(chunk_ranges(sensor, start, last[0]))
        fit = fits.get(sensor.id)
        said = feedback.get(sensor.id, Feedback())
        plans[name] = SensorPlan(
            sensor,
            chosen,
            detectors,
            start,
            last[0],
            chunks,
            fit,
            said,
            sensor.id in ongoing,
            ongoing_since=ongoing[sensor.id].since if sensor.id in ongoing else None,
            ongoing_detectors=ongoing[sensor.id].detectors if sensor.id in ongoing else None,
        )
    return _pace_young_refits(plans, growth_refits(len(plans)) if refits is None else refits)


def growth_refits(planned: int) -> int:
    """The young sensors' refits a pass over ``planned`` sensors makes at most."""
    return max(GROWTH_REFITS_LEAST, int(GROWTH_REFITS * planned))


def _pace_young_refits(
    plans: dict[str, SensorPlan | Exception], allowed: int
) -> dict[str, SensorPlan | Exception]:
    """Of the sensors whose stored fit waits for a young sensor's refit (its first fit, made
    in-sample, or one missing a detector as its history grows: ``detector_fits.refit_due``),
    the pass refits at most ``allowed`` (``growth_refits``), the in-sample ones first, then
    the most overdue; the others keep scoring with their fit and are refitted by a later
    pass. Tags a connector created together are young together: refitting them all
    in one pass made that pass, and the detection lag, many times longer (1,000 new 1 s tags'
    second pass refitted every one of them, for minutes)."""
    due = []
    for name, plan in plans.items():
        if isinstance(plan, Exception) or plan.fit is None or len(plan.chunks) != 1:
            continue
        a = plan.chunks[0][0]
        if refit_due(plan.fit, a):
            overdue = (a - plan.fit.trained_until) / max(plan.fit.span(), US)
            due.append((plan.fit.in_sample, overdue, name))
    for *_, name in sorted(due, reverse=True)[allowed:]:
        plan = plans[name]
        assert isinstance(plan, SensorPlan)
        plans[name] = replace(plan, patient=True)
    return plans


def read_batch(
    store: Store,
    plans: list[SensorPlan],
    options: DetectOptions | None = None,
    memory: PassMemory | None = None,
) -> list[Work]:
    """Each plan's chunks with their series (as ``read_chunk`` reads them: the context alone
    before a chunk its stored fit will score). Single-chunk plans whose chunks start on the
    same day share one range query (with a ``memory``: two, one reading only what came after
    the contexts it kept). Of a longer plan (a first pass), the first chunk is read for its
    stored fit and the others with their training history (each may be refitted)."""
    options = options or DetectOptions()
    single = sorted((p for p in plans if len(p.chunks) == 1), key=lambda p: p.chunks[0][0])
    series: dict[int, pd.Series] = {}
    for _, group in groupby(single, key=lambda p: p.chunks[0][0].floor("1D")):
        series.update(_read_group(store, list(group), options, memory))
    if memory is not None:
        memory.forget(p.sensor.id for p in plans if len(p.chunks) != 1)
    out: list[Work] = []
    for plan in plans:
        if len(plan.chunks) == 1:
            a, b = plan.chunks[0]
            out.append((plan, [(a, b, series[plan.sensor.id])]))
        else:
            (a0, b0), rest = plan.chunks[0], plan.chunks[1:]
            pieces = [(a0, b0, read_chunk(store, plan, plan.fit, a0, b0, options))]
            pieces += [(a, b, chunk_series(store, plan.sensor, a, b)) for a, b in rest]
            out.append((plan, pieces))
    return out


def _read_group(
    store: Store, plans: list[SensorPlan], options: DetectOptions, memory: PassMemory | None
) -> dict[int, pd.Series]:
    spans = {p.sensor.id: read_span(p, p.fit, p.chunks[0][0], options) for p in plans}
    backs = {p.sensor.id: p.chunks[0][0] - spans[p.sensor.id] for p in plans}
    kept = {}
    if memory is not None:
        kept = {sid: c for sid, back in backs.items() if (c := memory.kept(sid, back))}
    whole = [p for p in plans if p.sensor.id not in kept]
    hi = max(p.chunks[0][1] for p in plans) + US
    with store.transaction(readonly=True) as tx:
        read: dict[int, pd.Series] = {}
        if whole:
            lo = min(backs[p.sensor.id] for p in whole)
            read.update(tx.read_series_many([p.sensor.id for p in whole], lo, hi))
        if kept:
            lo = min(c.until for c in kept.values())
            read.update(tx.read_series_many(list(kept), lo, hi))
        out, need_before = {}, []
        for p in plans:
            a, b = p.chunks[0]
            sid, back = p.sensor.id, backs[p.sensor.id]
            s = read[sid]
            if sid in kept:  # the kept context, then what came after it
                s = s.iloc[s.index.searchsorted(kept[sid].until) :]
                s = pd.concat([kept[sid].series, s]) if len(kept[sid].series) else s
            s = s.iloc[s.index.searchsorted(back) : s.index.searchsorted(b + US)]
            out[sid] = s
            if memory is not None:
                memory.keep(sid, s, back, b + US)
            # as chunk_series: the reading before a gap reaching into what is scored
            short = spans[p.sensor.id] < history_span(p.sensor)
            context = scoring_context(p, p.fit, a) if short else None
            if needs_reading_before(p.sensor, s, a, context):
                need_before.append((p.sensor.id, back))
        before = tx.edge_readings(need_before, last=True)
    for sid, (ts, value) in before.items():
        head = pd.Series([value], index=pd.DatetimeIndex([ts], name="ts"), name="value")
        out[sid] = pd.concat([head, out[sid]]) if len(out[sid]) else head
    for p in plans:  # read short for a fresh fit, but the new readings drifted: refit
        a, b = p.chunks[0]
        short = spans[p.sensor.id] < history_span(p.sensor)
        if short and not reusable(
            p.fit, fit_key(p, options), out[p.sensor.id], a, patient=p.patient
        ):
            out[p.sensor.id] = chunk_series(store, p.sensor, a, b)
    return out


def score_batch(batch: list[Work], options: DetectOptions) -> BatchScores:
    """Score each sensor's chunks: ``(name, scores)``, or ``(name, exception)`` for a sensor
    that failed (the others go on). Pure: runs here or on a Dask worker."""
    out: BatchScores = []
    for plan, pieces in batch:
        try:
            scores, fit = [], plan.fit
            for a, b, s in pieces:  # each chunk scored with the fit the one before left
                score = score_chunk(plan, s, a, b, options, fit)
                fit = fit if score is None else score.fit
                scores.append(score)
            out.append((plan.sensor.name, scores))
        except Exception as exc:  # a defect on one sensor's data must not stop the batch
            out.append((plan.sensor.name, exc))
    return out


def write_batch_results(
    store: Store, scored: list[Scored], options: DetectOptions
) -> dict[str, DetectResult | Exception]:
    """Write scored sensors' alerts and resume points as ``write_scores`` would, one
    transaction for the single-chunk ones. If that transaction fails, each sensor is written
    on its own, so one sensor's problem is that sensor's alone."""
    results: dict[str, DetectResult | Exception] = {}
    bulk = [(p, s[0]) for p, s in scored if len(s) == 1 and s[0] is not None]
    rest = [(p, s) for p, s in scored if not (len(s) == 1 and s[0] is not None)]
    if bulk:
        try:
            with store.transaction() as tx:
                results.update(_write_bulk(tx, bulk, options))
        except Exception:
            rest += [(p, [s]) for p, s in bulk]
    for plan, scores in rest:
        try:
            results[plan.sensor.name] = write_scores(store, plan, scores, options)
        except Exception as exc:
            results[plan.sensor.name] = exc
    return results


def _write_bulk(tx: Transaction, bulk: list[tuple[SensorPlan, ChunkScore]], options) -> dict:
    resolve_after = parse_duration(options.resolve_after, field="resolve_after")
    lo = min(score.a - context_span(p.sensor) for p, score in bulk)
    existing = tx.alerts_reaching_many([p.sensor.id for p, _ in bulk], lo)
    marks: dict[tuple[int, str], pd.Timestamp] = {}
    results = {}
    for plan, score in bulk:
        tally = Tally()
        sid, since = plan.sensor.id, score.a - context_span(plan.sensor)
        for name in plan.detectors:
            marks[(sid, name)] = score.b
        mine = [
            alert_record(r)
            for r in existing.get(sid, [])
            if r.ends_at is None or r.ends_at >= since
        ][:10_000]
        quiet = all(eps.empty for eps in score.found.values())
        if not (quiet and all(e["ends_at"] is not None for e in mine)):
            # (else nothing to open, extend or close: merge_episodes would agree)
            to_update, to_insert = alert_changes(mine, score, resolve_after)
            for change in to_update:
                tx.update_alert(change.pop("id"), **change)
            for row in to_insert:
                tx.insert_alert(sid, **row)
            tally.opened += len(to_insert)
            tally.updated += len(to_update)
        tally.scored = score.scored
        for name, why in score.skipped.items():
            tally.skipped.setdefault(name, why)
        results[plan.sensor.name] = tally.result(plan)
    tx.set_scored_until_many(marks)
    tx.put_fits(to_stored(p.sensor.id, s.fit) for p, s in bulk if s.refitted and s.fit)
    return results


class PassResults:
    """A pass's results as they come, in the order sensors were asked for, with progress.

    ``todo`` holds the plans with something to score; the others are already settled (unknown
    sensors with why, sensors with nothing new with an empty result). A pass that plans its
    sensors batch by batch ``add``s each batch's plans as it makes them (``total``: how many
    sensors the whole pass asks for, for the progress)."""

    def __init__(
        self, store: Store, plans: dict, options: DetectOptions, on_progress=None, total=None
    ):
        self.store, self.options, self.on_progress = store, options, on_progress
        self.total = len(plans) if total is None else total
        self.plans: dict[str, SensorPlan | Exception] = {}
        self.results: dict[str, DetectResult | Exception] = {}
        self.todo: list[SensorPlan] = self.add(plans)

    def add(self, plans: dict) -> list[SensorPlan]:
        """Take in more plans; those with something to score."""
        self.plans.update(plans)
        todo = []
        for name, plan in plans.items():
            if isinstance(plan, Exception):
                self.done(name, plan)
            elif not plan.chunks:
                self.done(name, DetectResult(plan.sensor.name, 0, 0, 0, None, None))
            else:
                todo.append(plan)
        return todo

    def done(self, name: str, result: DetectResult | Exception) -> None:
        self.results[name] = result
        if self.on_progress:
            self.on_progress(len(self.results), self.total, name)

    def save(self, batch: list[SensorPlan], scored: BatchScores) -> None:
        """Write a scored batch (``score_batch``'s output); failures are that sensor's result."""
        by_name = {p.sensor.name: p for p in batch}
        ok: list[Scored] = []
        for name, outcome in scored:
            if isinstance(outcome, Exception):
                self.done(name, outcome)
            else:
                ok.append((by_name[name], outcome))
        for name, result in write_batch_results(self.store, ok, self.options).items():
            self.done(name, result)

    def fail(self, batch: list[SensorPlan], exc: Exception) -> None:
        for plan in batch:
            self.done(plan.sensor.name, exc)

    def ordered(self) -> dict[str, DetectResult | Exception]:
        scored = [p.sensor for p in self.plans.values() if not isinstance(p, Exception)]
        after_detect(self.store, scored)  # limit alarms (services.limit_alerts)
        return {name: self.results[name] for name in self.plans}


def detect_pass(
    store: Store,
    names: Iterable[str],
    *,
    periods: tuple[str, ...] | None = None,
    detectors: tuple[str, ...] = DETECTORS,
    since=None,
    options: DetectOptions | None = None,
    batch_size: int = 200,
    on_progress: Progress | None = None,
    memory: PassMemory | None = None,
) -> dict[str, DetectResult | Exception]:
    """One pass over many sensors in this process, ``batch_size`` sensors per bulk plan, read
    and write: per sensor, its result or why it was not scored (the others go on). ``memory``:
    what the last pass of a following process kept (:class:`PassMemory`).

    Each batch is planned just before it is read, so it scores up to the readings stored by
    then, not those stored when the pass began: a sensor's detection lag, measured just before
    its next pass writes it, is then about the time between passes plus one batch, not plus
    the whole pass."""
    options = options or DetectOptions()
    names = list(dict.fromkeys(names))
    run = PassResults(store, {}, options, on_progress, total=len(names))
    refits = growth_refits(len(names))  # the pass's, shared out between its batches
    for lo in range(0, len(names), batch_size):
        part = names[lo : lo + batch_size]
        plans = plan_sensors(
            store,
            part,
            periods=periods,
            detectors=detectors,
            since=since,
            memory=memory,
            refits=-(-refits * len(part) // len(names)),  # (rounded up)
        )
        todo = run.add(plans)
        if not todo:
            continue
        try:
            work = read_batch(store, todo, options, memory)
        except Exception as exc:
            run.fail(todo, exc)
            continue
        run.save(todo, score_batch(work, options))
    return run.ordered()
