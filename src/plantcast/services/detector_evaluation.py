"""Detectors evaluated as ``plantcast detect`` runs them: chunk by chunk, refitted, calibrated.

A labeled scenario (:func:`plantcast.signals.scenarios.generate_scenario`, or a real background
with injected events, :func:`plantcast.signals.recordings.real_scenario`) is scored as a sensor
whose earlier runs scored its warm-up: from the end of the warm-up on, in the chunks of
``detection.chunk_ranges``, each through ``detection.score_chunk`` (the production detectors,
fitted on the history before the chunk, calibrated to the alert budget) and merged into alerts
with ``detection.alert_changes``, as the store's writers do. Only the alerts are matched to
events, and false alerts are counted over the scored span alone (the warm-up is history).
The metrics are ``plantcast.detect.evaluation``'s. The baselines (a rolling z-score and a
matrix profile alone, calibrated to the same budget; a static band and random flags) run the
same way, chunk by chunk over the same windows (:func:`baseline_chunk`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace

import numpy as np
import pandas as pd

from plantcast.core.errors import PlantcastError
from plantcast.core.timeutil import parse_duration, to_epoch_ns
from plantcast.core.types import Sensor, Source
from plantcast.detect import merge_episodes
from plantcast.detect.evaluation import (
    BASELINES,
    CLEAN_COLUMNS,
    COMBINED,
    baseline_detectors,
    false_alert_weights,
    labelled_scores,
    match_events,
    summarize,
    union_episodes,
)
from plantcast.services.detection import (
    DETECTORS,
    ChunkScore,
    DetectOptions,
    SensorPlan,
    alert_changes,
    chunk_ranges,
    context_span,
    score_chunk,
    train_span,
    window_of,
)
from plantcast.services.detector_training import fit_on_history, usable_periods
from plantcast.signals.recordings import PERIODS, real_scenario
from plantcast.signals.scenarios import Scenario, generate_scenario

EPISODE = ["start", "end", "detected_at"]
DEFAULT_OPTIONS = DetectOptions()  # the default budget and resolve_after of ``detect``


def _sensor(series: pd.Series, name: str) -> Sensor:
    step = pd.Timedelta(int(np.median(np.diff(series.index.asi8))), unit="ns")
    return Sensor(0, name, "", "", Source.IMPORTED, step, series.index[0])


def replay_alerts(
    series: pd.Series,
    *,
    periods: tuple[str, ...],
    scored_from: pd.Timestamp,
    options: DetectOptions = DEFAULT_OPTIONS,
    detectors: tuple[str, ...] = DETECTORS,
    baselines: tuple[str, ...] = (),
    name: str = "evaluated",
) -> dict[str, pd.DataFrame]:
    """The alerts ``plantcast detect`` leaves on a sensor holding ``series`` whose runs had
    scored up to ``scored_from``: under ``combined``, the alerts it writes (one per episode,
    whichever detectors agree); under each detector's name, the alerts it would write were
    that detector alone. Each a frame of start, end (the last reading while still ongoing)
    and detected_at (the first detection inside the alert). The ``baselines`` (names of
    :data:`~plantcast.detect.evaluation.BASELINES`) are replayed beside them over the same
    chunks (:func:`baseline_chunk`)."""
    unknown = sorted(set(baselines) - set(BASELINES))
    if unknown:
        raise ValueError(f"unknown baselines {unknown}: the baselines are {list(BASELINES)}")
    sensor = _sensor(series, name)
    last = series.index[-1]
    chunks = tuple(chunk_ranges(sensor, scored_from, last))
    plan = SensorPlan(sensor, tuple(periods), detectors, scored_from, last, chunks)
    resolve_after = parse_duration(options.resolve_after, field="resolve_after")
    tracks = (*detectors, COMBINED, *baselines)
    alerts: dict[str, list[dict]] = {n: [] for n in tracks}
    seen: dict[str, list[pd.DataFrame]] = {n: [] for n in tracks}
    fit = None  # each chunk scored with the fit the one before left, as detect keeps it
    for a, b in chunks:
        window = window_of(series, sensor, a, b)
        score = score_chunk(plan, window, a, b, options, fit)
        if score is None:
            continue
        fit = score.fit
        parts = [(COMBINED, score)]
        parts += [(d, replace(score, found={d: score.found[d]})) for d in score.found]
        if baselines:
            base = baseline_chunk(plan, window, a, b, options, baselines)
            if base is not None:
                parts += [(d, replace(base, found={d: base.found[d]})) for d in base.found]
        since = a - context_span(sensor)
        for track, part in parts:
            mine = [x for x in alerts[track] if x["ends_at"] is None or x["ends_at"] >= since]
            to_update, to_insert = _alert_changes(mine, part, track, resolve_after)
            by_id = {x["id"]: x for x in alerts[track]}
            for change in to_update:
                by_id[change.pop("id")].update(change)
            for row in to_insert:
                alerts[track].append({**row, "id": len(alerts[track])})
            seen[track].extend(e[EPISODE] for e in part.found.values())
    return {n: _as_episodes(alerts[n], seen[n], last) for n in tracks}


# Each baseline's cooldown: production detectors' are ``alert_changes``'s own.
BASELINE_COOLDOWN = {n: d.policy.cooldown for n, d in baseline_detectors().items()}


def _alert_changes(
    existing: list[dict], score: ChunkScore, name: str, resolve_after: pd.Timedelta
) -> tuple[list[dict], list[dict]]:
    """The one place the evaluation merges a chunk's episodes into alerts: the production
    detectors' (one, or all under ``combined``) through ``detection.alert_changes``, as every
    writer does; a baseline's (unknown to it) by the same merge at its own cooldown."""
    if name not in BASELINE_COOLDOWN:
        return alert_changes(existing, score, resolve_after)
    return merge_episodes(
        existing,
        score.found[name],
        detector=name,
        scored_until=score.b,
        gap_tolerance=BASELINE_COOLDOWN[name],
        resolve_after=resolve_after,
        close_unmatched_at=score.a,
    )


