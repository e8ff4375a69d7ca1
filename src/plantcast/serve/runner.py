"""``plantcast serve``: the config's components under a :class:`Supervisor`, their states
written to the store (``serve_components``) for ``plantcast status`` and ``/health``, and
``/metrics`` served beside them.

The store may be down when serve starts or at any time after: the states wait in memory and
are written when it answers again; the components do not wait for it (each retries on its own).
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from plantcast.core.errors import PlantcastError
from plantcast.core.logs import FORMAT_ENV
from plantcast.serve.components import components
from plantcast.serve.config import PlantConfig, seconds
from plantcast.serve.supervisor import Running, Supervisor
from plantcast.store.health import ComponentState

if TYPE_CHECKING:
    from plantcast.store import Store

log = logging.getLogger(__name__)


def component_states(running: list[Running]) -> list[ComponentState]:
    return [
        ComponentState(
            name=r.name,
            state=r.state,
            pid=r.pid if r.state in ("running", "starting") else None,
            restarts=r.restarts,
            last_exit=r.last_exit,
            last_error=r.last_error,
            started_at=(
                pd.Timestamp(r.started_wall, unit="s", tz="UTC").floor("us")
                if r.started_wall
                else None
            ),
        )
        for r in running
    ]


class StatusWriter:
    """Writes the components' states to the store on every change and every ``every`` s, in a
    thread of its own: an unreachable database delays the writes, never the supervisor."""

    def __init__(self, url: str, every: float) -> None:
        self.url, self.every = url, every
        self._states: list[ComponentState] = []
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._done = threading.Event()
        self._store: Store | None = None
        self._first = True
        self._warned = False
        self.thread = threading.Thread(target=self._loop, name="status", daemon=True)

    def update(self, running: list[Running]) -> None:
        with self._lock:
            self._states = component_states(running)
        self._wake.set()

    def start(self) -> None:
        self.thread.start()

    def close(self, timeout: float = 2.0) -> None:
        """Write the last states (the stop) and end the thread."""
        self._done.set()
        self._wake.set()
        self.thread.join(timeout)
        if self._store is not None:
            self._store.close()

    def _loop(self) -> None:
        while True:
            self._wake.wait(self.every)
            self._wake.clear()
            self._write()
            if self._done.is_set():
                return

    def _write(self) -> None:
        from plantcast.services.context import open_store

        with self._lock:
            states = list(self._states)
        if not states:
            return
        try:
            if self._store is None:
                self._store = open_store(self.url, init=True)
            self._store.put_components(states, only=self._first)
            self._first = False
            if self._warned:
                log.warning("status: the database answers again")
            self._warned = False
        except PlantcastError as exc:
            if not self._warned:
                log.warning("status: cannot write the components' states: %s", exc)
            self._warned = True


def child_env(config: PlantConfig) -> dict[str, str]:
    """The components' environment: ours, with the config's database and log format."""
    return {
        **os.environ,
        "PLANTCAST_DATABASE_URL": config.database.url,
        FORMAT_ENV: config.serve.log_format,
    }


def serve(
    config: PlantConfig,
    config_path: str | Path,
    *,
    ready: Callable[[Supervisor], None] | None = None,
) -> None:
    """Run the plant until SIGTERM or SIGINT; every component stopped when this returns."""
    s = config.serve
    writer = StatusWriter(config.database.url, seconds(s.status_every))
    supervisor = Supervisor(
        components(config, str(Path(config_path).resolve())),
        env=child_env(config),
        backoff=seconds(s.backoff),
        max_backoff=seconds(s.max_backoff),
        stop_timeout=seconds(s.stop_timeout),
        log_format=s.log_format,
        on_change=writer.update,
    )
    metrics = None
    if s.metrics_port:
        from plantcast.serve.metrics import start_metrics

        metrics = start_metrics(config, supervisor, s.metrics_host, s.metrics_port)

    def _stop(signum: int, _frame: object) -> None:
        log.info("serve: %s: stopping every component", signal.Signals(signum).name)
        supervisor.stop()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    writer.start()
    if ready is not None:
        ready(supervisor)
    try:
        supervisor.run()
    finally:
        writer.close()
        if metrics is not None:
            metrics.shutdown()
