"""``serve``'s Prometheus ``/metrics``: every component's state and restarts, the scheduled
jobs' outcomes, and what the store says of the plant (newest reading age, readings stored in
the last minute, detection lag, alerts by state, outbox depth and age, dead letters).

The store is read when Prometheus scrapes, at most once per ``CACHE_S``; while it cannot be
read, ``plantcast_store_up`` is 0 and the component metrics are still served. The API's
request counts and latency are on the API's own ``/metrics``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

from plantcast.core.errors import PlantcastError
from plantcast.serve.config import PlantConfig
from plantcast.serve.supervisor import Supervisor

CACHE_S = 5.0
STATES = ("running", "backoff", "stopped", "failed", "starting")


class PlantCollector:
    """A prometheus_client collector reading the supervisor and the store at scrape time."""

    def __init__(self, url: str, supervisor: Supervisor | None) -> None:
        self.url, self.supervisor = url, supervisor
        self._store: Any = None
        self._cached: tuple[float, Any, Any] | None = None
        self._lock = threading.Lock()

    def _read(self) -> tuple[Any, Any]:
        """(lags, jobs) from the store, or (None, None) when it cannot be read."""
        from plantcast.services.context import open_store

        with self._lock:
            now = time.monotonic()
            if self._cached is not None and now - self._cached[0] < CACHE_S:
                return self._cached[1], self._cached[2]
            try:
                if self._store is None:
                    self._store = open_store(self.url, init=True)
                lags, jobs = self._store.lags(), self._store.list_jobs()
            except PlantcastError:
                lags, jobs = None, None
            self._cached = (now, lags, jobs)
            return lags, jobs

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        if self.supervisor is not None:
            up = GaugeMetricFamily(
                "plantcast_component_up", "1 while the component runs", labels=["component"]
            )
            state = GaugeMetricFamily(
                "plantcast_component_state",
                "1 for the component's current state",
                labels=["component", "state"],
            )
            restarts = CounterMetricFamily(
                "plantcast_component_restarts", "Restarts since serve started", labels=["component"]
            )
            for r in self.supervisor.running:
                up.add_metric([r.name], 1.0 if r.state == "running" else 0.0)
                for s in STATES:
                    state.add_metric([r.name, s], 1.0 if r.state == s else 0.0)
                restarts.add_metric([r.name], float(r.restarts))
            yield from (up, state, restarts)
        lags, jobs = self._read()
        yield GaugeMetricFamily(
            "plantcast_store_up", "1 when the database answered", value=0.0 if lags is None else 1.0
        )
        if lags is not None:
            yield from _plant_metrics(lags)
        if jobs is not None:
            yield from _job_metrics(jobs)


def _gauge(name: str, doc: str, value: float | None) -> Any:
    from prometheus_client.core import GaugeMetricFamily

    return GaugeMetricFamily(name, doc, value=float("nan") if value is None else float(value))


def _plant_metrics(lags: Any) -> Iterator[Any]:
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

    yield _gauge("plantcast_sensors", "Sensors in the catalog", lags.sensors)
    yield _gauge(
        "plantcast_newest_reading_age_seconds",
        "Age of the newest stored reading (NaN: none)",
        lags.newest_reading_age_s,
    )
    yield _gauge(
        "plantcast_readings_last_minute",
        "Readings stored with a time in the last minute (the ingest rate × 60)",
        lags.readings_last_minute,
    )
    yield _gauge(
        "plantcast_detection_lag_seconds",
        "Newest reading minus what detection has scored, for the sensor most behind",
        lags.detection_lag_s,
    )
    yield _gauge(
        "plantcast_detection_lag_p95_seconds",
        "The same lag's 95th percentile over sensors",
        lags.detection_lag_p95_s,
    )
    yield _gauge("plantcast_outbox_depth", "Notifications not delivered yet", lags.outbox_depth)
    yield _gauge(
        "plantcast_outbox_oldest_age_seconds",
        "Age of the oldest undelivered notification (NaN: none)",
        lags.outbox_oldest_age_s,
    )
    alerts = GaugeMetricFamily("plantcast_alerts", "Alerts by status", labels=["status"])
    for status in ("open", "acknowledged", "resolved"):
        alerts.add_metric([status], float(lags.alerts_by_status.get(status, 0)))
    yield alerts
    yield CounterMetricFamily(
        "plantcast_dead_letters", "Messages connectors could not store", value=lags.dead_letters
    )


def _job_metrics(jobs: list[Any]) -> Iterator[Any]:
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

    runs = CounterMetricFamily(
        "plantcast_job_runs", "Job runs by outcome", labels=["job", "outcome"]
    )
    last = GaugeMetricFamily(
        "plantcast_job_last_run_timestamp_seconds", "When the job last finished", labels=["job"]
    )
    ok = GaugeMetricFamily("plantcast_job_last_ok", "1 if the last run succeeded", labels=["job"])
    took = GaugeMetricFamily(
        "plantcast_job_last_duration_seconds", "How long the last run took", labels=["job"]
    )
    for j in jobs:
        runs.add_metric([j.name, "ok"], float(j.runs - j.failures))
        runs.add_metric([j.name, "failed"], float(j.failures))
        if j.last_finished_at is not None:
            last.add_metric([j.name], j.last_finished_at.timestamp())
        ok.add_metric([j.name], 1.0 if j.last_outcome == "ok" else 0.0)
        if j.last_seconds is not None:
            took.add_metric([j.name], float(j.last_seconds))
    yield from (runs, last, ok, took)


class MetricsServer:
    def __init__(self, server: Any, thread: threading.Thread) -> None:
        self.server, self.thread = server, thread

    def shutdown(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def start_metrics(
    config: PlantConfig, supervisor: Supervisor | None, host: str, port: int
) -> MetricsServer:
    """Serve ``/metrics`` on ``host:port`` in a thread, from a registry of our own."""
    from prometheus_client import CollectorRegistry, start_http_server

    registry = CollectorRegistry()
    registry.register(PlantCollector(config.database.url, supervisor))
    server, thread = start_http_server(port, addr=host, registry=registry)
    return MetricsServer(server, thread)
