"""Detection of many sensors fanned out on Dask: read and write on the client, score on workers."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from distributed import Client, wait

from plantcast.scale.cluster import connect
from plantcast.services.detection import (
    DETECTORS,
    ChunkScore,
    DetectOptions,
    DetectResult,
    SensorPlan,
    _chunk_series,
    plan_sensor,
    score_chunk,
    write_scores,
)
from plantcast.store import Store

Progress = Callable[[int, int, str], None]
Work = tuple[SensorPlan, list[tuple]]  # a sensor's plan and its chunks: (a, b, series)
FIRST_GUESS = 0.05  # seconds to score one chunk, until the first tasks have been timed


def score_batch(batch: list[Work], options: DetectOptions) -> tuple[list, float]:
    """On a worker: score each sensor's chunks; a sensor that fails returns its exception
    (the others go on, as in the serial path). Returns the results and the seconds it took."""
    t0 = time.perf_counter()
    out: list[tuple[str, list[ChunkScore | None] | None, Exception | None]] = []
    for plan, pieces in batch:
        try:
            scores = [score_chunk(plan, series, a, b, options) for a, b, series in pieces]
            out.append((plan.sensor.name, scores, None))
        except Exception as exc:  # a defect on one sensor's data must not stop the batch
            out.append((plan.sensor.name, None, exc))
    return out, time.perf_counter() - t0


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
    fan_out = _FanOut(store, client, batch_seconds, on_progress, options or DetectOptions())
    return fan_out.run(list(sensor_names), periods=periods, detectors=detectors, since=since)


class _FanOut:
    """Reads sensors into batches of about ``batch_seconds`` of scoring, keeps the workers
    busy with a few batches each at most (the client's memory stays bounded), and writes
    results as they come back."""

    def __init__(self, store, client: Client, batch_seconds, on_progress, options) -> None:
        self.store, self.client, self.options = store, client, options
        self.batch_seconds, self.on_progress = batch_seconds, on_progress
        self.per_chunk = FIRST_GUESS
        self.results: dict[str, DetectResult | Exception] = {}
        self.plans: dict[str, SensorPlan] = {}
        self.pending: dict = {}  # future → chunks it scores
        n_workers = len(client.scheduler_info().get("workers", {})) or 1
        self.max_pending = 2 * n_workers + 1
        self.total = 0

    def run(self, names: list[str], **plan_kw) -> dict[str, DetectResult | Exception]:
        self.total = len(names)
        batch: list[Work] = []
        n_chunks = 0
        for name in names:
            try:
                plan = plan_sensor(self.store, name, **plan_kw)
                pieces = self._read(plan)
            except Exception as exc:  # unknown sensor, unreadable data: reported, others go on
                self._done(name, exc)
                continue
            if not pieces:
                self._done(name, DetectResult(plan.sensor.name, 0, 0, 0, None, None))
                continue
            self.plans[name] = plan
            batch.append((plan, pieces))
            n_chunks += len(pieces)
            if n_chunks * self.per_chunk >= self.batch_seconds:
                self._submit(batch)
                batch, n_chunks = [], 0
        if batch:
            self._submit(batch)
        while self.pending:
            self._collect()
        return self.results

    def _read(self, plan: SensorPlan) -> list[tuple]:
        """The plan's chunks with their series, read here: workers never open the store."""
        return [(a, b, _chunk_series(self.store, plan.sensor, a, b)) for a, b in plan.chunks]

    def _submit(self, batch: list[Work]) -> None:
        while len(self.pending) >= self.max_pending:
            self._collect()
        n_chunks = sum(len(pieces) for _, pieces in batch)
        future = self.client.submit(score_batch, batch, self.options, pure=False)
        self.pending[future] = n_chunks

    def _collect(self) -> None:
        """Write every finished batch's results; wait for one when none has finished."""
        done, _ = wait(list(self.pending), return_when="FIRST_COMPLETED")
        for future in done:
            n_chunks = self.pending.pop(future)
            out, seconds = future.result()
            # the next batches are sized on what the last ones cost
            self.per_chunk = 0.5 * self.per_chunk + 0.5 * seconds / max(n_chunks, 1)
            for name, scores, error in out:
                if error is not None:
                    self._done(name, error)
                    continue
                try:
                    result = write_scores(self.store, self.plans.pop(name), scores, self.options)
                except Exception as exc:
                    result = exc
                self._done(name, result)

    def _done(self, name: str, result: DetectResult | Exception) -> None:
        self.results[name] = result
        self.plans.pop(name, None)
        if self.on_progress:
            self.on_progress(len(self.results), self.total, name)
