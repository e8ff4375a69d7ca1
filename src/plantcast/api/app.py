"""The application factory: routes under /v1, problems, the size limit, metrics, /docs."""

from __future__ import annotations

import time

from fastapi import FastAPI

from plantcast import __version__
from plantcast.api import limits, problems
from plantcast.api.routes import alerts, analytics, assets, events, ops, people, sensors, silences
from plantcast.store import Store

DESCRIPTION = """
plantcast's sensors, readings, assets, forecasts, injected events and alerts.

Every route but `/health` needs an API key (`plantcast apikey create --name NAME --user
USER`): `Authorization: Bearer <key>` or `X-API-Key: <key>`. A key made for a user carries the
user's role (viewer < operator < admin); one made without a user has its scopes' (`read`,
`write`, `admin`). A role that cannot do a route's action answers 403. Errors are RFC 9457
`application/problem+json` naming the field at fault.
"""


class Metrics:
    """Prometheus counters of one app (its own registry: several apps may share a process)."""

    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Histogram

        self.registry = CollectorRegistry()
        self.requests = Counter(
            "plantcast_api_requests",
            "HTTP requests answered",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "plantcast_api_request_seconds",
            "Time to answer a request",
            ["method", "route"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=self.registry,
        )


class MetricsMiddleware:
    """ASGI middleware counting each request by its route template (not its raw path)."""

    def __init__(self, app, metrics: Metrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        t0, status = time.perf_counter(), [500]

        async def send_wrapper(message):
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = getattr(scope.get("route"), "path", None)
            if route is None:
                route = "unmatched"
            elif scope["path"].startswith("/v1/") and not route.startswith("/v1/"):
                route = "/v1" + route  # an included router's route keeps its own path
            method = scope["method"]
            self.metrics.requests.labels(method, route, str(status[0])).inc()
            self.metrics.latency.labels(method, route).observe(time.perf_counter() - t0)


class RequestIdMiddleware:
    """Each request's id: the caller's ``X-Request-ID`` (up to 64 characters) or a new one,
    sent back in the answer's ``X-Request-ID`` and logged with the request (under ``serve``, a
    JSON line with ``request_id``)."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        import logging
        import uuid

        given = dict(scope.get("headers") or []).get(b"x-request-id", b"").decode("latin-1")
        request_id = given[:64] if given.isprintable() and given else uuid.uuid4().hex
        t0, status = time.perf_counter(), [500]

        async def send_wrapper(message):
            if message["type"] == "http.response.start":
                status[0] = message["status"]
                message["headers"] = [
                    *message.get("headers", []),
                    (b"x-request-id", request_id.encode("latin-1")),
                ]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            logging.getLogger("plantcast.api.access").info(
                "%s %s %s %.1f ms",
                scope["method"],
                scope["path"],
                status[0],
                (time.perf_counter() - t0) * 1000,
                extra={"request_id": request_id},
            )


def create_app(
    database_url: str | None = None,
    *,
    store: Store | None = None,
    max_body_bytes: int = limits.MAX_BODY_BYTES,
) -> FastAPI:
    """The API over ``store`` (or the store at ``database_url`` / the environment's)."""
    from plantcast.services.context import open_store
    from plantcast.services.forecasting import Forecasting

    app = FastAPI(
        title="plantcast API",
        version=__version__,
        description=DESCRIPTION,
        docs_url="/docs",
        openapi_url="/openapi.json",
    )
    app.state.store = store if store is not None else open_store(database_url)
    app.state.forecasting = Forecasting()  # fits cached per (sensor, model, params, last reading)
    app.state.metrics = Metrics()
    app.state.key_touched = {}
    problems.install(app)
    app.include_router(ops.router)
    for module in (sensors, analytics, events, alerts, assets, people, silences):
        app.include_router(module.router, prefix="/v1")
    app.add_middleware(limits.BodySizeLimit, max_bytes=max_body_bytes)
    app.add_middleware(MetricsMiddleware, metrics=app.state.metrics)
    app.add_middleware(RequestIdMiddleware)
    return app
