"""The scheduled jobs ``serve`` runs (as its ``jobs`` component), on APScheduler.

- ``retention``: readings older than ``retention.keep`` removed (whole months on PostgreSQL);
- ``seasons``: each sensor's seasons detected again once its data has grown enough
  (``plantcast.services.seasons.maybe_refresh_seasons``);
- ``partitions``: PostgreSQL's monthly partitions made ahead of time (``Store.init``);
- ``forecasts``: every sensor's stored forecast refitted when due, ``auto``'s model chosen
  again less often (``refresh_forecasts``); it looks ``FORECAST_CHECKS`` times a period, so
  a sensor too young at one run has its first forecast a sixth of a period later;
- ``reports``: a CSV of the stored forecasts' backtest scores (``jobs.reports_dir``).

Each run's outcome, duration and detail (or error) is written to ``serve_jobs`` for
``plantcast status`` and ``/metrics``. A job runs once at start and then every period; one
instance at a time (a run that overlaps the next is skipped, runs missed while down coalesce).
A run that fails (the database restarting under an hourly forecast refresh, say) is tried again
``RETRY_S`` later, not a whole period later.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

import pandas as pd

from plantcast.core.timeutil import utcnow
from plantcast.serve.config import PlantConfig, seconds
from plantcast.store import Store
from plantcast.store.health import JobState

log = logging.getLogger(__name__)

# A job is given the store, the config, and the shutdown event: a long job (the forecast
# refits) checks it between its steps, so `serve` stops within its limit.
JobFn = Callable[[Store, PlantConfig, threading.Event], str]


RETRY_S = 60.0  # seconds: a failed run is tried again this soon (or its period, if shorter)
# The forecasts job looks this many times a period (``forecasting.every``), refitting the
# forecasts that would be older than the period at its next look, and those missing: a sensor
# too young at one run (1,000 new tags, their first refresh seconds after they began) then
# has its first forecast a sixth of a period later, not a whole one. No look more often than
# FORECAST_CHECK_MIN_S: a short period is looked at once a period, as before.
FORECAST_CHECKS = 6
FORECAST_CHECK_MIN_S = 60.0


def forecast_checks(every_s: float) -> tuple[float, pd.Timedelta]:
    """The forecasts job's period and the age from which it refits a forecast, for refits
    every ``every_s`` seconds: no forecast older than that (and a run's length) at a look."""
    look = every_s / FORECAST_CHECKS
    if look < FORECAST_CHECK_MIN_S:
        # due a little before the period is over, so each run refits what the last one made
        return every_s, pd.Timedelta(seconds=0.9 * every_s)
    return look, pd.Timedelta(seconds=every_s - look)


@dataclass(frozen=True)
class Job:
    name: str
    every_s: float
    run: JobFn


def retention_job(store: Store, config: PlantConfig, _stop: threading.Event) -> str:
    from plantcast.store.maintenance import retention

    keep = config.retention.keep
    if keep is None:
        return "readings kept forever (retention.keep unset)"
    result = retention(store, utcnow() - pd.Timedelta(seconds=seconds(keep)))
    dropped = f", {len(result.partitions)} partition(s) dropped" if result.partitions else ""
    return f"removed {result.rows:,} readings older than {keep}{dropped}"


def seasons_job(store: Store, config: PlantConfig, _stop: threading.Event) -> str:
    from plantcast.services.seasons import maybe_refresh_seasons

    sensors = store.list_sensors()
    refreshed = sum(maybe_refresh_seasons(store, s) is not None for s in sensors)
    return f"seasons detected again for {refreshed} of {len(sensors)} sensor(s)"


def partitions_job(store: Store, config: PlantConfig, _stop: threading.Event) -> str:
    done = store.init()
    made = [d for d in done if "partition" in d or d.startswith("readings_p")]
    if store.dialect != "postgresql":
        return "no partitions on SQLite"
    return f"partitions made ahead: {', '.join(made) or 'none needed'}"


def forecasts_job(store: Store, config: PlantConfig, stop: threading.Event) -> str:
    from plantcast.services.forecast_store import refresh_forecasts

    f = config.forecasting
    _, max_age = forecast_checks(seconds(f.every))
    summary = refresh_forecasts(
        store,
        horizon=f.horizon,
        model=f.model,
        max_age=max_age,
        dask=f.scheduler or f.workers or (True if f.dask else None),
        reselect_every=f.reselect_every,
        points=f.points,
        stop=stop,
        first_model=f.first_model or None,
    )
    failed = f", {len(summary.failed)} failed" if summary.failed else ""
    first = f", {len(summary.first)} first forecast(s) of {f.first_model}" if summary.first else ""
    if summary.stopped:
        failed += f", {summary.stopped} left for the next run (stopping)"
    oldest = summary.oldest_age
    return (
        f"{len(summary.refitted)} of {summary.sensors} sensor(s) refitted "
        f"({len(summary.reselected)} model(s) chosen again{first}), "
        f"{summary.not_due} not due{failed}"
        + ("" if oldest is None else f"; oldest forecast {int(oldest.total_seconds())} s old")
        + _limit_warnings(store)
    )


def _limit_warnings(store: Store) -> str:
    """The forecast-crossing warnings of sensors with limits, from the forecasts just stored."""
    from plantcast.services.limit_alerts import check_stored_forecasts

    warned = [w for w in check_stored_forecasts(store) if w.crossing is not None]
    return f"; {len(warned)} forecast(s) reaching a limit" if warned else ""


def reports_job(store: Store, config: PlantConfig, _stop: threading.Event) -> str:
    """A CSV of every stored forecast's backtest scores (the refits' own backtests): the model
    chosen, when, and its MASE, sMAPE and interval coverage, one row a sensor."""
    import csv
    from pathlib import Path

    from plantcast.services.forecast_store import list_stored

    views = list_stored(store)
    folder = Path(config.jobs.reports_dir)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"backtests-{utcnow():%Y%m%d}.csv"
    metrics = sorted({k for v in views for k in v.scores})
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["sensor", "model", "chosen", "made_at", "stale", *metrics])
        for v in views:
            row = [v.row.sensor, v.row.model, v.row.chosen, v.row.made_at, v.stale]
            writer.writerow(row + [v.scores.get(m, "") for m in metrics])
    return f"{len(views)} sensor(s) in {path}"


