"""Detect anomalies in stored readings and keep the alerts table in step, incrementally.

Each run scores what no run has scored yet (on a first run, the sensor's whole history, or
from ``since``), in chunks of bounded size: each chunk's detectors are fitted on the history
before it (a young sensor learns from what there is) less the anomalies that history holds,
calibrated to the alert budget — or, while the sensor's stored fit is less than a week old and
the data has not drifted, scored against that fit (``detector_fits``) — and
their episodes merged into alerts, so an ongoing anomaly stays one alert whose end moves on
and a run with no new data changes nothing. A detector that cannot fit yet is skipped for the
chunk and says why; the resume point advances all the same, so a sensor never stalls.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import pandas as pd

from plantcast.core.errors import InputError, NotEnoughData, PlantcastError
from plantcast.core.timeutil import format_duration, parse_duration, to_utc
from plantcast.core.types import Alert, Sensor
from plantcast.detect import (
    Detector,
    DiscordDetector,
    DriftDetector,
    DropoutDetector,
    LevelShiftDetector,
    ProfileChangeDetector,
    ResidualZDetector,
    ScaleChangeDetector,
    StuckDetector,
    merge_episodes,
)
from plantcast.detect.alerts import drop_uncorroborated, drop_unlearnt, episode_records
from plantcast.detect.base import DEFAULT_BUDGET, validate_series
from plantcast.detect.calibration import allowed_exceedances
from plantcast.detect.episodes import INCIDENT_COOLDOWN
from plantcast.detect.residual import DETECT_HARMONICS
from plantcast.services.detector_fits import (
    Fit,
    FitKey,
    from_stored,
    is_fresh,
    make_fit,
    reusable,
    to_stored,
)
from plantcast.services.detector_training import (
    fit_on_history,
    refit_without_anomalies,
    usable_periods,
)
from plantcast.services.feedback import Feedback, feedback_for, with_feedback
from plantcast.services.limit_alerts import after_detect
from plantcast.services.seasons import current_periods, stored_periods
from plantcast.store import Store

# drift and profile_change earned their place on the evaluation (issue 17: the labelled replay
# caught 13 of 14 windows with them, 10 without; injected F1 at >= 5 sigma rose); scale_change
# and discord did not (no window or injected event more, discord 3 false alerts / 30 d on
# seattle and ~45 ms per 350 readings): they stay registered, for ``detect --detector``.
DETECTORS = ("residual_z", "level_shift", "stuck", "dropout", "drift", "profile_change")
CONTEXT = pd.Timedelta("7d")  # history before a chunk, for the detectors' trailing statistics
TRAIN = pd.Timedelta("28d")  # history before a chunk that the detectors are fitted on
# Both spans are bounded in readings too, so they follow the sensor's own interval: a 1 s
# sensor trains on its last 11 h (not 2.4M readings), a weekly one on its last 100 readings.
TRAIN_READINGS = (100, 40_320)  # at least, at most (28 days of 1-min readings)
CONTEXT_READINGS = (336, 10_080)  # at least the residual scorers' window; at most 7 d at 1 min
# A fast sensor is scored from what its detectors' scores depend on (``Detector.context_points``,
# before its oldest ongoing alert's start while one is), with this margin for missed readings,
# when that is shorter than its context.
CONTEXT_MARGIN = 1.5
CHUNK_READINGS = 20_000  # readings scored per chunk at most: memory stays flat in history
CHUNK_SPAN = pd.Timedelta("7d")  # time scored per chunk at most: detectors refit weekly
DEFAULT_RESOLVE_AFTER = "2h"
DETECTOR_CLASSES: dict[str, type[Detector]] = {
    "residual_z": ResidualZDetector,
    "level_shift": LevelShiftDetector,
    "stuck": StuckDetector,
    "dropout": DropoutDetector,
    # the pattern-change detectors (``detect --detector NAME``, the evaluation)
    "drift": DriftDetector,
    "scale_change": ScaleChangeDetector,
    "profile_change": ProfileChangeDetector,
    "discord": DiscordDetector,
}
# whose ongoing alerts close from where their newest episode ended (``alerts.seen_until``), not
# from a rescoring of it: a plant-wide dropout's thousand ongoing alerts then cost a pass
# nothing more than a steady one, and the pass keeps no long context in memory
MEMORYLESS = frozenset(n for n, c in DETECTOR_CLASSES.items() if c.memoryless)
# how close an episode must come to an alert to join it: the detector's own cooldown, at least
# ``INCIDENT_COOLDOWN`` (one incident, one alert)
COOLDOWN = {
    n: max(parse_duration(c.policy.cooldown), INCIDENT_COOLDOWN)
    for n, c in DETECTOR_CLASSES.items()
}
# The share of the alert budget a pattern detector is calibrated to (the others: all of it),
# and profile_change's tail factor. Tuned on benchmarks/detect.py --real seeds 1000-1029 (not
# the reported 0-49), clean recordings and the labelled replay: drift at half the budget took
# taylor's false alerts from 0.43 to 0 per 30 d; profile_change's tail 1.25 -> 1.6 took sf's
# (with the default set) from 2.22 to 1.88 at the same F1 (0.974); drift's floor 5 -> 6.5
# took sf's from 2.05 to 1.97 and kept the replay's 13 of 14 windows.
BUDGET_SHARE = {"drift": 0.5, "scale_change": 1.0, "profile_change": 1.0, "discord": 1.0}
PROFILE_TAIL = 1.6
DRIFT_FLOOR = 6.5

Progress = Callable[[int, int, str], None]


@dataclass(frozen=True)
class DetectOptions:
    """How alerts are raised: the budget (alerts per 30 days per detector kind on data like the
    sensor's recent history) and how long a signal stays normal before its alert resolves."""

    budget: float | None = DEFAULT_BUDGET
    resolve_after: str | pd.Timedelta = DEFAULT_RESOLVE_AFTER
    refit: bool = False  # refit every chunk, as if no fit were stored (``detect --refit``)


@dataclass(frozen=True)
class DetectResult:
    sensor: str
    scored: int
    opened: int
    updated: int
    scored_from: pd.Timestamp | None
    scored_until: pd.Timestamp | None
    skipped: dict[str, str] = field(default_factory=dict)  # detector → why it could not fit


def _readings_span(interval: pd.Timedelta, span: pd.Timedelta, bounds: tuple[int, int]):
    """``span``, held between ``bounds`` readings of ``interval`` (no Timedelta overflow)."""
    n = span / interval
    if n < bounds[0]:
        return interval * bounds[0]
    return interval * bounds[1] if n > bounds[1] else span


def train_span(sensor: Sensor) -> pd.Timedelta:
    """The history a chunk's detectors are fitted on: ``TRAIN``, within ``TRAIN_READINGS``."""
    return _readings_span(sensor.interval, TRAIN, TRAIN_READINGS)


def context_span(sensor: Sensor) -> pd.Timedelta:
    """The history before a chunk its trailing statistics read: ``CONTEXT``, within
    ``CONTEXT_READINGS``."""
    return _readings_span(sensor.interval, CONTEXT, CONTEXT_READINGS)


def history_span(sensor: Sensor) -> pd.Timedelta:
    """How far before a chunk its series is read: training and context."""
    return max(train_span(sensor), context_span(sensor))


def make_detectors(
    sensor: Sensor,
    periods: tuple[str, ...],
    names: tuple[str, ...] = DETECTORS,
    options: DetectOptions = DetectOptions(),
) -> dict[str, Detector]:
    """The production detectors of a sensor, configured as ``plantcast detect`` runs them;
    ``periods`` empty: modelled without a season."""
    params = {"periods": tuple(periods), "harmonics": DETECT_HARMONICS}
    kw = {"budget": options.budget, "train_window": train_span(sensor)}
    budget = options.budget

    def share(name: str) -> dict:
        part = None if budget is None else budget * BUDGET_SHARE[name]
        return {**kw, "budget": part}

    factories: dict[str, Callable[[], Detector]] = {
        "residual_z": lambda: ResidualZDetector("fourier_linear", params, **kw),
        "level_shift": lambda: LevelShiftDetector("fourier_linear", params, **kw),
        "stuck": lambda: StuckDetector(**kw),
        "dropout": lambda: DropoutDetector(interval=sensor.interval, **kw),
        "drift": lambda: DriftDetector(periods, threshold=DRIFT_FLOOR, **share("drift")),
        "scale_change": lambda: ScaleChangeDetector(periods, **share("scale_change")),
        "profile_change": lambda: ProfileChangeDetector(
            periods, tail_factor=PROFILE_TAIL, **share("profile_change")
        ),
        "discord": lambda: DiscordDetector(periods, **share("discord")),
    }
    unknown = [n for n in names if n not in factories]
    if unknown:
        raise InputError(
            f"unknown detector(s) {', '.join(unknown)}: choose from {', '.join(factories)}"
        )
    return {n: factories[n]() for n in names}


def _scoring_start(store: Store, sensor: Sensor, names, since) -> pd.Timestamp | None:
    """Where this run starts: ``since``, else the earliest resume point, else the first reading."""
    if since is not None:
        return to_utc(since)
    with store.transaction(readonly=True) as tx:
        marks = [tx.get_scored_until(sensor.id, n) for n in names]
    if any(m is None for m in marks):
        return store.first_timestamp(sensor.id)
    return to_utc(min(m for m in marks if m is not None)) + pd.Timedelta("1us")


def chunk_ranges(sensor: Sensor, start, last) -> list[tuple[pd.Timestamp, pd.Timestamp]]:
    """Time ranges [a, b] from start to last, each at most a week and ``CHUNK_READINGS``
    readings long, so a long history is scored as a weekly job would have scored it."""
    # CHUNK_READINGS intervals of a weekly or slower sensor overflow a Timedelta: compare first
    by_count = CHUNK_SPAN if sensor.interval >= CHUNK_SPAN / CHUNK_READINGS else None
    span = max(by_count or min(sensor.interval * CHUNK_READINGS, CHUNK_SPAN), sensor.interval)
    out, a = [], start
    while a <= last:
        b = min(a + span, last)
        out.append((a, b))
        a = b + pd.Timedelta("1us")
    return out


def scoring_context(plan: SensorPlan, fit: Fit | None, a=None) -> pd.Timedelta:
    """How far before a chunk its detectors read: the context (``context_span``), or, when
    ``fit`` scores, only what its detectors' scores depend on (``short_context``) when that is
    shorter: a 1 s sensor's pass then reads minutes, not hours. An ongoing alert's episode is
    scored whole, to see it go on or end: the context of chunk ``a`` (default: the newest
    reading) then reaches that far before the oldest ongoing alert's start (the scores from
    there on are the whole context's), at most the whole context. Measured from ``a``, where
    it starts stays put from pass to pass, so a kept context (``detection_batch.PassMemory``)
    still reaches it. Only the detectors that agreed on an ongoing alert score all of it
    (``score_chunk``)."""
    return _reaching_ongoing(plan, short_context(plan, fit), a)


def _reaching_ongoing(plan: SensorPlan, short: pd.Timedelta, a=None) -> pd.Timedelta:
    """``scoring_context`` from its ``short_context``."""
    full = context_span(plan.sensor)
    if not plan.ongoing or short == full:
        return short
    at = plan.last if a is None else to_utc(a)
    if plan.ongoing_since is None or at is None:
        return full
    return min(full, short + max(at - plan.ongoing_since, pd.Timedelta(0)))


def short_context(plan: SensorPlan, fit: Fit | None) -> pd.Timedelta:
    """What ``fit``'s detectors' scores of a chunk depend on (``Detector.context_points``,
    times ``CONTEXT_MARGIN`` for missed readings), at most the context (``context_span``):
    the whole context when there is no fit or one of them does not say."""
    full = context_span(plan.sensor)
    if fit is None or not fit.detectors:
        return full
    points = [d.context_points() for d in fit.detectors.values()]
    if any(p is None for p in points):
        return full
    need = math.ceil(max(p for p in points if p is not None) * CONTEXT_MARGIN)
    return min(full, plan.sensor.interval * need)


def fit_key(plan: SensorPlan, options: DetectOptions) -> FitKey:
    """What a fit of this plan is made for (``detector_fits.FitKey``)."""
    return FitKey(plan.detectors, tuple(plan.periods), options.budget, train_span(plan.sensor))


def read_span(plan: SensorPlan, fit: Fit | None, a, options: DetectOptions) -> pd.Timedelta:
    """How far before chunk ``a`` to read: its context alone when ``fit`` is fresh for it
    (``scoring_context``, and two intervals, so the reading before it is usually in the same
    read), else its training history too."""
    if not options.refit and is_fresh(fit, fit_key(plan, options), a, patient=plan.patient):
        return scoring_context(plan, fit, a) + 2 * plan.sensor.interval
    return history_span(plan.sensor)


def read_chunk(store: Store, plan: SensorPlan, fit: Fit | None, a, b, options) -> pd.Series:
    """``chunk_series`` for what scoring the chunk needs: the context when ``fit`` will score
    it; the training history too when it will be refitted (also when its new readings turn
    out to have drifted from a fresh fit: then they are read again, further back)."""
    span = read_span(plan, fit, a, options)
    short = span < history_span(plan.sensor)
    context = scoring_context(plan, fit, a) if short else None
    series = chunk_series(store, plan.sensor, a, b, span, context)
    if short and not reusable(fit, fit_key(plan, options), series, a, patient=plan.patient):
        series = chunk_series(store, plan.sensor, a, b)
    return series


def chunk_series(store: Store, sensor: Sensor, a, b, span=None, context=None) -> pd.Series:
    """The chunk's readings with the history before it (training and context, or ``span``);
    after a gap longer than that, with the last reading before the gap, so the gap is seen
    (a gap reaching into ``context``, default ``context_span``)."""
    start = a - (history_span(sensor) if span is None else span)
    series = store.read_series(sensor.id, start, b + pd.Timedelta("1us"))
    if needs_reading_before(sensor, series, a, context):
        before = store.read_tail(sensor.id, 1, end=start)
        if len(before):
            series = pd.concat([before, series])
    return series


def needs_reading_before(sensor: Sensor, series: pd.Series, a, context=None) -> bool:
    """Whether a chunk's series read from ``a − history_span`` misses the reading before a
    gap that reaches into its context (``context``, default ``context_span``; then that
    reading is added, so the gap is seen)."""
    back = context_span(sensor) if context is None else context
    return series.empty or series.index[0] >= a - back


def window_of(series: pd.Series, sensor: Sensor, a, b) -> pd.Series:
    """``chunk_series`` cut from a whole series in memory (the evaluation's twin of the read)."""
    idx = series.index
    lo, hi = idx.searchsorted(a - history_span(sensor)), idx.searchsorted(b, side="right")
    part = series.iloc[lo:hi]
    if needs_reading_before(sensor, part, a) and lo > 0:
        part = series.iloc[lo - 1 : hi]
    return part


@dataclass(frozen=True)
class SensorPlan:
    """What one run of a sensor will score: its chunks, read from the store before scoring."""

    sensor: Sensor
    periods: tuple[str, ...]
    detectors: tuple[str, ...]
    start: pd.Timestamp | None
    last: pd.Timestamp | None
    chunks: tuple[tuple[pd.Timestamp, pd.Timestamp], ...] = ()
    fit: Fit | None = None  # the stored fit, the first chunk's to reuse if it may
    # floors set by false-alarm labels: thresholds and deviations (services.feedback)
    feedback: Feedback = field(default_factory=Feedback)
    ongoing: bool = True  # an alert of the sensor is ongoing (its episode is scored whole)
    # the oldest ongoing alert's start (None while ongoing: unknown, the whole context is read)
    ongoing_since: pd.Timestamp | None = None
    # the detectors that agreed on an ongoing alert: they score it whole, the others as with
    # none ongoing (None: unknown, every detector scores the whole context read)
    ongoing_detectors: frozenset[str] | None = None
    patient: bool = False  # its stored fit's young refit (in-sample, growth) left to a later pass


@dataclass(frozen=True)
class ChunkScore:
    """One chunk scored: episodes per fitted detector and why the others were skipped. Pure
    data (no store), so it can be computed on a Dask worker and written by the client."""

    a: pd.Timestamp
    b: pd.Timestamp
    found: dict[str, pd.DataFrame]
    skipped: dict[str, str]
    scored: int
    fit: Fit | None = None  # the detectors that scored it: the next chunk's stored fit
    refitted: bool = False  # ``fit`` was made for this chunk (so the writer stores it)


def plan_sensor(
    store: Store,
    sensor_name: str,
    *,
    periods: tuple[str, ...] | None = None,
    detectors: tuple[str, ...] = DETECTORS,
    since=None,
) -> SensorPlan:
    """The sensor, its periods and the chunks from the resume point (or ``since``) on."""
    sensor = store.get_sensor(sensor_name)
    latest = store.last_reading(sensor.id)
    if not periods:
        params = store.sensor_params(sensor.id)
        periods = current_periods(store, sensor, params, None if latest is None else latest[0])
    start = _scoring_start(store, sensor, detectors, since)
    if latest is None or start is None or start > latest[0]:
        return SensorPlan(sensor, periods, detectors, None, None)
    chunks = tuple(chunk_ranges(sensor, start, latest[0]))
    with store.transaction(readonly=True) as tx:
        fit = from_stored(tx.get_fit(sensor.id))
        ongoing = tx.ongoing_alerts([sensor.id], MEMORYLESS).get(sensor.id)
    feedback = feedback_for(store, [sensor.id]).get(sensor.id, Feedback())
    return SensorPlan(
        sensor,
        periods,
        detectors,
        start,
        latest[0],
        chunks,
        fit,
        feedback,
        ongoing is not None,
        ongoing_since=None if ongoing is None else ongoing.since,
        ongoing_detectors=None if ongoing is None else ongoing.detectors,
    )


def score_chunk(
    plan: SensorPlan,
    series: pd.Series,
    a,
    b,
    options: DetectOptions = DetectOptions(),
    fit: Fit | None = None,
) -> ChunkScore | None:
    """Run the detectors on one chunk's series (from ``read_chunk``): those of ``fit`` (the
    stored one, or the previous chunk's) when it may score this chunk, else refitted on the
    history before it. Pure, no store. None when the chunk holds no reading to score (a week
    inside a long gap). Its ``scored`` is 0 when no detector could fit: such a chunk is not
    reported as scored."""
    first_new = int(series.index.searchsorted(a))  # sorted: the series from a on
    if first_new == len(series):
        return None  # the last chunk never is
    resolve_after = parse_duration(options.resolve_after, field="resolve_after")
    found: dict[str, pd.DataFrame] = {}
    key = fit_key(plan, options)
    refitted = options.refit or not reusable(fit, key, series, a, patient=plan.patient)
    if refitted:
        fit, skipped = fit_chunk(plan, series, a, b, options, key)
    else:
        skipped = dict(fit.skipped) if fit is not None else {}  # those it could not make
    scoring = with_feedback(fit, plan.feedback.thresholds)  # false alarms; fit is stored as is
    fitted = scoring.detectors if scoring is not None else {}
    short = short_context(plan, scoring)
    context = _reaching_ongoing(plan, short, a)  # scoring_context
    whole = _window(series, a, context)
    # An ongoing alert's detectors score its episode whole; the others only what their scores
    # of the new readings depend on, as with no alert ongoing (their earlier episodes were the
    # last passes' to see): a plant-wide dropout's thousand ongoing alerts then cost a pass
    # one cheap detector's long window each, not every detector's.
    quick = None
    # Episodes still open at the last run's end are seen whole, so their alerts close (the
    # context reaches back past an ongoing alert's start); read short (no alert ongoing),
    # only those reaching the new readings: the earlier ones were the last run's to see,
    # with a longer history.
    since = a - resolve_after if plan.ongoing or context >= context_span(plan.sensor) else a
    for name, det in fitted.items():
        agreed = plan.ongoing_detectors
        if agreed is None or name in agreed or short >= context:
            seen = whole
        else:
            quick = seen = _window(series, a, short) if quick is None else quick
        found[name] = plan.feedback.keep(name, det.episodes_of(seen, ending_from=since))
    scored = len(series) - first_new if found else 0
    return ChunkScore(a, b, found, skipped, scored, fit, refitted and fit is not None)


def _window(series: pd.Series, a, context: pd.Timedelta) -> pd.Series:
    """The series from the reading before ``a − context`` on (so a gap reaching into the
    context is seen whole), validated once for the detectors that score it."""
    return validate_series(series.iloc[max(0, series.index.searchsorted(a - context) - 1) :])


def fit_chunk(
    plan: SensorPlan, series: pd.Series, a, b, options: DetectOptions, key: FitKey
) -> tuple[Fit | None, dict[str, str]]:
    """The chunk's detectors fitted on the history before it (or its first readings), then
    again without the anomalies found there: the fit (None when no detector can fit yet)
    and why each detector left out could not fit."""
    skipped: dict[str, str] = {}
    needs: dict[str, int] = {}  # readings a skipped detector asked for, where it said
    usable = usable_periods(plan.periods, series.index[-1] - series.index[0])
    early = series[series.index <= min(b, a + train_span(plan.sensor))]
    fitted, used = {}, {}
    for name, det in make_detectors(plan.sensor, usable, plan.detectors, options).items():
        try:
            used[name] = fit_on_history(det, series[series.index < a], early)
            fitted[name] = det
        except PlantcastError as exc:
            skipped[name] = str(exc)
            if isinstance(exc, NotEnoughData) and exc.needed is not None:
                needs[name] = exc.needed
    refit_without_anomalies(fitted, used)
    return make_fit(key, fitted, skipped, used, a, needs), skipped


def alert_changes(
    existing: list[dict], score: ChunkScore, resolve_after: pd.Timedelta
) -> tuple[list[dict], list[dict]]:
    """How the episodes of a scored chunk change a sensor's alerts (``merge_episodes``, each
    detector's episodes within its cooldown): one alert per episode, whichever detectors
    agree on it; a lone reading no other detector corroborates alerts only well past its
    threshold (``alerts.drop_uncorroborated``). The one merge every writer, and the
    evaluation, applies."""
    fit = score.fit
    fitted = fit.detectors if fit is not None else {}
    thresholds = {n: d.threshold_ for n, d in fitted.items() if hasattr(d, "threshold_")}
    kept = drop_uncorroborated(score.found, thresholds, tolerance=INCIDENT_COOLDOWN)
    if fit is not None and fit.in_sample and fit.trained_until >= score.a:
        # a young sensor's readings scored by the fit made on them: what it has not learnt
        kept = drop_unlearnt(kept, in_sample_allowance(fit))
    episodes = [ep for name, eps in kept.items() for ep in episode_records(eps, name)]
    return merge_episodes(
        existing,
        episodes,
        scored_until=score.b,
        gap_tolerance=COOLDOWN,
        resolve_after=resolve_after,
        close_unmatched_at=score.a,
        scored_detectors=tuple(score.found),
        memoryless=MEMORYLESS,
    )


def in_sample_allowance(fit: Fit) -> dict[str, int]:
    """The episodes each detector of an in-sample fit may flag in its own training window
    (``calibration.allowed_exceedances`` of its budget over the window's days)."""
    days = (fit.trained_until - fit.trained_from) / pd.Timedelta(days=1)
    budgets = {n: getattr(d, "budget", None) for n, d in fit.detectors.items()}
    return {n: allowed_exceedances(b, days) for n, b in budgets.items() if b is not None}


def alert_record(alert: Alert) -> dict:
    """A stored alert as ``merge_episodes`` reads it."""
    return {
        "id": alert.id,
        "detector": alert.detector,
        "ts": alert.ts,
        "ends_at": alert.ends_at,
        "score": alert.score,
        "detectors": alert.detectors,
        "seen_until": alert.seen_until,
    }


class Tally:
    """A run's totals over the chunks written, in chunk order. A detector is reported
    skipped only when it scored none of them (a weekly sensor's first chunks may be too short
    to fit on while its later ones are not: it was not skipped for the run)."""

    def __init__(self) -> None:
        self.scored = self.opened = self.updated = 0
        self.skipped: dict[str, str] = {}
        self.ran: set[str] = set()  # detectors that scored a chunk

    def result(self, plan: SensorPlan) -> DetectResult:
        skipped = {n: why for n, why in self.skipped.items() if n not in self.ran}
        return DetectResult(
            plan.sensor.name,
            self.scored,
            self.opened,
            self.updated,
            plan.start,
            plan.last,
            skipped,
        )


def write_chunk(
    store: Store, plan: SensorPlan, score: ChunkScore, options: DetectOptions, tally: Tally
) -> None:
    """Write one scored chunk's alerts and resume points, and count it in ``tally``."""
    resolve_after = parse_duration(options.resolve_after, field="resolve_after")
    n_new, n_changed = _write_alerts(store, plan.sensor, plan.detectors, score, resolve_after)
    tally.opened, tally.updated = tally.opened + n_new, tally.updated + n_changed
    tally.scored += score.scored
    tally.ran.update(score.found)
    tally.skipped.update(score.skipped)  # the latest chunk's reason: how far it got


def write_scores(
    store: Store, plan: SensorPlan, scores: list[ChunkScore | None], options: DetectOptions
) -> DetectResult:
    """Write a sensor's scored chunks (computed elsewhere, in chunk order) as the serial run
    would have, and say what changed."""
    tally = Tally()
    for score in scores:
        if score is not None:
            write_chunk(store, plan, score, options, tally)
    return tally.result(plan)


def detect_sensor(
    store: Store,
    sensor_name: str,
    *,
    periods: tuple[str, ...] | None = None,
    detectors: tuple[str, ...] = DETECTORS,
    since=None,
    options: DetectOptions = DetectOptions(),
    on_progress: Progress | None = None,
) -> DetectResult:
    """Score the unscored readings of one sensor, chunk by chunk, and write or extend alerts."""
    plan = plan_sensor(store, sensor_name, periods=periods, detectors=detectors, since=since)
    if not plan.chunks:
        after_detect(store, [plan.sensor])  # limit alarms (services.limit_alerts)
        return DetectResult(plan.sensor.name, 0, 0, 0, None, None)
    chunks, fit = plan.chunks, plan.fit
    tally = Tally()
    for i, (a, b) in enumerate(chunks):
        if on_progress:
            on_progress(i, len(chunks), plan.sensor.name)
        series = read_chunk(store, plan, fit, a, b, options)
        score = score_chunk(plan, series, a, b, options, fit)
        if score is not None:
            write_chunk(store, plan, score, options, tally)
            fit = score.fit
    if on_progress:
        on_progress(len(chunks), len(chunks), plan.sensor.name)
    after_detect(store, [plan.sensor])  # limit alarms (services.limit_alerts)
    return tally.result(plan)


def _write_alerts(store, sensor, names, score, resolve_after) -> tuple[int, int]:
    """Merge one chunk's episodes into alerts and move every detector's resume point to b."""
    with store.transaction() as tx:
        existing = tx.list_alerts(
            sensor_id=sensor.id, start=score.a - context_span(sensor), limit=10_000
        )
        to_update, to_insert = alert_changes(
            [alert_record(r) for r in existing], score, resolve_after
        )
        for change in to_update:
            tx.update_alert(change.pop("id"), **change)
        for row in to_insert:
            tx.insert_alert(sensor.id, **row)
        for name in names:
            tx.set_scored_until(sensor.id, name, score.b)
        if score.refitted and score.fit is not None:  # kept for the next pass to score with
            tx.put_fit(to_stored(sensor.id, score.fit))
    return len(to_insert), len(to_update)


def explain_sensor(
    store: Store,
    sensor_name: str,
    *,
    periods: tuple[str, ...] | None = None,
    detectors: tuple[str, ...] = DETECTORS,
    options: DetectOptions = DetectOptions(),
) -> dict[str, dict | str]:
    """Each detector fitted on the sensor's latest training window: what it learned (the
    calibrated thresholds and their floors), or why it cannot fit yet."""
    sensor = store.get_sensor(sensor_name)
    periods = periods or stored_periods(store.sensor_params(sensor.id))
    latest = store.last_reading(sensor.id)
    if latest is None:
        return dict.fromkeys(detectors, "no readings yet")
    start = latest[0] - train_span(sensor)
    series = store.read_series(sensor.id, start, latest[0] + pd.Timedelta("1us"))
    with store.transaction(readonly=True) as tx:
        fit = from_stored(tx.get_fit(sensor.id))
    out: dict[str, dict | str] = {
        "periods": ",".join(periods) or "none",
        "training": f"{format_duration(train_span(sensor))} ({len(series):,} readings)",
        "stored fit": fit.describe() if fit else "none (the next detect fits and stores one)",
    }
    feedback = feedback_for(store, [sensor.id]).get(sensor.id, Feedback())
    floors = feedback.thresholds
    if feedback:
        out["false alarms"] = (
            "thresholds at least "
            + ", ".join(f"{name} {value:.3g}" for name, value in sorted(floors.items()))
            + "; deviations above "
            + ", ".join(
                f"{name} {value:.3g}" for name, value in sorted(feedback.deviations.items())
            )
        )
    for name, det in make_detectors(sensor, periods, detectors, options).items():
        try:
            out[name] = det.fit(series).raised_to(floors.get(name, float("-inf"))).explain()
        except PlantcastError as exc:
            out[name] = f"cannot fit yet: {exc}"
    return out
