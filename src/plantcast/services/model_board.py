"""Backtest scores for the models panel, computed in the background and cached.

A live page must never backtest on its refresh path; it asks the board, which answers with the
latest finished scores (or "computing") and starts one background job when the scores are
missing or older than ``stale_after`` new readings.
"""

from __future__ import annotations

import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import cast

import pandas as pd

from plantcast.core.errors import PlantcastError
from plantcast.forecast import get_model
from plantcast.forecast.cache import freeze
from plantcast.forecast.wrappers import AutoForecaster
from plantcast.services.forecasting import ForecastSpec, backtest_sensor, metrics_table
from plantcast.store import Store


@dataclass(frozen=True)
class BoardEntry:
    table: pd.DataFrame | None  # metrics by model (None while the first run computes)
    as_of: pd.Timestamp | None  # last reading the scores include
    computing: bool
    error: str | None = None
    failed: dict | None = None
    auto_choice: str | None = None  # what ``auto`` chose on the latest history
    auto_scores: dict | None = None  # the backtest MASE behind that choice


class ModelBoard:
    """Per (sensor, models, spec): the latest backtest metrics, refreshed in the background."""

    MAX_PENDING = 4  # settings queued at once (a dragged slider must not queue dozens)

    def __init__(self, stale_after: int = 48) -> None:
        self.stale_after = stale_after
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="plantcast-backtest")
        self._lock = threading.Lock()
        self._done: dict = {}
        self._running: dict[tuple, Future] = {}

    def get(
        self,
        store: Store,
        sensor: str,
        models: tuple[str, ...],
        spec: ForecastSpec,
        last_ts: pd.Timestamp | None,
        *,
        force: bool = False,
    ) -> BoardEntry:
        key = (sensor, tuple(models), freeze(spec.__dict__))
        with self._lock:
            done = self._done.get(key)
            running = key in self._running
            stale = (
                done is None
                or force
                or (
                    last_ts is not None
                    and done.as_of is not None
                    and (last_ts - done.as_of) >= self.stale_after * _interval(store, sensor)
                )
            )
            if stale and not running and models and len(self._running) < self.MAX_PENDING:
                self._running[key] = self._pool.submit(
                    self._compute, key, store, sensor, models, spec, last_ts
                )
                running = True
        if done is None:
            return BoardEntry(None, None, running)
        return replace(done, computing=running)

    def _compute(self, key, store, sensor, models, spec, last_ts) -> None:
        try:
            series, results, failed = backtest_sensor(store, sensor, models, spec)
            choice, scores = _auto_choice(series, spec) if "auto" in models else (None, None)
            entry = BoardEntry(metrics_table(results), last_ts, False, None, failed, choice, scores)
        except Exception as exc:  # shown on the page; the next request retries
            entry = BoardEntry(
                None, last_ts, False, str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            )
        with self._lock:
            self._done[key] = entry
            self._running.pop(key, None)

    def wait(self, timeout: float = 60.0) -> None:
        """Block until running jobs finish (for tests and benchmarks)."""
        with self._lock:
            futures = list(self._running.values())
        for f in futures:
            f.result(timeout=timeout)

    def shutdown(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


def _auto_choice(series: pd.Series, spec: ForecastSpec) -> tuple[str | None, dict | None]:
    """``auto`` fitted on the sensor's latest history: its choice and the scores behind it."""
    try:
        model = cast(AutoForecaster, get_model("auto", **spec.model_params("auto")).fit(series))
    except PlantcastError:
        return None, None
    return model.chosen_, dict(sorted(model.scores_.items(), key=lambda kv: kv[1]))


def _interval(store: Store, sensor: str) -> pd.Timedelta:
    return store.get_sensor(sensor).interval
