"""Operations: /health (no key) and Prometheus /metrics (a read key)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from plantcast import __version__
from plantcast.api.auth import READ
from plantcast.api.models import Health, ServeComponent, ServeHealth
from plantcast.api.problems import COMMON

router = APIRouter(tags=["operations"])


@router.get("/health", response_model=Health, responses={503: {"model": Health}})
def health(request: Request):
    """Liveness, the database's reachability and, under `plantcast serve`, each component's
    state and restarts; needs no key."""
    store = request.app.state.store
    try:
        store.list_sensors()
    except Exception:
        body = Health(status="degraded", database="unavailable", version=__version__)
        return JSONResponse(body.model_dump(), status_code=503)
    return Health(status="ok", database="ok", version=__version__, serve=_serve(store))


def _serve(store) -> ServeHealth | None:
    """The components serve last wrote; None when none has run here (or its table is
    missing: a database made before serve, until `plantcast init`)."""
    from plantcast.core.timeutil import utcnow
    from plantcast.services.serve_status import serve_state

    try:
        components = store.list_components()
    except Exception:
        return None
    if not components:
        return None
    return ServeHealth(
        state=serve_state(components, utcnow())["state"],
        components=[
            ServeComponent(name=c.name, state=c.state, restarts=c.restarts, last_error=c.last_error)
            for c in components
        ],
    )


@router.get(
    "/metrics",
    responses={**COMMON, 200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
    dependencies=[READ],
    response_class=Response,
)
def metrics(request: Request) -> Response:
    """Prometheus metrics of this API process (requests by route and status, latency)."""
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

    return Response(
        generate_latest(request.app.state.metrics.registry), media_type=CONTENT_TYPE_LATEST
    )
