"""Detect anomalies of assets (the relations between their sensors) and keep their alerts.

The asset counterpart of :mod:`plantcast.services.detection`, on the asset's aligned grid
(:func:`plantcast.services.assets.aligned_readings`): each pass scores the grid times no pass
has scored yet (``asset_state``), in chunks of at most a week, with the asset detectors of
:mod:`plantcast.detect.multivariate`. Training is causal: on the asset's pinned known-good
period (``plantcast asset train``) when it has one, else on the history before the chunk (at
most ``TRAIN``), its own alerts' spans left out; thresholds are calibrated per asset to the
alert budget. A fit is stored (``asset_fits``) and scores later chunks while it is fresh
(pinned: the same period; otherwise trained at most ``REFIT_EVERY`` before the chunk), so an
incremental pass over a new hour costs a read and a score, not a refit.

Episodes become alerts through the same merge as a sensor's (one alert per episode, every
detector that agreed listed), written with ``asset_id`` and the sensors ranked by their share
of the score at the peak (``contributors``). An asset with too little history says why (once
per pass) and is skipped; its resume point moves on all the same, so it never stalls.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from plantcast.core.errors import PlantcastError
from plantcast.core.timeutil import TimeLike, parse_duration, to_utc, utcnow
from plantcast.core.types import Alert, Asset
from plantcast.detect.alerts import merge_episodes
from plantcast.detect.base import DEFAULT_BUDGET
from plantcast.detect.multivariate import (
    MultivariateDetector,
    NormalBehaviourDetector,
    PCADetector,
)
from plantcast.services.assets import aligned_readings
from plantcast.store import Store
from plantcast.store.fits import StoredAssetFit

# The quadratic-ridge model of normal behaviour caught 150 of 150 relationship faults on 30
# held-out pumps (benchmarks/assets.py), PCA T²/Q fewer: the ridge is the default set, PCA is
# registered (``detect --asset-detector pca_t2q``).
ASSET_DETECTOR_CLASSES: dict[str, Callable[[float | None], MultivariateDetector]] = {
    "normal_behaviour": lambda budget: NormalBehaviourDetector("ridge", budget=budget),
    "pca_t2q": lambda budget: PCADetector(budget=budget),
}
ASSET_DETECTORS = ("normal_behaviour",)
TRAIN = pd.Timedelta("14d")  # history before a chunk that an unpinned asset trains on
TRAIN_ROWS = 10_080  # at most this many grid rows of it (7 days at 1 min)
CONTEXT_ROWS = 144  # grid rows before a chunk for the detectors' moving averages
CHUNK_ROWS = 10_080  # grid rows scored per chunk at most
CHUNK_SPAN = pd.Timedelta("7d")  # time scored per chunk at most
REFIT_EVERY = pd.Timedelta("7d")  # an unpinned fit scores chunks this long after its window
VERSION = 1  # of the pickled state in asset_fits
COOLDOWN = {n: parse_duration(c(None).policy.cooldown) for n, c in ASSET_DETECTOR_CLASSES.items()}

Progress = Callable[[int, int, str], None]


@dataclass(frozen=True)
class AssetDetectOptions:
    budget: float | None = DEFAULT_BUDGET
    resolve_after: str | pd.Timedelta = "2h"
    refit: bool = False  # refit now instead of scoring with a stored fit


@dataclass(frozen=True)
class AssetResult:
    """One asset's pass: grid rows scored, alerts opened and updated, and why a detector
    could not score (``skipped``; the first reason of the pass)."""

    asset: str
    scored: int
    opened: int
    updated: int
    scored_from: pd.Timestamp | None
    scored_until: pd.Timestamp | None
    skipped: dict[str, str] = field(default_factory=dict)


@dataclass
class AssetPlan:
    asset: Asset
    detectors: tuple[str, ...]
    start: pd.Timestamp | None  # first grid time to score
    last: pd.Timestamp | None  # last grid time to score
    fits: dict[str, StoredAssetFit | None]

    def chunks(self) -> list[tuple[pd.Timestamp, pd.Timestamp]]:
        """Half-open ``[a, b)`` windows of grid times covering ``start..last``."""
        if self.start is None or self.last is None or self.start > self.last:
            return []
        step = self.asset.grid_step
        span = min(CHUNK_SPAN, step * CHUNK_ROWS)
        end = self.last + step
        out, a = [], self.start
        while a < end:
            b = min(a + span, end)
            out.append((a, b))
            a = b
        return out


def train_span(asset: Asset) -> pd.Timedelta:
    """The history before a chunk an unpinned asset trains on: ``TRAIN``, at most
    ``TRAIN_ROWS`` grid rows."""
    return min(TRAIN, asset.grid_step * TRAIN_ROWS)


def _ceil(ts: pd.Timestamp, step: pd.Timedelta) -> pd.Timestamp:
    n = -(-pd.Timestamp(ts).value // step.value)
    return pd.Timestamp(n * step.value, tz="UTC")


def _floor(ts: pd.Timestamp, step: pd.Timedelta) -> pd.Timestamp:
    return pd.Timestamp(pd.Timestamp(ts).value // step.value * step.value, tz="UTC")


def _last_time(asset: Asset, lasts: dict[int, tuple[pd.Timestamp, float]]) -> pd.Timestamp | None:
    """The asset's 'now': the earliest last reading among its sensors that still report (a
    sensor silent for longer than its fill is a gap, not a reason to wait)."""
    from plantcast.detect.alignment import default_max_age

    found = {s.id: lasts[s.id][0] for s in asset.sensors if s.id in lasts}
    if not found:
        return None
    newest = max(found.values())
    live = [
        t
        for s in asset.sensors
        if (t := found.get(s.id)) is not None
        if t >= newest - default_max_age(s.interval)
    ]
    return min(live)


def asset_end(store: Store, asset: Asset) -> pd.Timestamp | None:
    """The asset's last grid time with its sensors' readings (None: none yet)."""
    with store.transaction(readonly=True) as tx:
        lasts = tx.edge_readings([(s.id, None) for s in asset.sensors], last=True)
    end = _last_time(asset, lasts)
    return None if end is None else _floor(end, asset.grid_step)


def plan_assets(
    store: Store,
    assets: list[Asset],
    *,
    detectors: tuple[str, ...] = ASSET_DETECTORS,
    since: TimeLike | None = None,
    options: AssetDetectOptions = AssetDetectOptions(),
) -> list[AssetPlan]:
    """Where each asset's pass starts and ends, and its stored fits: a few statements for
    all the assets (resume points, sensors' first and last readings, fits)."""
    ids = sorted({s.id for a in assets for s in a.sensors})
    with store.transaction(readonly=True) as tx:
        marks = tx.asset_scored_until([a.id for a in assets])
        lasts = tx.edge_readings([(i, None) for i in ids], last=True)
        firsts = tx.edge_readings([(i, None) for i in ids], last=False)
        stored = {} if options.refit else tx.asset_fits_many([a.id for a in assets])
    plans = []
    for asset in assets:
        step = asset.grid_step
        fits = {d: stored.get((asset.id, d)) for d in detectors}
        end = _last_time(asset, lasts)
        if end is None:
            plans.append(AssetPlan(asset, detectors, None, None, fits))
            continue
        done = [marks.get((asset.id, d)) for d in detectors]
        if since is not None:
            start = to_utc(since)
        elif all(m is not None for m in done):
            start = min(m for m in done if m is not None) + step
        else:
            start = min(firsts[s.id][0] for s in asset.sensors if s.id in firsts)
            if asset.train_to is not None:  # scored from the end of its known-good period
                start = max(start, asset.train_to)
        plans.append(AssetPlan(asset, detectors, _ceil(start, step), _floor(end, step), fits))
    return plans


# -- fits ---------------------------------------------------------------------------------------
def _usable(fit: StoredAssetFit | None, asset: Asset, a: pd.Timestamp) -> bool:
    if fit is None or fit.version != VERSION or fit.sensors != asset.sensor_names:
        return False
    if asset.train_from is not None:
        return fit.train_from == asset.train_from and fit.train_to == asset.train_to
    return fit.train_to <= a and a - fit.train_to <= REFIT_EVERY


def load_fit(fit: StoredAssetFit) -> MultivariateDetector | None:
    try:
        det = pickle.loads(fit.state)  # plantcast's own bytes, its own database
    except Exception:  # another version of a class: refitted, never an error
        return None
    return det if isinstance(det, MultivariateDetector) and det.is_fitted else None


def _without_alerts(frame: pd.DataFrame, alerts: Iterable[Alert]) -> pd.DataFrame:
    """The training frame with the rows of the asset's alerts blanked (not learned as normal)."""
    out = frame.copy()
    for alert in alerts:
        end = alert.ends_at if alert.ends_at is not None else out.index.max()
        out.loc[(out.index >= alert.ts) & (out.index <= end)] = np.nan
    return out


@dataclass
class ChunkScore:
    """One chunk of an asset, scored: each detector's episodes (with their contributors),
    the refits made for it, and why a detector could not score."""

    a: pd.Timestamp
    b: pd.Timestamp
    scored: int
    last: pd.Timestamp | None  # the last grid time scored
    found: dict[str, pd.DataFrame] = field(default_factory=dict)
    refits: dict[str, StoredAssetFit] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)