def baseline_chunk(
    plan: SensorPlan,
    series: pd.Series,
    a,
    b,
    options: DetectOptions,
    names: tuple[str, ...] = BASELINES,
) -> ChunkScore | None:
    """The baselines' twin of ``detection.score_chunk`` on one chunk: fitted on the same
    history before it (or a young sensor's first readings), with the seasons that history
    can fit, calibrated to the same budget and run over the same window, so they are measured
    as the production detectors are. Unlike those, their training keeps its past anomalies
    (a plain rolling z or matrix profile has no such cleaning)."""
    if not (series.index >= a).any():
        return None
    resolve_after = parse_duration(options.resolve_after, field="resolve_after")
    train, context = train_span(plan.sensor), context_span(plan.sensor)
    usable = usable_periods(plan.periods, series.index[-1] - series.index[0])
    dets = baseline_detectors(usable, budget=options.budget, train_window=train)
    early = series[series.index <= min(b, a + train)]
    window = series.iloc[max(0, series.index.searchsorted(a - context) - 1) :]
    found, skipped = {}, {}
    for name in names:
        det = dets[name]
        try:
            fit_on_history(det, series[series.index < a], early)
        except PlantcastError as exc:
            skipped[name] = str(exc)
            continue
        episodes = det.episodes(window)
        found[name] = episodes[episodes["end"] >= a - resolve_after]
    scored = int((series.index >= a).sum()) if found else 0
    return ChunkScore(a, b, found, skipped, scored)


def _as_episodes(alerts: list[dict], seen: list[pd.DataFrame], last) -> pd.DataFrame:
    if not alerts:
        return pd.DataFrame({c: pd.Series(dtype="datetime64[ns, UTC]") for c in EPISODE})
    start = to_epoch_ns([a["ts"] for a in alerts])
    end = to_epoch_ns([last if a["ends_at"] is None else a["ends_at"] for a in alerts])
    eps = pd.concat(seen, ignore_index=True)
    e_start, e_end, e_det = (to_epoch_ns(eps[c]) for c in EPISODE)
    detected = start.copy()
    for i, (s, e) in enumerate(zip(start, end, strict=True)):
        inside = (e_start <= e) & (e_end >= s)
        if inside.any():
            detected[i] = max(e_det[inside].min(), s)
    frame = pd.DataFrame(
        {
            c: pd.to_datetime(v, utc=True)
            for c, v in zip(EPISODE, (start, end, detected), strict=True)
        }
    )
    return frame.sort_values("start").reset_index(drop=True)


