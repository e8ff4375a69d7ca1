"""Forecast a stored sensor and backtest its models: bounded reads, cached fits and intervals.

The point model is refitted only when the sensor has a new reading (``ForecastCache``). Its
conformal intervals come from a backtest, which costs ``windows + 1`` fits; they are cached per
(sensor, model, parameters) and recalibrated only after ``recalibrate_every`` new readings,
so a live page refreshing every few seconds never pays for a backtest on its hot path.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pandas as pd

from plantcast.core.errors import InputError, NotEnoughData, Refused
from plantcast.forecast import (
    BacktestResult,
    ForecastCache,
    available_models,
    backtest,
    get_model,
)
from plantcast.forecast.backtest import Exclusions, backtest_many
from plantcast.forecast.base import DEFAULT_MAX_TRAIN_POINTS
from plantcast.forecast.cache import freeze
from plantcast.forecast.conformal import ConformalIntervals
from plantcast.forecast.features import infer_interval
from plantcast.forecast.preprocess import coarsen
from plantcast.forecast.wrappers import forecast_after
from plantcast.services.seasons import maybe_refresh_seasons
from plantcast.store import Store

DEFAULT_MODELS = ("fourier_linear", "svr", "random_forest", "seasonal_naive")


class FitPending(Refused):
    """A slow model (``auto``) is being fitted in the background; a later refresh shows it."""


@dataclass(frozen=True)
class ForecastSpec:
    """What to forecast and how; ``model_params`` keeps only what each model accepts."""

    model: str = "fourier_linear"
    horizon: int = 48
    periods: tuple[str, ...] = ("24h",)
    harmonics: int = 3
    smooth: int | None = None  # None: fit raw readings (see plantcast.forecast.base)
    max_train_points: int | None = None  # None: each model's own bound (2016; ets, theta 1008)
    intervals: bool = True
    windows: int = 10  # backtest origins used to calibrate intervals
    # Fit the mean of each ``step`` of readings, not the readings (a fast sensor's forecast
    # over a long horizon: a coarser grid, so training covers more time and costs less);
    # ``horizon`` and the training window then count steps. None: the readings as stored.
    step: pd.Timedelta | None = None

    def model_params(self, name: str | None = None) -> dict:
        name = name or self.model
        wanted = {
            "periods": self.periods,
            "harmonics": self.harmonics,
            "max_train_points": self.max_train_points,
            "smooth": self.smooth,
            "horizon": self.horizon,
        }
        if self.max_train_points is None:
            del wanted["max_train_points"]
        accepted = get_model(name)._param_names()
        return {k: v for k, v in wanted.items() if k in accepted}

    def history_points(self, interval: pd.Timedelta | None = None) -> int:
        """How many latest readings to read: the training window plus the backtest's span
        (in steps; given the sensor's ``interval``, in readings of it)."""
        train = self.max_train_points or DEFAULT_MAX_TRAIN_POINTS
        return (train + self.horizon * (self.windows + 1)) * self.readings_per_step(interval)

    def readings_per_step(self, interval: pd.Timedelta | None) -> int:
        """How many of a sensor's readings one ``step`` averages (1 without a step)."""
        if self.step is None or interval is None or interval <= pd.Timedelta(0):
            return 1
        return max(1, math.ceil(self.step / interval))


@dataclass
class ForecastResult:
    sensor: str
    model: str  # the registry name asked for
    chosen: str  # what actually forecast (differs for ``auto``)
    frame: pd.DataFrame  # mean (+ lower_80/upper_80/lower_95/upper_95), indexed by ts
    fitted_on: int  # readings the model was fitted on
    calibration: ConformalIntervals | None = None
    n_features: int | None = None  # inputs of a time-feature model (Fourier terms, trend)
    scores: dict[str, float] | None = None  # ``auto``: backtest MASE behind its choice
    no_bands: str | None = None  # why the frame has no 80/95 % bands (too little history, …)


@dataclass
class _Calibration:
    intervals: ConformalIntervals
    at: pd.Timestamp  # last reading of the calibrating backtest
    exclude: tuple = ()  # the event intervals it left out


class Forecasting:
    """Forecasts for many sensors, with cached fits and interval calibrations (thread-safe).

    With ``background=True`` (the live page) the refresh path never waits for a backtest or,
    after the first fit, for a refit: a missing or stale calibration, and the refit of a
    time-feature model after a new reading, run on a worker thread, while the refresh forecasts
    from the latest reading with the previous fit (its features are timestamps, so an earlier
    fit forecasts any future time) and the previous bands. Without it (CLI, tests) everything
    is computed before returning.
    """

    MAX_PENDING = 8  # queued background jobs; beyond this a refresh retries later

    def __init__(
        self,
        cache: ForecastCache | None = None,
        recalibrate_every: int = 48,
        *,
        background: bool = False,
    ) -> None:
        self.cache = cache or ForecastCache()
        self.recalibrate_every = recalibrate_every
        self._calibrations: dict = {}
        self._too_short: dict = {}  # calibration key → why no band could be calibrated
        self._pending: set = set()
        self._lock = threading.Lock()
        self._pool = (
            ThreadPoolExecutor(max_workers=1, thread_name_prefix="plantcast-forecast")
            if background
            else None
        )

    def wait(self) -> None:
        """Block until background refits and calibrations are done (tests, benchmarks)."""
        while self._pool is not None:
            self._pool.submit(lambda: None).result()
            with self._lock:
                if not self._pending:
                    return

    def shutdown(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)

    def _submit(self, job_key, fn, *args) -> bool:
        """Queue ``fn(*args)`` once per ``job_key``; False when the queue is full."""
        with self._lock:
            if job_key in self._pending:
                return True
            if len(self._pending) >= self.MAX_PENDING:
                return False
            self._pending.add(job_key)

        def run():
            try:
                fn(*args)
            finally:
                with self._lock:
                    self._pending.discard(job_key)

        self._pool.submit(run)
        return True

    def forecast_series(
        self, key: str, series: pd.Series, spec: ForecastSpec, *, exclude: Exclusions = ()
    ) -> ForecastResult:
        """Forecast ``series`` (identified by ``key`` for the caches) ``spec.horizon`` steps.

        ``exclude``: intervals of time (injected events) whose forecast errors calibrate no
        band (see ``event_exclusions``); a change in them recalibrates.
        """
        if spec.model not in available_models():
            raise InputError(
                f"unknown model {spec.model!r}; choose from {', '.join(available_models())}",
                field="model",
            )
        if spec.horizon < 1:
            raise InputError("horizon must be at least one step", field="horizon")
        params = spec.model_params()
        model, frame = self._fitted_forecast(key, series, spec, params)
        intervals = self._intervals(key, series, spec, params, exclude) if spec.intervals else None
        if intervals is not None:
            frame = intervals.apply(frame[["mean"]])
        chosen = getattr(model, "chosen_", spec.model)
        pipeline = getattr(getattr(model, "model_", model), "pipeline_", None)
        n_features = getattr(pipeline, "n_features_in_", None)
        scores = getattr(model, "scores_", None)
        no_bands = (
            None
            if intervals is not None or not spec.intervals
            else self._why_no_bands(key, spec, params)
        )
        return ForecastResult(
            key, spec.model, chosen, frame, model.n_train_, intervals, n_features, scores, no_bands
        )

    def _why_no_bands(self, key, spec, params) -> str:
        """Why a forecast asked with bands has none: the calibrating backtest's refusal, or
        (live page) a calibration still running in the background."""
        with self._lock:
            why = self._too_short.get((key, spec.model, freeze(params), spec.horizon))
        if why is None:
            return "their calibration is still running"
        hint = "; a shorter horizon needs less" if "one horizon" in why else ""
        return f"too little history to calibrate them ({why}){hint}"

    def _fitted_forecast(self, key, series, spec, params):
        """The model and its forecast from the latest reading (see the class docstring).

        In the background mode a previous fit forecasts after the latest reading without a
        refit (``forecast_after``: lag and level-following models use the new readings), and
        a model that ``fits_slowly`` (``auto``) is fitted the first time in the background too.
        """
        if self._pool is not None:
            exact = self.cache.peek(key, spec.model, params, series)
            if exact is not None:
                return exact, exact.predict(spec.horizon)
            previous = self.cache.latest(key, spec.model, params)
            slow = getattr(get_model(spec.model, **params), "fits_slowly", False)
            if previous is not None or slow:
                job = ("fit", key, spec.model, freeze(params))
                self._submit(job, self.cache.get_or_fit, key, spec.model, params, series.copy())
                if previous is None:
                    raise FitPending(f"{spec.model}: choosing a model in the background")
                return previous, forecast_after(previous, series, spec.horizon)[["mean"]]
        model = self.cache.get_or_fit(key, spec.model, params, series)
        return model, model.predict(spec.horizon)

    def _intervals(self, key, series, spec, params, exclude=()) -> ConformalIntervals | None:
        """The bands' calibration: recomputed after ``recalibrate_every`` new readings or when
        the events to leave out change; meanwhile (live page) the previous one is shown."""
        exclude = tuple(exclude)
        ckey = (key, spec.model, freeze(params), spec.horizon)
        with self._lock:
            cal = self._calibrations.get(ckey)
        fresh = cal is not None and cal.exclude == exclude
        if fresh and (series.index > cal.at).sum() < self.recalibrate_every:
            return cal.intervals
        if self._pool is None:
            self._calibrate(ckey, series, spec, params, exclude)
            with self._lock:
                cal = self._calibrations.get(ckey)
            return cal.intervals if cal else None
        self._submit(ckey, self._calibrate, ckey, series.copy(), spec, params, exclude)
        return cal.intervals if cal else None

    def _calibrate(self, ckey, series, spec, params, exclude=()) -> None:
        try:
            step = max(1, spec.horizon // 4)
            model = get_model(spec.model, **params)
            result = backtest(series, model, spec.horizon, step, spec.windows, exclude=exclude)
            with self._lock:
                self._calibrations[ckey] = _Calibration(result.intervals, series.index[-1], exclude)
                self._too_short.pop(ckey, None)
        except NotEnoughData as exc:  # too short to calibrate: no bands rather than a failure
            with self._lock:
                self._too_short[ckey] = str(exc)


def event_exclusions(
    store: Store, sensor_id: int, series: pd.Series, horizon: int
) -> list[tuple[pd.Timestamp, pd.Timestamp | None]]:
    """Intervals of time to leave out of band calibration: the sensor's injected events over
    ``series``, each extended by one horizon after its end (forecasts issued during an event
    start from disturbed readings). Open events stay open."""
    if series.empty:
        return []
    interval = infer_interval(series.index) if len(series) > 1 else pd.Timedelta(0)
    margin = horizon * interval
    events = store.events_overlapping(sensor_id, series.index[0], series.index[-1] + margin)
    return [(e.starts_at, None if e.ends_at is None else e.ends_at + margin) for e in events]


@dataclass(frozen=True)
class SensorData:
    """What a forecast or backtest of one sensor reads from the store: its latest readings
    and the times to leave out of band calibration. Plain data: it travels to a Dask worker."""

    sensor: str
    series: pd.Series
    exclude: tuple = ()


def read_sensor_data(store: Store, sensor_name: str, spec: ForecastSpec) -> SensorData:
    """The sensor's latest readings (bounded by count) and its event exclusions."""
    sensor = store.get_sensor(sensor_name)
    maybe_refresh_seasons(store, sensor)  # cheap unless the sensor gained much new history
    series = store.read_tail(sensor.id, spec.history_points(sensor.interval))  # bounded
    if series.empty:
        raise NotEnoughData(f"sensor {sensor_name!r} has no readings yet")
    if spec.step is not None and spec.readings_per_step(sensor.interval) > 1:
        series = coarsen(series, spec.step)
    exclude = tuple(event_exclusions(store, sensor.id, series, spec.horizon))
    return SensorData(sensor.name, series, exclude)


def forecast_sensor(
    store: Store, sensor_name: str, spec: ForecastSpec, service: Forecasting | None = None
) -> ForecastResult:
    """Forecast a stored sensor from its latest readings."""
    data = read_sensor_data(store, sensor_name, spec)
    return forecast_data(data, spec, service)


def forecast_data(
    data: SensorData, spec: ForecastSpec, service: Forecasting | None = None
) -> ForecastResult:
    """The pure half of ``forecast_sensor``: no store (runs here or on a Dask worker)."""
    return (service or Forecasting()).forecast_series(
        data.sensor, data.series, spec, exclude=list(data.exclude)
    )


def backtest_sensor(
    store: Store,
    sensor_name: str,
    models: tuple[str, ...],
    spec: ForecastSpec,
    *,
    step: int | None = None,
    n_jobs: int | None = 1,
    on_progress: Callable[[int, int, str], None] | None = None,
) -> tuple[pd.Series, dict[str, BacktestResult], dict[str, str]]:
    """Backtest each model on the sensor's latest readings.

    Returns the series, the results by model, and the models that could not be backtested
    with the reason (e.g. too little history), so one short model does not sink the rest.
    ``n_jobs`` > 1 (or -1) fits the (model, origin) pairs in worker processes: same results.
    ``on_progress(done, total, label)`` follows the fits. Forecast steps whose time an
    injected event covers (plus one horizon after it) calibrate no band.
    """
    check_models(models)
    data = read_sensor_data(store, sensor_name, spec)
    results, failed = backtest_data(
        data, models, spec, step=step, n_jobs=n_jobs, on_progress=on_progress
    )
    return data.series, results, failed


def check_models(models: tuple[str, ...]) -> None:
    unknown = [m for m in models if m not in available_models()]
    if unknown:
        raise InputError(
            f"unknown model(s) {', '.join(unknown)}; choose from {', '.join(available_models())}",
            field="models",
        )


def backtest_data(
    data: SensorData,
    models: tuple[str, ...],
    spec: ForecastSpec,
    *,
    step: int | None = None,
    n_jobs: int | None = 1,
    on_progress: Callable[[int, int, str], None] | None = None,
) -> tuple[dict[str, BacktestResult], dict[str, str]]:
    """The pure half of ``backtest_sensor``: results by model (in ``models``' order) and the
    failures with why; no store (runs here or on a Dask worker)."""
    built = [get_model(name, **spec.model_params(name)) for name in models]
    results, failed = backtest_many(
        data.series,
        built,
        spec.horizon,
        step,
        spec.windows,
        exclude=list(data.exclude),
        n_jobs=n_jobs,
        on_progress=on_progress,
    )
    results = {name: results[name] for name in models if name in results}  # asked order
    if not results:
        short = any("one horizon" in why for why in failed.values())
        hint = (
            f" ({len(data.series):,} readings for a horizon of {spec.horizon} steps and "
            f"{spec.windows} windows: a shorter horizon or fewer windows needs less)"
            if short
            else ""
        )
        raise NotEnoughData(
            "no model could be backtested: "
            + "; ".join(f"{k}: {v}" for k, v in failed.items())
            + hint
        )
    return results, failed


def metrics_table(results: dict[str, BacktestResult]) -> pd.DataFrame:
    """One row per model: MAE, RMSE, MASE, sMAPE and interval coverage."""
    rows = {name: r.metrics for name, r in results.items()}
    cols = ["mae", "rmse", "mase", "smape", "coverage_80", "coverage_95"]
    table = pd.DataFrame.from_dict(rows, orient="index")
    return table[[c for c in cols if c in table.columns]].sort_values("mase")


__all__ = [
    "DEFAULT_MODELS",
    "ForecastResult",
    "ForecastSpec",
    "Forecasting",
    "SensorData",
    "backtest_data",
    "backtest_sensor",
    "check_models",
    "event_exclusions",
    "forecast_data",
    "forecast_sensor",
    "metrics_table",
    "read_sensor_data",
]
