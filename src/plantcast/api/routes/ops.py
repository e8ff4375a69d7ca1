"""Operations: /health (no key) and Prometheus /metrics (a read key)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from plantcast import __version__
from plantcast.api.auth import READ
from plantcast.api.models import Health
from plantcast.api.problems import COMMON

router = APIRouter(tags=["operations"])


@router.get("/health", response_model=Health, responses={503: {"model": Health}})
def health(request: Request):
    """Liveness and the database's reachability; needs no key."""
    try:
        request.app.state.store.list_sensors()
        return Health(status="ok", database="ok", version=__version__)
    except Exception:
        body = Health(status="degraded", database="unavailable", version=__version__)
        return JSONResponse(body.model_dump(), status_code=503)


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
