"""Forecasts kept ready: refresh the stored forecast of every sensor, and read it back at once.

``refresh_forecasts`` is the scheduled job: it refits every sensor whose stored forecast is
older than ``max_age`` (``max_age`` means "refit at most this often"; a sensor without one, or
stored for another model or horizon, is refitted too), in this process or fanned out on Dask
(``plantcast.scale.forecast.refit_many``), and writes each forecast as soon as it is made.
``auto`` chooses its model less often than it refits: a choice is kept until it is
``reselect_every`` old (default a day; or, when given, has served ``reselect_refits`` refits);
in between a refit fits only the chosen model (or blend), about a tenth of the cost of choosing.
A stored forecast has at most ``points`` steps: a sensor whose horizon holds more of its
readings is forecast on their means over a coarser step (``forecast_grid``), so a 1 s sensor's
refit costs what a slow one's does. A ``stop`` event ends a refresh between two sensors.
The scheduled job gives a sensor without any forecast a first one from a quick base model
(``first_model``) and lets ``auto`` choose at its next look.

``stored_forecast`` reads one row (no fit, no readings) and says how old it is and whether it
is stale (older than ``stale_after``): what the API, the page and the CLI show.
"""

from __future__ import annotations

import contextlib
import json
import math
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pandas as pd

from plantcast.core.errors import (
    InputError,
    NotFound,
    PlantcastError,
    StoreError,
    StoreUnavailable,
)
from plantcast.core.timeutil import format_duration, parse_duration, to_utc
from plantcast.core.types import Sensor
from plantcast.services.forecast_refit import BAND_COLUMNS, Choice, Refit, points_json, refit_data
from plantcast.services.forecasting import ForecastSpec, read_sensor_data
from plantcast.services.seasons import sensor_periods_now
from plantcast.store import Store
from plantcast.store.forecasts import ForecastPlan, StoredForecast

DEFAULT_RESELECT_EVERY = pd.Timedelta("1d")
DEFAULT_STALE_AFTER = pd.Timedelta("2h")  # an hourly refresh plus its own run time, with room
MAX_STEPS = 1_440  # a stored forecast's length at most, whatever the horizon and interval
# No horizon given: a day of the sensor's readings, at least MIN_DEFAULT_STEPS (a weekly
# sensor's "day" is not a fraction of a reading but 24 weeks), as `plantcast forecast` does.
MIN_DEFAULT_STEPS = 24
# A stored forecast's steps at most by default: a sensor whose horizon holds more of its
# readings is forecast on their means over a coarser step (a 1 s sensor's 10 min: 10 s steps),
# so a refit costs about the same whatever the sensor's rate, and trains on more time.
DEFAULT_POINTS = 60

Progress = Callable[[int, int, str], None]
# ``dask``: a distributed.Client, a scheduler address ("tcp://host:8786"), a number of local
# worker processes, or True (the configured scheduler, else a local cluster)
DaskTarget = Any


@dataclass
class RefreshSummary:
    """What one refresh did: sensors asked, refitted (and re-chosen), not due, failed."""

    sensors: int = 0
    refitted: list[str] = field(default_factory=list)
    reselected: list[str] = field(default_factory=list)
    first: list[str] = field(default_factory=list)  # auto: first forecasts of ``first_model``
    not_due: int = 0
    failed: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    on_dask: bool = False
    oldest_age: pd.Timedelta | None = None  # after the refresh, over every stored forecast
    stopped: int = 0  # due sensors left for the next run: the refresh was asked to stop

    def as_dict(self) -> dict[str, Any]:
        return {
            "sensors": self.sensors,
            "refitted": len(self.refitted),
            "reselected": len(self.reselected),
            "first": len(self.first),
            "not_due": self.not_due,
            "failed": dict(self.failed),
            "seconds": round(self.seconds, 3),
            "on_dask": self.on_dask,
            "oldest_age_s": None if self.oldest_age is None else self.oldest_age.total_seconds(),
            "stopped": self.stopped,
        }


def _duration(value: pd.Timedelta | timedelta | str, name: str) -> pd.Timedelta:
    """A duration given as text ("1h"), a Timedelta or a datetime.timedelta."""
    if isinstance(value, timedelta) and not isinstance(value, pd.Timedelta):
        value = pd.Timedelta(value)
    return parse_duration(value, field=name)