def _scored_part(episodes: pd.DataFrame, scored_from) -> pd.DataFrame:
    return episodes[episodes["end"] >= scored_from] if len(episodes) else episodes


def scenario_found(
    series: pd.Series,
    scored_from,
    *,
    periods: tuple[str, ...],
    options: DetectOptions,
    detectors: tuple[str, ...],
    baselines: tuple[str, ...],
    unions: Mapping[str, tuple[str, ...]] | None = None,
) -> dict[str, pd.DataFrame]:
    """Alerts of the production detectors (and ``combined``, the alerts they write together)
    and the named ``baselines``', over the scored span of ``series``. ``unions``
    (``{name: detectors}``) adds the union of each set of them under its name (an estimate:
    the episodes' union, not the alerts that set would write): one run weighs several
    candidate sets."""
    found = replay_alerts(
        series,
        periods=periods,
        scored_from=scored_from,
        options=options,
        detectors=detectors,
        baselines=baselines,
    )
    found = {n: _scored_part(e, scored_from) for n, e in found.items()}
    for name, members in (unions or {}).items():
        found[name] = union_episodes([found[m] for m in members])
    return found


def score_scenario(
    scenario: Scenario,
    *,
    periods: tuple[str, ...],
    options: DetectOptions = DEFAULT_OPTIONS,
    detectors: tuple[str, ...] = DETECTORS,
    baselines: tuple[str, ...] = BASELINES,
    tolerance: int = 3,
    unions: Mapping[str, tuple[str, ...]] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per-event rows (detector, kind, magnitude_sigma, detected, delay, lead_h, nab) and
    per-detector rows (false_positives, fp_weight, clean_alerts, clean_days) of one scenario
    and its clean twin, scored from the end of its warm-up."""
    idx = scenario.series.index
    scored_from = idx[idx.searchsorted(idx[0] + scenario.warmup)]
    found, clean_found = (
        scenario_found(
            s,
            scored_from,
            periods=periods,
            options=options,
            detectors=detectors,
            baselines=baselines,
            unions=unions,
        )
        for s in (scenario.series, scenario.clean)
    )
    days = (scenario.clean.index[-1] - scored_from) / pd.Timedelta(days=1)
    events, stats = [], []
    for name, eps in found.items():
        matched, fps = match_events(scenario.labels, eps, scenario.interval, tolerance)
        weight = false_alert_weights(scenario.labels, eps, scenario.interval, tolerance).sum()
        events.append(matched.assign(detector=name))
        stats.append((name, fps, float(weight), len(clean_found[name]), days))
    cols = ["detector", "false_positives", "fp_weight", "clean_alerts", "clean_days"]
    return pd.concat(events, ignore_index=True), pd.DataFrame(stats, columns=cols)


def run_evaluation(
    n_scenarios: int = 50,
    seed: int = 0,
    *,
    source: str = "synthetic",
    backgrounds: Mapping[str, pd.Series] | None = None,
    options: DetectOptions = DEFAULT_OPTIONS,
    detectors: tuple[str, ...] = DETECTORS,
    baselines: tuple[str, ...] = BASELINES,
    tolerance: int = 3,
    unions: Mapping[str, tuple[str, ...]] | None = None,
    on_progress: Callable[[int, int], None] | None = None,
    **scenario_kwargs,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Score ``n_scenarios`` scenarios (seeds ``seed .. seed + n − 1``); raw rows to summarize.

    ``source="real"`` builds each on a real series of ``backgrounds`` (``{name: series}``,
    taken in turn) with the recording's seasonal periods; synthetic ones are simulated
    sensors with their signal's daily cycle. Rows carry the ``scenario`` seed and the
    ``background`` ("synthetic" for generated ones). ``baselines`` names those of
    :data:`~plantcast.detect.evaluation.BASELINES` replayed beside the detectors (the matrix
    profile costs most: about a second a scenario, more on numba's first compile).
    """
    if source not in ("synthetic", "real"):
        raise ValueError(f"source must be 'synthetic' or 'real', got {source!r}")
    backgrounds = backgrounds or {}
    names = list(backgrounds)
    if source == "real" and not names:
        raise ValueError("a real evaluation needs backgrounds: {name: series}")
    events, stats = [], []
    for i in range(n_scenarios):
        name = names[i % len(names)] if source == "real" else "synthetic"
        if source == "real":
            periods = PERIODS.get(name, ())
            scenario = real_scenario(
                backgrounds[name], seed + i, periods=periods or ("24h",), **scenario_kwargs
            )
        else:
            scenario = generate_scenario(seed + i, **scenario_kwargs)
            periods = _signal_periods(scenario)
        ev, st = score_scenario(
            scenario,
            periods=periods,
            options=options,
            detectors=detectors,
            baselines=baselines,
            tolerance=tolerance,
            unions=unions,
        )
        events.append(ev.assign(scenario=seed + i, background=name))
        stats.append(st.assign(scenario=seed + i, background=name))
        if on_progress is not None:
            on_progress(i + 1, n_scenarios)
    return pd.concat(events, ignore_index=True), pd.concat(stats, ignore_index=True)


def _signal_periods(scenario: Scenario) -> tuple[str, ...]:
    """A simulated sensor's periods: its signal's cycles (as ``plantcast simulate`` stores)."""
    model = scenario.model
    if model is None:
        return ()
    return tuple(str(parse_duration(c.period)) for c in model.cycles)


def evaluate_detectors(
    n_scenarios: int = 50, seed: int = 0, *, min_sigma: float | None = None, **options
) -> pd.DataFrame:
    """The evaluation table: detector × kind (+ ``all``), with ``combined`` and the baselines.

    ``min_sigma`` keeps the events of at least that size (in σ; stuck and dropout, which have
    no size, always count); false positives are unchanged (an episode on a smaller event is
    not false). ``options`` are those of :func:`run_evaluation`.
    """
    events, stats = run_evaluation(n_scenarios, seed, **options)
    return summarize(at_least(events, min_sigma), stats)


def at_least(events: pd.DataFrame, min_sigma: float | None) -> pd.DataFrame:
    """The events of at least ``min_sigma`` σ (all of them when None); unsized ones stay."""
    if min_sigma is None:
        return events
    return events[events["magnitude_sigma"].abs().fillna(np.inf) >= min_sigma]


def clean_days(
    recordings: Mapping[str, pd.Series],
    *,
    labels: Mapping[str, pd.DataFrame] | None = None,
    options: DetectOptions = DEFAULT_OPTIONS,
    detectors: tuple[str, ...] = DETECTORS,
    baselines: tuple[str, ...] = BASELINES,
    fit_days: float = 14,
    tolerance: int = 3,
    unions: Mapping[str, tuple[str, ...]] | None = None,
) -> pd.DataFrame:
    """False alerts per 30 days on whole real recordings, scored as ``detect`` would a sensor
    whose first ``fit_days`` were history: weekly chunks, each refitted on the history before
    it. Only the scored span counts.

    ``labels`` (``{name: frame with kind, starts_at, ends_at}``) name known real anomalies:
    an alert that touches one is not false, and their recall, event precision, F1, lead time
    and NAB score are reported (NaN without labels). One row per recording × detector,
    ``combined`` included.
    """
    rows = []
    for name, series in recordings.items():
        idx = series.index
        scored_from = idx[idx.searchsorted(idx[0] + pd.Timedelta(days=fit_days))]
        days = (idx[-1] - scored_from) / pd.Timedelta(days=1)
        step = pd.Timedelta(int(np.median(np.diff(idx.asi8))), unit="ns")
        known = (labels or {}).get(name)
        if known is None:
            known = pd.DataFrame(columns=["kind", "starts_at", "ends_at"])
        known = known[known["starts_at"] >= scored_from]
        found = scenario_found(
            series,
            scored_from,
            periods=PERIODS.get(name, ()),
            options=options,
            detectors=detectors,
            baselines=baselines,
            unions=unions,
        )
        for det_name, eps in found.items():
            got = labelled_scores(known, eps, step, tolerance)
            scored = ("recall", "precision", "f1", "median_lead_h", "nab")
            # without labels there is nothing to score them on (every alert is false)
            scores = [got[k] if len(known) else float("nan") for k in scored]
            rows.append(
                (
                    name,
                    det_name,
                    days,
                    got["alerts"],
                    got["false_alerts"],
                    30.0 * got["false_alerts"] / days,
                    got["events"],
                    got["detected"],
                    *scores,
                )
            )
    return pd.DataFrame(rows, columns=CLEAN_COLUMNS)