def score_chunk(
    plan: AssetPlan,
    frame: pd.DataFrame,
    training: pd.DataFrame | None,
    a: pd.Timestamp,
    b: pd.Timestamp,
    options: AssetDetectOptions,
) -> ChunkScore:
    """Score the chunk ``[a, b)`` of ``frame`` (which starts up to ``CONTEXT_ROWS`` before
    ``a``): with each detector's stored fit while usable, else fitted on ``training`` (None:
    not read, as every fit was usable). Pure: no store, so it runs on a worker too."""
    asset = plan.asset
    rows = frame[(frame.index >= a) & (frame.index < b)]
    complete = rows.dropna()
    out = ChunkScore(a, b, 0, complete.index[-1] if len(complete) else None)
    for name in plan.detectors:
        stored = plan.fits.get(name)
        det = load_fit(stored) if stored is not None and _usable(stored, asset, a) else None
        if det is None:
            if training is None:
                raise ValueError("a refit needs the training frame")
            det = ASSET_DETECTOR_CLASSES[name](options.budget)
            try:
                det.fit(training)
            except PlantcastError as exc:
                out.skipped[name] = str(exc)
                continue
            lo = asset.train_from if asset.train_from is not None else a - train_span(asset)
            hi = asset.train_to if asset.train_to is not None else a
            fit = StoredAssetFit(
                asset.id, name, asset.sensor_names, lo, hi, utcnow(), VERSION, pickle.dumps(det)
            )
            out.refits[name] = plan.fits[name] = fit
        if complete.empty:
            continue
        out.scored = len(complete)  # rows count as scored once a detector scored them
        eps = det.episodes(frame)
        out.found[name] = eps[eps["end"] >= a].reset_index(drop=True) if len(eps) else eps
    return out