def default_horizon_steps(interval: pd.Timedelta) -> int:
    """The default horizon in readings of ``interval``: a day of them, within
    [``MIN_DEFAULT_STEPS``, ``MAX_STEPS``] (30 min: 48; 1 s: 1,440; weekly: 24)."""
    day = pd.Timedelta("1d") / interval if interval > pd.Timedelta(0) else MAX_STEPS
    return int(min(max(math.floor(day), MIN_DEFAULT_STEPS), MAX_STEPS))


def horizon_in_steps(horizon: pd.Timedelta, interval: pd.Timedelta) -> int:
    """``horizon`` in readings of ``interval``, at most ``MAX_STEPS`` (a 1 s sensor's "24h"
    is its next 24 minutes, as ``plantcast forecast`` defaults to, not 86,400 steps)."""
    steps = math.floor(horizon / interval) if interval > pd.Timedelta(0) else 0
    if steps < 1:
        raise InputError(
            f"horizon {format_duration(horizon)} is shorter than one reading interval "
            f"({format_duration(interval)})",
            field="horizon",
        )
    return min(steps, MAX_STEPS)


def forecast_grid(
    interval: pd.Timedelta, steps: int, points: int
) -> tuple[int, pd.Timedelta | None]:
    """``steps`` readings of ``interval`` ahead as at most ``points`` steps: the steps and
    the coarser step they are of (None: the sensor's own readings, ``steps`` ≤ ``points``).
    The coarse step is a whole number of readings, so the horizon is kept or a little longer."""
    if points < 1:
        raise InputError(f"points must be at least 1, got {points}", field="points")
    per = math.ceil(steps / points)
    if per <= 1:
        return steps, None
    return math.ceil(steps / per), interval * per


def kept_choice(
    plan: ForecastPlan | None,
    spec: ForecastSpec,
    now: pd.Timestamp,
    reselect_every: pd.Timedelta,
    reselect_refits: int | None,
) -> Choice | None:
    """``auto``'s stored choice when it may serve this refit too (None: choose anew)."""
    if spec.model != "auto" or plan is None or plan.model != "auto" or plan.chosen_at is None:
        return None
    if plan.horizon != spec.horizon:
        return None
    if reselect_refits is not None and plan.refits >= reselect_refits:
        return None
    if now - plan.chosen_at >= reselect_every:
        return None
    return Choice.from_json(plan.choice)


def is_due(
    plan: ForecastPlan | None, model: str, steps: int, now: pd.Timestamp, max_age: pd.Timedelta
) -> bool:
    """Refit when there is no forecast, one of another model or horizon, one too old, or
    ``auto``'s first forecast, made before it chose (``refresh_forecasts(first_model=)``)."""
    if plan is None or plan.model != model or plan.horizon != steps:
        return True
    if model == "auto" and plan.chosen_at is None:
        return True
    return now - plan.made_at >= max_age


def _row(
    sensor_id: int, refit: Refit, plan: ForecastPlan | None, made_at: pd.Timestamp
) -> dict[str, Any]:
    if refit.choice is None or refit.choice.first:  # no choice made (yet)
        chosen_at, refits = None, 0
    elif refit.reselected or plan is None or plan.chosen_at is None:
        chosen_at, refits = made_at, 0
    else:
        chosen_at, refits = plan.chosen_at, plan.refits + 1
    return {
        "sensor_id": sensor_id,
        "model": refit.model,
        "chosen": refit.chosen,
        "horizon": refit.horizon,
        "made_at": made_at,
        "trained_until": refit.trained_until,
        "fitted_on": int(refit.fitted_on),
        "points": points_json(refit.frame),
        "scores": json.dumps(refit.scores),
        "choice": None if refit.choice is None else refit.choice.to_json(),
        "chosen_at": chosen_at,
        "refits": refits,
    }


