"""Assets: list, get, create, remove; add and take out sensors; the training period; the
sensors' readings aligned on the asset's grid."""

from __future__ import annotations

from typing import Annotated

import numpy as np
from fastapi import APIRouter, Depends, Path, Query, Request, Response

from plantcast.api import limits
from plantcast.api.auth import READ, actor_of, require
from plantcast.api.models import AlignedWindow, AssetIn, AssetOut, AssetSensor, Rfc3339, TrainingIn
from plantcast.api.problems import COMMON, CONFLICT, NOT_FOUND
from plantcast.api.routes.common import NO_NUL, SensorName, invalid, store_of, utc
from plantcast.core.types import Asset
from plantcast.services import assets as service

AssetName = Annotated[
    str, Path(min_length=1, max_length=200, pattern=NO_NUL, description="Asset name")
]


def _tables(request: Request) -> None:
    """An older database without the asset tables answers what to run, once checked per app."""
    if not getattr(request.app.state, "asset_tables", False):
        service.require_tables(store_of(request))
        request.app.state.asset_tables = True


TABLES = Depends(_tables)  # after the key's check: an unauthenticated request learns nothing
router = APIRouter(tags=["assets"])
ASSET = require("asset")  # admins manage assets (plantcast.services.users)


def _asset_out(a: Asset) -> AssetOut:
    return AssetOut(
        name=a.name,
        description=a.description,
        sensors=[
            AssetSensor(
                name=s.name,
                unit=s.unit,
                source=s.source,
                interval_seconds=s.interval.total_seconds(),
            )
            for s in a.sensors
        ],
        step_seconds=a.grid_step.total_seconds(),
        step_set=a.step is not None,
        train_from=a.train_from,
        train_to=a.train_to,
        created_at=a.created_at,
    )


@router.get("/assets", response_model=list[AssetOut], responses=COMMON, dependencies=[READ, TABLES])
def list_assets(request: Request) -> list[AssetOut]:
    """Every asset, by name, with its sensors, grid step and training period."""
    return [_asset_out(a) for a in service.list_assets(store_of(request))]


@router.get(
    "/assets/{name}",
    response_model=AssetOut,
    responses={**COMMON, **NOT_FOUND},
    dependencies=[READ, TABLES],
)
def get_asset(request: Request, name: AssetName) -> AssetOut:
    """One asset."""
    return _asset_out(service.get_asset(store_of(request), name))


@router.post(
    "/assets",
    response_model=AssetOut,
    status_code=201,
    responses={**COMMON, **NOT_FOUND, **CONFLICT},
    dependencies=[ASSET, TABLES],
)
def create_asset(request: Request, body: AssetIn) -> AssetOut:
    """Create an asset of existing sensors: 404 names unknown sensors, 409 an existing asset."""
    made = service.create_asset(
        store_of(request),
        body.name,
        body.sensors,
        body.step,
        description=body.description,
        actor=actor_of(request),
    )
    return _asset_out(made)


@router.delete(
    "/assets/{name}",
    status_code=204,
    responses={**COMMON, **NOT_FOUND},
    dependencies=[ASSET, TABLES],
)
def remove_asset(request: Request, name: AssetName) -> Response:
    """Remove an asset; its sensors and their readings stay."""
    service.remove_asset(store_of(request), name, actor=actor_of(request))
    return Response(status_code=204)


@router.post(
    "/assets/{name}/sensors/{sensor}",
    response_model=AssetOut,
    responses={**COMMON, **NOT_FOUND, **CONFLICT},
    dependencies=[ASSET, TABLES],
)
def add_sensor(request: Request, name: AssetName, sensor: SensorName) -> AssetOut:
    """Add a sensor to the asset (409 when it is already there)."""
    done = service.add_sensors(store_of(request), name, [sensor], actor=actor_of(request))
    return _asset_out(done)


@router.delete(
    "/assets/{name}/sensors/{sensor}",
    response_model=AssetOut,
    responses={**COMMON, **NOT_FOUND, **CONFLICT},
    dependencies=[ASSET, TABLES],
)
def remove_sensor(request: Request, name: AssetName, sensor: SensorName) -> AssetOut:
    """Take a sensor out of the asset (409 for its last sensor: remove the asset instead)."""
    done = service.remove_sensors(store_of(request), name, [sensor], actor=actor_of(request))
    return _asset_out(done)


@router.put(
    "/assets/{name}/training",
    response_model=AssetOut,
    responses={**COMMON, **NOT_FOUND},
    dependencies=[ASSET, TABLES],
)
def set_training(request: Request, name: AssetName, body: TrainingIn) -> AssetOut:
    """Pin the known-good training period (``start``, ``end``), or clear it (both null)."""
    start = None if body.start is None else utc(body.start, "start")
    end = None if body.end is None else utc(body.end, "end")
    done = service.set_training(store_of(request), name, start, end, actor=actor_of(request))
    return _asset_out(done)


@router.get(
    "/assets/{name}/readings",
    response_model=AlignedWindow,
    responses={**COMMON, **NOT_FOUND},
    dependencies=[READ, TABLES],
)
def aligned_readings(
    request: Request,
    name: AssetName,
    start: Annotated[Rfc3339, Query(description="RFC 3339")],
    end: Annotated[Rfc3339, Query(description="RFC 3339, exclusive")],
) -> Response:
    """The asset's sensors on its grid: each grid time takes every sensor's last reading at or
    before it, null where that is older than two of the sensor's intervals."""
    store = store_of(request)
    asset = service.get_asset(store, name)
    lo, hi = utc(start, "start"), utc(end, "end")
    if hi <= lo:
        raise invalid("end must be after start", "end")
    if hi - lo > limits.MAX_WINDOW:
        raise invalid(
            f"the window is longer than the limit of {limits.MAX_WINDOW.days} days",
            "start",
            limit=limits.MAX_WINDOW.days,
        )
    cells = (hi - lo) / asset.grid_step * len(asset.sensors)
    if cells > limits.MAX_RAW_READINGS:
        raise invalid(
            f"about {cells:,.0f} values: more than the limit of {limits.MAX_RAW_READINGS:,}; "
            "ask for a shorter window",
            "start",
            limit=limits.MAX_RAW_READINGS,
        )
    frame = service.aligned_readings(store, asset, lo, hi)
    values = {
        str(c): [None if np.isnan(v) else v for v in frame[c].to_numpy(dtype=float).tolist()]
        for c in frame.columns
    }
    window = AlignedWindow(
        asset=asset.name,
        start=lo,
        end=hi,
        step_seconds=asset.grid_step.total_seconds(),
        times=list(frame.index.to_pydatetime()),
        values=values,
    )
    return Response(window.model_dump_json(), media_type="application/json")