def needs_training(plan: AssetPlan, a: pd.Timestamp) -> bool:
    return any(not _usable(plan.fits.get(d), plan.asset, a) for d in plan.detectors)


def _training(plan: AssetPlan, work: PlanData, a: pd.Timestamp) -> pd.DataFrame:
    """What the chunk from ``a`` trains on: the pinned period, or the history before ``a``
    with the asset's stored alerts blanked."""
    if work.pinned is not None:
        return work.pinned
    idx = work.frame.index
    past = work.frame[(idx >= a - train_span(plan.asset)) & (idx < a)]
    return _without_alerts(past, work.alerts)


@dataclass
class PlanData:
    """What one asset's pass reads before it scores: its aligned frame over every chunk with
    its context (and, unpinned, the training span before the first), the pinned period's
    frame when a fit must be made on it, and its alerts stored before the pass."""

    frame: pd.DataFrame
    pinned: pd.DataFrame | None
    alerts: list[Alert]


def score_plan(plan: AssetPlan, work: PlanData, options: AssetDetectOptions) -> list[ChunkScore]:
    """Every chunk of one asset, in order (a refit of one chunk scores the next while it is
    usable). Pure: runs here or on a Dask worker."""
    idx, step = work.frame.index, plan.asset.grid_step
    out = []
    for a, b in plan.chunks():
        training = _training(plan, work, a) if needs_training(plan, a) else None
        window = work.frame[(idx >= a - CONTEXT_ROWS * step) & (idx < b)]
        out.append(score_chunk(plan, window, training, a, b, options))
    return out


