"""Detection of many sensors fanned out on Dask: plan, read and write on the client (in bulk,
``services.detection_batch``), score on workers."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from distributed import Client

from plantcast.scale.cluster import connect
from plantcast.scale.fanout import FanOut
from plantcast.services.detection import DETECTORS, DetectOptions, DetectResult
from plantcast.services.detection_batch import (
    PassResults,
    plan_sensors,
    read_batch,
    score_batch,
)
from plantcast.store import Store

Progress = Callable[[int, int, str], None]


def detect_many(
    store: Store,
    sensor_names: Iterable[str],
    *,
    scheduler: str | None = None,
    workers: int | None = None,
    client: Client | None = None,
    batch_seconds: float = 0.5,
    on_progress: Progress | None = None,
    periods: tuple[str, ...] | None = None,
    detectors: tuple[str, ...] = DETECTORS,
    since=None,
    options: DetectOptions | None = None,
) -> dict[str, DetectResult | Exception]:
    """``detect_sensor`` for many sensors with the scoring on a Dask cluster: the same alerts
    and resume points as the serial path. Per sensor, its result or why it was not scored.
    ``client``: a connected one to reuse (``cluster.connect``), else one is made and closed."""
    if client is None:
        with connect(scheduler, workers) as own:
            return detect_many(
                store,
                sensor_names,
                client=own,
                batch_seconds=batch_seconds,
                on_progress=on_progress,
                periods=periods,
                detectors=detectors,
                since=since,
                options=options,
            )
    options = options or DetectOptions()
    plans = plan_sensors(store, sensor_names, periods=periods, detectors=detectors, since=since)
    run = PassResults(store, plans, options, on_progress)
    fan_out = FanOut(
        client,
        load=lambda batch: read_batch(store, batch, options),
        compute=score_batch,
        save=run.save,
        fail=run.fail,
        args=(options,),
        batch_seconds=batch_seconds,
    )
    fan_out.run(run.todo, cost=lambda plan: len(plan.chunks))
    return run.ordered()
