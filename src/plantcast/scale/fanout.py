"""Per-item work fanned out on Dask in batches sized by measured cost.

The client turns a batch of light items into a task's payload (``load``: the store's reads),
a worker runs a pure function on it (``compute``), and the client handles what comes back
(``save``: the store's writes) as tasks finish. A task carries about ``batch_seconds`` of work,
estimated from the items' cost units and what earlier tasks took per unit, because a task per
sensor costs Dask more in scheduling than the work itself. At most a few tasks per worker are
in flight, so the client's memory stays bounded however many items there are.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from distributed import Client, wait

FIRST_GUESS = 0.05  # seconds per cost unit, until the first tasks have been timed


def _timed(compute: Callable, payload, *args) -> tuple[object, float]:
    """On a worker: the result of ``compute(payload, *args)`` and the seconds it took."""
    t0 = time.perf_counter()
    out = compute(payload, *args)
    return out, time.perf_counter() - t0


class FanOut:
    """Run ``compute`` over items in batches on ``client``.

    ``load(batch) -> payload`` and ``save(batch, result)`` run here, in submission and
    completion order; ``fail(batch, exc)`` is told when a batch could not be loaded or its
    task failed as a whole (a worker lost, a result that could not travel)."""

    def __init__(
        self,
        client: Client,
        *,
        load: Callable[[list[Any]], object],
        compute: Callable[..., Any],
        save: Callable[[list[Any], Any], None],
        fail: Callable[[list, Exception], None],
        args: Sequence = (),
        batch_seconds: float = 0.5,
        first_guess: float = FIRST_GUESS,
    ) -> None:
        self.client, self.load, self.compute, self.save, self.fail = (
            client,
            load,
            compute,
            save,
            fail,
        )
        self.args = tuple(args)
        self.batch_seconds = batch_seconds
        self.per_unit = first_guess
        self.pending: dict = {}  # future → (batch, cost units)
        n_workers = len(client.scheduler_info().get("workers", {})) or 1
        self.max_pending = 2 * n_workers + 1

    def run(
        self,
        items: Sequence[Any],
        cost: Callable[[Any], float],
        stop: threading.Event | None = None,
    ) -> int:
        """Every item, or, once ``stop`` is set (a shutdown), those already sent: the tasks in
        flight are waited for and saved, no more are sent. Returns how many items were not
        sent."""
        batch: list = []
        units = 0.0
        for i, item in enumerate(items):
            batch.append(item)
            units += cost(item)
            if units * self.per_unit >= self.batch_seconds:
                if stop is not None and stop.is_set():
                    return self._drain(len(items) - i - 1 + len(batch))
                self._submit(batch, units)
                batch, units = [], 0.0
        if batch:
            if stop is not None and stop.is_set():
                return self._drain(len(batch))
            self._submit(batch, units)
        return self._drain(0)

    def _drain(self, left: int) -> int:
        while self.pending:
            self._collect()
        return left

    def _submit(self, batch: list, units: float) -> None:
        while len(self.pending) >= self.max_pending:
            self._collect()
        try:
            payload = self.load(batch)
        except Exception as exc:  # unreadable batch: reported, the others go on
            self.fail(batch, exc)
            return
        future = self.client.submit(_timed, self.compute, payload, *self.args, pure=False)
        self.pending[future] = (batch, units)

    def _collect(self) -> None:
        """Save every finished batch; wait for one when none has finished."""
        done, _ = wait(list(self.pending), return_when="FIRST_COMPLETED")
        for future in done:
            batch, units = self.pending.pop(future)
            try:
                out, seconds = future.result()
            except Exception as exc:
                self.fail(batch, exc)
                continue
            # the next batches are sized on what the last ones cost
            self.per_unit = 0.5 * self.per_unit + 0.5 * seconds / max(units, 1e-9)
            self.save(batch, out)