def score_batch(
    payload: list[tuple[AssetPlan, PlanData | Exception]], options: AssetDetectOptions
) -> list[list[ChunkScore] | Exception]:
    """``score_plan`` for a batch (an asset that cannot be scored gives its exception)."""
    out: list[list[ChunkScore] | Exception] = []
    for plan, work in payload:
        if isinstance(work, Exception):
            out.append(work)
            continue
        try:
            out.append(score_plan(plan, work, options))
        except Exception as exc:  # reported per asset, the others go on
            out.append(exc)
    return out


def _window(plan: AssetPlan) -> tuple[pd.Timestamp, pd.Timestamp]:
    chunks = plan.chunks()
    step = plan.asset.grid_step
    before = CONTEXT_ROWS * step
    if plan.asset.train_from is None:
        before = max(before, train_span(plan.asset))
    return chunks[0][0] - before, chunks[-1][1]


def read_batch(
    store: Store, plans: list[AssetPlan]
) -> list[tuple[AssetPlan, PlanData | Exception]]:
    """Read what a batch of planned assets scores: one read of all their sensors when their
    windows are alike (an incremental pass), else one aligned read per asset; their stored
    alerts in one statement; a pinned period only for an asset that must refit on it."""
    from plantcast.detect.alignment import align, default_max_age, grid

    todo = [p for p in plans if p.chunks()]
    if not todo:
        return []
    windows = {p.asset.id: _window(p) for p in todo}
    lo, hi = min(w[0] for w in windows.values()), max(w[1] for w in windows.values())
    widest = max(w[1] - w[0] for w in windows.values())
    found: dict[int, pd.Series] | None = None
    if hi - lo <= 2 * widest:
        ids = sorted({s.id for p in todo for s in p.asset.sensors})
        lookback = max(default_max_age(s.interval) for p in todo for s in p.asset.sensors)
        with store.transaction(readonly=True) as tx:
            found = tx.read_series_many(ids, lo - lookback, hi)
    with store.transaction(readonly=True) as tx:
        stored = tx.alerts_of_assets([p.asset.id for p in todo], lo)
    out: list[tuple[AssetPlan, PlanData | Exception]] = []
    for plan in todo:
        asset, (a, b) = plan.asset, windows[plan.asset.id]
        try:
            if found is not None:
                ages = {s.name: default_max_age(s.interval) for s in asset.sensors}
                series = {s.name: found[s.id] for s in asset.sensors}
                frame = align(series, grid(a, b, asset.grid_step), ages)
            else:
                frame = aligned_readings(store, asset, a, b)
            pinned = None
            lo_pin, hi_pin = asset.train_from, asset.train_to
            if (
                lo_pin is not None
                and hi_pin is not None
                and needs_training(plan, plan.chunks()[0][0])
            ):
                pinned = aligned_readings(store, asset, lo_pin, hi_pin)
            out.append((plan, PlanData(frame, pinned, stored.get(asset.id, []))))
        except PlantcastError as exc:
            out.append((plan, exc))
    return out


# -- alerts -------------------------------------------------------------------------------------
def _merge_record(alert: Alert) -> dict:
    return {
        "id": alert.id,
        "detector": alert.detector,
        "ts": alert.ts,
        "ends_at": alert.ends_at,
        "score": alert.score,
        "detectors": alert.detectors,
    }