def refresh_forecasts(
    store: Store,
    sensors: Iterable[str] | None = None,
    *,
    horizon: pd.Timedelta | timedelta | str | None = None,
    model: str = "auto",
    max_age: pd.Timedelta | timedelta | str,
    dask: DaskTarget = None,
    on_progress: Progress | None = None,
    now: pd.Timestamp | None = None,
    reselect_every: pd.Timedelta | timedelta | str = DEFAULT_RESELECT_EVERY,
    reselect_refits: int | None = None,
    windows: int = 10,
    points: int = DEFAULT_POINTS,
    stop: threading.Event | None = None,
    first_model: str | None = None,
) -> RefreshSummary:
    """Refit the stored forecast of every sensor (or of ``sensors``) that is due (see the
    module docstring); one sensor's failure is recorded in the summary and the rest go on
    (a database outage is not a sensor's failure: it raises).

    ``horizon`` and ``max_age`` are durations ("24h" or a Timedelta); the horizon becomes steps
    of each sensor's interval (None: :func:`default_horizon_steps` of each sensor's).
    ``dask``: None or False refits in this process; a ``distributed.Client``, a scheduler
    address, a number of local worker processes, or True (``PLANTCAST_DASK_SCHEDULER``, else a
    local cluster) fans the refits out on Dask.
    ``now`` (tests) fixes the clock: ages are measured from it and forecasts are stamped with
    it; without it each forecast is stamped when it is written. ``on_progress(done, total,
    sensor)`` follows the refits of the due sensors. ``points``: a stored forecast's steps
    at most (:func:`forecast_grid`). ``stop`` (a shutdown) ends the refresh between two
    sensors (on Dask: no more tasks are sent, those in flight are stored), every forecast made
    so far stored; the rest wait for the next run (``stopped``).
    ``first_model`` (for ``auto``; the scheduled job's): a sensor with no stored forecast gets
    its first one from this quick base model at once, and ``auto`` chooses at the next
    refresh, which finds it due: a new plant's thousand tags each have a forecast within
    minutes, not after the tens of minutes choosing for all of them takes.
    """
    from plantcast.forecast import available_models
    from plantcast.forecast.catalog import BASE_MODELS

    started = time.perf_counter()
    if model not in available_models():
        raise InputError(
            f"unknown model {model!r}; choose from {', '.join(available_models())}", field="model"
        )
    if first_model is not None and first_model not in BASE_MODELS:
        raise InputError(
            f"unknown first model {first_model!r}; choose from {', '.join(BASE_MODELS)}",
            field="first_model",
        )
    job = _Refresh(
        store,
        model,
        windows,
        None if now is None else to_utc(now),
        _duration(reselect_every, "reselect_every"),
        reselect_refits,
        points,
        stop,
        first_model if model == "auto" else None,
    )
    job.summary.on_dask = dask is not None and dask is not False
    job.plan(
        sensors,
        None if horizon is None else _duration(horizon, "horizon"),
        _duration(max_age, "max_age"),
    )
    if job.summary.on_dask and job.due:
        job.on_dask(dask, on_progress)
    else:
        job.serially(on_progress)
    job.summary.oldest_age = oldest_age(store, now=job.clock)
    job.summary.seconds = time.perf_counter() - started
    return job.summary