def plan(config: PlantConfig) -> list[Job]:
    """The jobs the config asks for, each with its period in seconds."""
    jobs = [
        Job("partitions", seconds(config.jobs.partitions_every), partitions_job),
        Job("retention", seconds(config.retention.every), retention_job),
        Job("seasons", seconds(config.jobs.seasons_every), seasons_job),
    ]
    if config.forecasting.enabled:
        look, _ = forecast_checks(seconds(config.forecasting.every))
        jobs.append(Job("forecasts", look, forecasts_job))
        jobs.append(Job("reports", seconds(config.jobs.reports_every), reports_job))
    return jobs


def run_job(
    store: Store,
    config: PlantConfig,
    job: Job,
    stop: threading.Event | None = None,
    retry_s: float | None = None,
) -> JobState:
    """Run ``job`` once and record its outcome (the record survives a database outage only
    if the database answers by the end of the run: otherwise the outcome is logged). Its next
    run is a period after this one started; with ``retry_s``, a failed run's is ``retry_s``
    after it ended, when that is sooner."""
    started = utcnow()
    t0 = time.perf_counter()
    before = _previous(store, job.name)
    try:
        detail, outcome = job.run(store, config, stop or threading.Event()), "ok"
        log.info("job %s: %s", job.name, detail, extra={"job": job.name})
    except Exception as exc:  # a job's failure is recorded, and the next run tries again
        detail, outcome = f"{type(exc).__name__}: {exc}", "failed"
        log.warning("job %s failed: %s", job.name, detail, extra={"job": job.name})
    finished = utcnow()
    next_run = started + pd.Timedelta(seconds=job.every_s)
    if outcome == "failed" and retry_s is not None:
        next_run = min(next_run, finished + pd.Timedelta(seconds=retry_s))
    state = replace(
        before,
        runs=before.runs + 1,
        failures=before.failures + (outcome == "failed"),
        last_started_at=started,
        last_finished_at=finished,
        last_outcome=outcome,
        last_seconds=time.perf_counter() - t0,
        last_detail=detail[:2000],
        next_run_at=next_run,
    )
    try:
        store.put_job(state)
    except Exception as exc:  # the database is down: the outcome is in the log
        log.warning("job %s: cannot record its outcome: %s", job.name, exc)
    return state


def _previous(store: Store, name: str) -> JobState:
    try:
        return store.get_job(name) or JobState(name)
    except Exception:
        return JobState(name)


def run_scheduler(
    store: Store,
    config: PlantConfig,
    stop: threading.Event,
    *,
    jobs: list[Job] | None = None,
    retry_s: float = RETRY_S,
) -> None:
    """Run the plan's jobs (or ``jobs``) on APScheduler until ``stop`` is set; a job running
    then finishes first (the forecast refits stop after the sensor they are on). A failed run
    brings the job's next run forward to ``retry_s`` from its end."""
    from apscheduler.executors.pool import ThreadPoolExecutor
    from apscheduler.schedulers.background import BackgroundScheduler
    from apscheduler.triggers.interval import IntervalTrigger

    scheduler = BackgroundScheduler(
        executors={"default": ThreadPoolExecutor(max_workers=2)},
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
        timezone="UTC",
    )

    def attempt(job: Job) -> None:
        state = run_job(store, config, job, stop, retry_s)
        period = pd.Timedelta(seconds=job.every_s)
        if state.last_outcome != "failed" or stop.is_set() or state.next_run_at is None:
            return
        if state.last_started_at is None or state.next_run_at >= state.last_started_at + period:
            return  # the period is as short: its next run comes as soon
        again = state.next_run_at
        scheduler.modify_job(job.name, next_run_time=again.to_pydatetime())
        log.info("job %s: tried again at %s", job.name, again, extra={"job": job.name})

    now = utcnow().to_pydatetime()
    jobs = plan(config) if jobs is None else jobs
    for i, job in enumerate(jobs):
        trigger = IntervalTrigger(seconds=max(job.every_s, 1.0), timezone="UTC")
        scheduler.add_job(
            attempt,
            trigger,
            args=(job,),
            id=job.name,
            name=job.name,
            next_run_time=now + pd.Timedelta(seconds=2 * i).to_pytimedelta(),
        )
    scheduler.start()
    log.info("jobs: %s", ", ".join(f"{j.name} every {j.every_s:g} s" for j in jobs))
    stop.wait()
    scheduler.shutdown(wait=True)