def alert_changes(
    existing: list[Alert], score: ChunkScore, resolve_after: pd.Timedelta, last: pd.Timestamp
) -> tuple[list[dict], list[dict]]:
    """How a scored chunk changes the asset's alerts (``merge_episodes``), each alert that
    opens or whose peak rises carrying the contributors at its (new) peak."""
    found = [eps.assign(detector=n) for n, eps in score.found.items() if len(eps)]
    if not found and all(r.ends_at is not None for r in existing):
        return [], []  # nothing flagged and nothing ongoing: nothing changes
    if found:
        episodes = pd.concat(found, ignore_index=True)
    else:
        episodes = pd.DataFrame(
            {
                "start": pd.Series(dtype="datetime64[ns, UTC]"),
                "end": pd.Series(dtype="datetime64[ns, UTC]"),
            }
        )
    updates, inserts = merge_episodes(
        [_merge_record(r) for r in existing],
        episodes,
        scored_until=last,
        gap_tolerance=COOLDOWN,
        resolve_after=resolve_after,
        close_unmatched_at=score.a,
        scored_detectors=tuple(score.found),
    )
    shares = {}
    for ep in episodes.itertuples(index=False):
        if isinstance(getattr(ep, "shares", None), dict):
            shares[(ep.detector, float(ep.peak_score))] = ep.shares
    by_id = {r.id: r.detector for r in existing}
    for row in inserts:
        row["contributors"] = shares.get((row["detector"], float(row["score"])), {})
    for change in updates:
        if "score" in change:
            ranked = shares.get((by_id.get(change["id"]), float(change["score"])))
            if ranked:
                change["contributors"] = ranked
    return updates, inserts


def write_batch(
    store: Store,
    plans: list[AssetPlan],
    scores: list[list[ChunkScore] | Exception],
    options: AssetDetectOptions,
) -> dict[str, tuple[int, int] | Exception]:
    """Write a batch's scored chunks in one transaction, each asset's in chunk order: the
    alerts they open or change, every detector's resume point (moved to the last chunk's end
    even when one could not fit) and the refits. Per asset: (opened, updated) or why not."""
    resolve_after = parse_duration(options.resolve_after, field="resolve_after")
    out: dict[str, tuple[int, int] | Exception] = {}
    marks: dict[tuple[int, str], pd.Timestamp] = {}
    refits: dict[tuple[int, str], StoredAssetFit] = {}

    def since(plan: AssetPlan, a: pd.Timestamp) -> pd.Timestamp:
        return a - max(CONTEXT_ROWS * plan.asset.grid_step, max(COOLDOWN.values()))

    firsts = [
        since(p, f[0].a)
        for p, f in zip(plans, scores, strict=True)
        if f and not isinstance(f, Exception)
    ]
    with store.transaction() as tx:
        # every asset's alerts near its first chunk in one statement; a later chunk of an
        # asset (a first pass) reads them again, as its earlier chunks may have changed them
        near = tx.alerts_of_assets([p.asset.id for p in plans], min(firsts)) if firsts else {}
        for plan, found in zip(plans, scores, strict=True):
            if isinstance(found, Exception):
                out[plan.asset.name] = found
                continue
            asset, step = plan.asset, plan.asset.grid_step
            opened = updated = 0
            for k, score in enumerate(found):
                start = since(plan, score.a)
                if k == 0:
                    existing = [
                        r for r in near.get(asset.id, []) if r.ends_at is None or r.ends_at >= start
                    ]
                else:
                    existing = tx.list_alerts(asset_id=asset.id, start=start, limit=10_000)
                updates, inserts = alert_changes(existing, score, resolve_after, score.b - step)
                for change in updates:
                    tx.update_alert(change.pop("id"), **change)
                for row in inserts:
                    tx.insert_alert(None, asset_id=asset.id, **row)
                opened, updated = opened + len(inserts), updated + len(updates)
                refits.update({(asset.id, d): f for d, f in score.refits.items()})
            if found:
                marks.update({(asset.id, d): found[-1].b - step for d in plan.detectors})
            out[asset.name] = (opened, updated)
        tx.set_asset_scored_until(marks)
        tx.put_asset_fits(refits.values())
    return out


def result_of(plan: AssetPlan, scores: list[ChunkScore], opened: int, updated: int) -> AssetResult:
    skipped: dict[str, str] = {}
    for score in scores:
        for name, why in score.skipped.items():
            skipped.setdefault(name, why)
    return AssetResult(
        plan.asset.name,
        sum(s.scored for s in scores),
        opened,
        updated,
        plan.start,
        plan.last,
        skipped,
    )


