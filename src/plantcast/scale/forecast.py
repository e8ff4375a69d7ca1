"""Backtests and forecast refits of many sensors fanned out on Dask: each sensor's readings
are read on the client (``read_sensor_data``), the fits run on workers (``backtest_data``,
``forecast_data``: the same pure functions the one-sensor commands call), and only the results
come back."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable

from distributed import Client

from plantcast.scale.cluster import connect
from plantcast.scale.fanout import FanOut
from plantcast.services.forecast_refit import Choice, Refit, refit_data
from plantcast.services.forecasting import (
    ForecastResult,
    ForecastSpec,
    SensorData,
    backtest_data,
    check_models,
    forecast_data,
    read_sensor_data,
)
from plantcast.store import Store

Progress = Callable[[int, int, str], None]
SpecOf = Callable[[str], ForecastSpec]  # a sensor's spec (its horizon in steps, its periods)
Backtested = tuple[dict, dict]  # (results by model, failures by model)


def _backtest_batch(batch: list, models: tuple[str, ...]) -> list[tuple[str, object]]:
    """On a worker: each sensor's backtest, or the exception that stopped it."""
    out: list[tuple[str, object]] = []
    for name, data, spec in batch:
        try:
            out.append((name, backtest_data(data, models, spec, n_jobs=1)))
        except Exception as exc:  # one sensor's problem is that sensor's alone
            out.append((name, exc))
    return out


def _forecast_batch(batch: list) -> list[tuple[str, object]]:
    """On a worker: each sensor's forecast (a fresh fit), or the exception that stopped it."""
    out: list[tuple[str, object]] = []
    for name, data, spec in batch:
        try:
            out.append((name, forecast_data(data, spec)))
        except Exception as exc:
            out.append((name, exc))
    return out


def _refit_batch(batch: list, kept: dict[str, Choice | None]) -> list[tuple[str, object]]:
    """On a worker: each sensor's refit for the forecast store, or what stopped it."""
    out: list[tuple[str, object]] = []
    for name, data, spec in batch:
        try:
            out.append((name, refit_data(data, spec, kept.get(name))))
        except Exception as exc:
            out.append((name, exc))
    return out


class _Run:
    """Results by sensor in the asked order, with progress; reads on the client.
    ``on_result(name, result)`` sees each sensor's result as it comes back."""

    def __init__(
        self, store: Store, names: list[str], spec_of: SpecOf, on_progress, on_result=None
    ) -> None:
        self.store, self.names, self.spec_of, self.on_progress = store, names, spec_of, on_progress
        self.on_result = on_result
        self.results: dict = {}
        self.specs: dict[str, ForecastSpec] = {}
        for name in names:
            try:
                self.specs[name] = spec_of(name)
            except Exception as exc:  # unknown sensor, horizon shorter than its interval
                self.done(name, exc)
        self.todo = [n for n in names if n in self.specs]

    def done(self, name: str, result) -> None:
        self.results[name] = result
        if self.on_result:
            self.on_result(name, result)
        if self.on_progress:
            self.on_progress(len(self.results), len(self.names), name)

    def load(self, batch: list[str]) -> list[tuple[str, SensorData, ForecastSpec]]:
        payload = []
        for name in batch:
            try:
                data = read_sensor_data(self.store, name, self.specs[name])
            except Exception as exc:  # no readings yet: that sensor's result
                self.done(name, exc)
                continue
            payload.append((name, data, self.specs[name]))
        return payload

    def save(self, _batch: list[str], out: list[tuple[str, object]]) -> None:
        for name, result in out:
            self.done(name, result)

    def fail(self, batch: list[str], exc: Exception) -> None:
        for name in batch:
            if name not in self.results:
                self.done(name, exc)

    def ordered(self) -> dict:
        """Each sensor's result in the asked order (those a stop left unsent have none)."""
        return {name: self.results[name] for name in self.names if name in self.results}


def _fan_out(
    client, scheduler, workers, run: _Run, compute, args, cost, batch_seconds, stop=None
) -> dict:
    if client is None:
        with connect(scheduler, workers) as own:
            return _fan_out(own, None, None, run, compute, args, cost, batch_seconds, stop)
    fan = FanOut(
        client,
        load=run.load,
        compute=compute,
        save=run.save,
        fail=run.fail,
        args=args,
        batch_seconds=batch_seconds,
    )
    fan.run(run.todo, cost=cost, stop=stop)
    return run.ordered()


def backtest_many_sensors(
    store: Store,
    names: Iterable[str],
    models: tuple[str, ...],
    spec_of: SpecOf,
    *,
    client: Client | None = None,
    scheduler: str | None = None,
    workers: int | None = None,
    batch_seconds: float = 0.5,
    on_progress: Progress | None = None,
) -> dict[str, Backtested | Exception]:
    """``backtest_sensor`` of many sensors with the fits on a Dask cluster: per sensor, its
    results and failures by model (what the one-sensor path returns), or why it could not run.
    A task's cost is its number of fits (models × windows)."""
    check_models(models)
    run = _Run(store, list(dict.fromkeys(names)), spec_of, on_progress)
    cost = lambda name: len(models) * run.specs[name].windows  # noqa: E731
    return _fan_out(
        client, scheduler, workers, run, _backtest_batch, (models,), cost, batch_seconds
    )


def forecast_many(
    store: Store,
    names: Iterable[str],
    spec_of: SpecOf,
    *,
    client: Client | None = None,
    scheduler: str | None = None,
    workers: int | None = None,
    batch_seconds: float = 0.5,
    on_progress: Progress | None = None,
) -> dict[str, ForecastResult | Exception]:
    """``forecast_sensor`` of many sensors (fit, calibrate bands, forecast) on a Dask cluster:
    per sensor, its forecast or why it could not be made."""
    run = _Run(store, list(dict.fromkeys(names)), spec_of, on_progress)
    cost = lambda name: 1 + run.specs[name].windows  # noqa: E731  (the fit and calibration)
    return _fan_out(client, scheduler, workers, run, _forecast_batch, (), cost, batch_seconds)


def refit_many(
    store: Store,
    names: Iterable[str],
    spec_of: SpecOf,
    kept: dict[str, Choice | None],
    *,
    client: Client | None = None,
    scheduler: str | None = None,
    workers: int | None = None,
    batch_seconds: float = 0.5,
    on_progress: Progress | None = None,
    on_result: Callable[[str, Refit | Exception], None] | None = None,
    stop: threading.Event | None = None,
) -> dict[str, Refit | Exception]:
    """The forecast store's refits (``refit_data``) of many sensors on a Dask cluster; ``kept``
    holds ``auto``'s choice to keep per sensor (None: choose anew). ``on_result`` is called on
    the client with each sensor's refit (or failure) as it comes back, to store it at once.
    Once ``stop`` is set, no more tasks are sent: those in flight come back and are kept, and
    the sensors not sent have no result."""
    run = _Run(store, list(dict.fromkeys(names)), spec_of, on_progress, on_result)
    # choosing backtests every candidate: several times the cost of refitting a kept choice
    cost = lambda name: (1 if kept.get(name) else 4) * (1 + run.specs[name].windows)  # noqa: E731
    return _fan_out(
        client, scheduler, workers, run, _refit_batch, (kept,), cost, batch_seconds, stop
    )