class _Refresh:
    """One refresh: which sensors are due, their specs and kept choices, and the writes."""

    def __init__(
        self,
        store: Store,
        model: str,
        windows: int,
        clock: pd.Timestamp | None,
        reselect_every: pd.Timedelta,
        reselect_refits: int | None,
        points: int = DEFAULT_POINTS,
        stop: threading.Event | None = None,
        first_model: str | None = None,
    ) -> None:
        self.store, self.model, self.windows, self.clock = store, model, windows, clock
        self.points, self.stop, self.first_model = points, stop, first_model
        self.at = clock or pd.Timestamp.now(tz="UTC")
        self.reselect_every, self.reselect_refits = reselect_every, reselect_refits
        self.summary = RefreshSummary()
        self.due: dict[str, Sensor] = {}
        self.steps: dict[str, int] = {}
        self.grid: dict[str, pd.Timedelta | None] = {}  # each sensor's coarse step, if any
        self.plans: dict[int, ForecastPlan] = {}
        self.specs: dict[str, ForecastSpec] = {}
        self.kept: dict[str, Choice | None] = {}

    def plan(
        self, sensors: Iterable[str] | None, span: pd.Timedelta | None, max_age: pd.Timedelta
    ) -> None:
        known = {s.name: s for s in self.store.list_sensors()}
        names = list(known) if sensors is None else list(dict.fromkeys(sensors))
        self.summary.sensors = len(names)
        for name in names:
            if name not in known:
                self.summary.failed[name] = f"no sensor named {name!r}"
        chosen = [known[n] for n in names if n in known]
        with self.store.transaction(readonly=True) as tx:
            self.plans = tx.forecast_plans(s.id for s in chosen)
        for s in chosen:
            try:
                steps = (
                    default_horizon_steps(s.interval)
                    if span is None
                    else horizon_in_steps(span, s.interval)
                )
                self.steps[s.name], self.grid[s.name] = forecast_grid(
                    s.interval, steps, self.points
                )
            except PlantcastError as exc:
                self.summary.failed[s.name] = str(exc)
                continue
            if is_due(self.plans.get(s.id), self.model, self.steps[s.name], self.at, max_age):
                self.due[s.name] = s
            else:
                self.summary.not_due += 1

    def spec_of(self, name: str) -> ForecastSpec:
        """The sensor's spec (its periods read now) and, for ``auto``, the choice to keep."""
        if name not in self.specs:
            sensor = self.due[name]
            spec = ForecastSpec(
                model=self.model,
                horizon=self.steps[name],
                periods=sensor_periods_now(self.store, sensor),
                windows=self.windows,
                step=self.grid.get(name),
            )
            plan = self.plans.get(sensor.id)
            if plan is None and self.first_model is not None:  # auto chooses next time
                self.kept[name] = Choice(self.first_model, first=True)
            else:
                self.kept[name] = kept_choice(
                    plan, spec, self.at, self.reselect_every, self.reselect_refits
                )
            self.specs[name] = spec
        return self.specs[name]

    def save(self, name: str, result: Refit | BaseException) -> None:
        """Store one sensor's refit at once (its own transaction), or record its failure."""
        if isinstance(result, BaseException):
            self.summary.failed[name] = str(result) or type(result).__name__
            return
        sensor = self.due[name]
        made_at = self.clock or pd.Timestamp.now(tz="UTC")
        with self.store.transaction() as tx:
            tx.put_forecasts([_row(sensor.id, result, self.plans.get(sensor.id), made_at)])
        self.summary.refitted.append(name)
        if result.reselected:
            self.summary.reselected.append(name)
        if result.choice is not None and result.choice.first:
            self.summary.first.append(name)

    def serially(self, on_progress: Progress | None) -> None:
        todo = list(self.due)
        for i, name in enumerate(todo):
            if self.stop is not None and self.stop.is_set():
                self.summary.stopped = len(todo) - i
                return
            result: Refit | BaseException
            try:
                spec = self.spec_of(name)
                data = read_sensor_data(self.store, name, spec)
                result = refit_data(data, spec, self.kept[name])
            except (StoreError, StoreUnavailable):
                raise  # the database, not this sensor: the job fails and is retried
            except (PlantcastError, ValueError, ArithmeticError) as exc:  # this sensor's alone
                result = exc
            self.save(name, result)
            if on_progress:
                on_progress(i + 1, len(todo), name)

    def on_dask(self, dask: DaskTarget, on_progress: Progress | None) -> None:
        """The refits on a Dask cluster; each result stored as it comes back."""
        # Imported here: plantcast.scale sits above the services and is needed only on Dask.
        from plantcast.scale.forecast import refit_many

        todo = list(self.due)
        for name in todo:  # the kept choices travel with the tasks: work them out first
            with contextlib.suppress(PlantcastError):  # refit_many records it for that sensor
                self.spec_of(name)
        options: dict[str, Any] = {}
        if isinstance(dask, str):
            options["scheduler"] = dask
        elif isinstance(dask, int) and not isinstance(dask, bool):
            options["workers"] = dask
        elif dask is not True:
            options["client"] = dask
        done = refit_many(
            self.store,
            todo,
            self.spec_of,
            self.kept,
            on_result=self.save,
            on_progress=on_progress,
            stop=self.stop,
            **options,
        )
        self.summary.stopped = len(todo) - len(done)


def oldest_age(store: Store, *, now: pd.Timestamp | None = None) -> pd.Timedelta | None:
    """How old the oldest stored forecast is (None: none stored yet)."""
    with _table(store), store.transaction(readonly=True) as tx:
        oldest = tx.oldest_forecast()
    if oldest is None:
        return None
    return (to_utc(now) if now is not None else pd.Timestamp.now(tz="UTC")) - oldest


