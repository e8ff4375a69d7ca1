"""A Dask client: on an existing scheduler when one is named, else on a local cluster."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from distributed import Client, LocalCluster

from plantcast.core.config import load_settings
from plantcast.core.errors import PlantcastError


@contextmanager
def connect(scheduler: str | None = None, workers: int | None = None) -> Iterator[Client]:
    """A client on ``scheduler`` (else ``PLANTCAST_DASK_SCHEDULER`` unless ``workers`` asks for
    a local cluster), or on a LocalCluster of ``workers`` single-threaded processes (default:
    one per CPU). Whatever was started here is closed on the way out."""
    if workers is not None and workers < 1:
        raise PlantcastError(f"workers must be at least 1, not {workers}")
    if scheduler is None and workers is None:
        scheduler = load_settings().dask_scheduler
    if scheduler:
        try:
            client = Client(scheduler, timeout="10s")
        except (OSError, TimeoutError) as exc:
            raise PlantcastError(
                f"no Dask scheduler answers at {scheduler} ({exc}); start one with "
                "`dask scheduler` and workers with `dask worker tcp://HOST:8786`"
            ) from exc
        with client:
            yield client
        return
    n = workers or os.cpu_count() or 1
    # one thread per process: the scoring holds the GIL, and numpy's own threads are capped
    # by the nanny (OMP_NUM_THREADS=1), so n processes use n cores
    with (
        LocalCluster(
            n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        Client(cluster) as client,
    ):
        yield client
