"""Asset detection fanned out on Dask: plan, read and write on the client (in bulk,
``services.asset_detection``), score on workers (``asset_detection.score_batch``)."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from distributed import Client

from plantcast.scale.cluster import connect
from plantcast.scale.fanout import FanOut
from plantcast.services.asset_detection import (
    ASSET_DETECTORS,
    AssetDetectOptions,
    AssetResult,
    PassResults,
    plan_assets,
    read_batch,
    resolve_assets,
    score_batch,
)
from plantcast.store import Store

Progress = Callable[[int, int, str], None]


def detect_assets_many(
    store: Store,
    names: Iterable[str] | None = None,
    *,
    scheduler: str | None = None,
    workers: int | None = None,
    client: Client | None = None,
    batch_seconds: float = 0.5,
    on_progress: Progress | None = None,
    detectors: tuple[str, ...] = ASSET_DETECTORS,
    since=None,
    options: AssetDetectOptions | None = None,
) -> dict[str, AssetResult | Exception]:
    """``asset_detection.detect_assets`` with the scoring on a Dask cluster: the same alerts
    and resume points. Per asset, its result or why it was not scored. ``client``: a
    connected one to reuse (``cluster.connect``), else one is made and closed."""
    if client is None:
        with connect(scheduler, workers) as own:
            return detect_assets_many(
                store,
                names,
                client=own,
                batch_seconds=batch_seconds,
                on_progress=on_progress,
                detectors=detectors,
                since=since,
                options=options,
            )
    options = options or AssetDetectOptions()
    assets = resolve_assets(store, names, detectors)
    plans = plan_assets(store, assets, detectors=detectors, since=since, options=options)
    run = PassResults(store, plans, options, on_progress)
    fan_out = FanOut(
        client,
        load=lambda batch: read_batch(store, batch),
        compute=score_batch,
        save=run.save,
        fail=run.fail,
        args=(options,),
        batch_seconds=batch_seconds,
    )
    fan_out.run(run.todo, cost=lambda plan: len(plan.chunks()))
    return run.ordered()