@contextlib.contextmanager
def _table(store: Store) -> Iterator[None]:
    """A database made before the ``forecasts`` table: no forecast stored, said so plainly."""
    try:
        yield
    except (StoreError, StoreUnavailable):  # SQLite calls a missing table an OperationalError
        if store.missing_tables(["forecasts"]):
            raise NotFound(
                f"the database {store.url} has no forecasts table yet; run `plantcast init`, "
                "then `plantcast forecast refresh`"
            ) from None
        raise


@dataclass(frozen=True)
class StoredView:
    """A stored forecast as readers see it: the row, its age, and whether it is stale."""

    row: StoredForecast
    age: pd.Timedelta
    stale: bool
    stale_after: pd.Timedelta

    @property
    def scores(self) -> dict[str, float]:
        loaded: dict[str, float] = json.loads(self.row.scores or "{}")
        return loaded

    @property
    def choice(self) -> Choice | None:
        return Choice.from_json(self.row.choice)

    @property
    def step(self) -> pd.Timedelta | None:
        """The time between the forecast's points: the sensor's interval, or the coarser
        step a horizon holding more than ``points`` readings was forecast on (the first point
        is a step after ``trained_until``); None with no point."""
        first = [to_utc(p["ts"]) for p in json.loads(self.row.points)[:2]]
        if not first:
            return None
        before = first[0] if len(first) > 1 else self.row.trained_until
        return first[-1] - before

    def frame(self) -> pd.DataFrame:
        """The points as a frame indexed by time (``BAND_COLUMNS`` present in the row)."""
        points = json.loads(self.row.points)
        if not points:
            return pd.DataFrame(columns=["mean"], index=pd.DatetimeIndex([], tz="UTC"))
        frame = pd.DataFrame(points)
        frame.index = pd.DatetimeIndex(pd.to_datetime(frame.pop("ts"), utc=True))
        return frame[[c for c in BAND_COLUMNS if c in frame]].astype(float)

    @property
    def first(self) -> bool:
        """A sensor's first forecast, made before ``auto`` chose (``first_model``)."""
        choice = self.choice
        return choice is not None and choice.first

    def note(self) -> str:
        """One line for people: what, when, and a warning when stale."""
        made = f"made {format_duration(self.age.floor('s'))} ago"
        text = f"{self.row.chosen} forecast {made}, on readings up to {self.row.trained_until}"
        if self.first:
            text += " (a first forecast: auto chooses at the next scheduled refresh)"
        if self.stale:
            return f"STALE: {text} (older than {format_duration(self.stale_after)})"
        return text


def stored_forecast(
    store: Store,
    sensor_name: str,
    *,
    now: pd.Timestamp | None = None,
    stale_after: pd.Timedelta | timedelta | str = DEFAULT_STALE_AFTER,
) -> StoredView:
    """The sensor's stored forecast (one row read); NotFound for an unknown sensor or one
    without a stored forecast yet."""
    limit = _duration(stale_after, "stale_after")
    with _table(store), store.transaction(readonly=True) as tx:
        row = tx.get_forecast(sensor_name)
        if row is None:
            tx.get_sensor(sensor_name)  # NotFound for an unknown sensor
    if row is None:
        raise NotFound(
            f"sensor {sensor_name!r} has no stored forecast yet; "
            "make one with `plantcast forecast refresh`"
        )
    age = (to_utc(now) if now is not None else pd.Timestamp.now(tz="UTC")) - row.made_at
    return StoredView(row, age, age > limit, limit)


def list_stored(
    store: Store,
    *,
    now: pd.Timestamp | None = None,
    stale_after: pd.Timedelta | timedelta | str = DEFAULT_STALE_AFTER,
) -> list[StoredView]:
    """Every stored forecast, by sensor name, with its age and staleness."""
    limit = _duration(stale_after, "stale_after")
    at = to_utc(now) if now is not None else pd.Timestamp.now(tz="UTC")
    with _table(store), store.transaction(readonly=True) as tx:
        rows = tx.list_forecasts()
    return [StoredView(r, at - r.made_at, at - r.made_at > limit, limit) for r in rows]


__all__ = [
    "DEFAULT_STALE_AFTER",
    "RefreshSummary",
    "StoredView",
    "list_stored",
    "oldest_age",
    "refresh_forecasts",
    "stored_forecast",
]