class PassResults:
    """A pass's per-asset outcome, filled batch by batch (here or as Dask batches finish)."""

    def __init__(
        self,
        store: Store,
        plans: list[AssetPlan],
        options: AssetDetectOptions,
        on_progress: Progress | None = None,
    ) -> None:
        self.store, self.options, self.on_progress = store, options, on_progress
        self.plans = plans
        self.todo = [p for p in plans if p.chunks()]
        self.total = sum(len(p.chunks()) for p in self.todo)
        self.done = 0
        self.results: dict[str, AssetResult | Exception] = {
            p.asset.name: AssetResult(p.asset.name, 0, 0, 0, p.start, p.last)
            for p in plans
            if not p.chunks()
        }

    def save(self, batch: list[AssetPlan], scores: list[list[ChunkScore] | Exception]) -> None:
        read = [p for p in batch if p.chunks()]
        written = write_batch(self.store, read, scores, self.options)
        for plan, found in zip(read, scores, strict=True):
            got = written[plan.asset.name]
            if isinstance(got, Exception):
                self.results[plan.asset.name] = got
            elif isinstance(found, Exception):
                self.results[plan.asset.name] = found
            else:
                self.results[plan.asset.name] = result_of(plan, found, *got)
            self._tick(plan)

    def fail(self, batch: list[AssetPlan], exc: Exception) -> None:
        for plan in batch:
            self.results[plan.asset.name] = exc
            self._tick(plan)

    def _tick(self, plan: AssetPlan) -> None:
        self.done += len(plan.chunks())
        if self.on_progress:
            self.on_progress(self.done, self.total, plan.asset.name)

    def ordered(self) -> dict[str, AssetResult | Exception]:
        return {p.asset.name: self.results[p.asset.name] for p in self.plans}


BATCH_ASSETS = 200  # assets read, scored and written together
BATCH_CHUNKS = 64  # chunks (weeks) at most in one batch: a first pass's memory stays bounded


def batches(plans: list[AssetPlan]) -> list[list[AssetPlan]]:
    out: list[list[AssetPlan]] = []
    current: list[AssetPlan] = []
    chunks = 0
    for plan in plans:
        n = len(plan.chunks())
        if current and (len(current) >= BATCH_ASSETS or chunks + n > BATCH_CHUNKS):
            out.append(current)
            current, chunks = [], 0
        current.append(plan)
        chunks += n
    if current:
        out.append(current)
    return out


def resolve_assets(
    store: Store, names: Iterable[str] | None, detectors: tuple[str, ...]
) -> list[Asset]:
    unknown = [d for d in detectors if d not in ASSET_DETECTOR_CLASSES]
    if unknown:
        raise PlantcastError(
            f"unknown asset detector {', '.join(unknown)}; known: "
            f"{', '.join(ASSET_DETECTOR_CLASSES)}"
        )
    if names is None:
        return store.list_assets()
    return [store.get_asset(n) for n in dict.fromkeys(names)]


def detect_assets(
    store: Store,
    names: Iterable[str] | None = None,
    *,
    detectors: tuple[str, ...] = ASSET_DETECTORS,
    since: TimeLike | None = None,
    options: AssetDetectOptions = AssetDetectOptions(),
    on_progress: Progress | None = None,
) -> dict[str, AssetResult | Exception]:
    """One pass over these assets (None: all), in bulk: planned together, then read, scored
    and written batch by batch (``BATCH_ASSETS`` assets, a few statements each); an asset that
    fails is reported (its exception) and the others go on."""
    assets = resolve_assets(store, names, detectors)
    plans = plan_assets(store, assets, detectors=detectors, since=since, options=options)
    run = PassResults(store, plans, options, on_progress)
    for batch in batches(run.todo):
        try:
            payload = read_batch(store, batch)
            run.save(batch, score_batch(payload, options))
        except PlantcastError as exc:
            run.fail(batch, exc)
    return run.ordered()


def detect_asset(store: Store, name: str, **kwargs: Any) -> AssetResult:
    """:func:`detect_assets` for one asset, raising what it failed with."""
    found = detect_assets(store, [name], **kwargs)[name]
    if isinstance(found, Exception):
        raise found
    return found
