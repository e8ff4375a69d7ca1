"""Alerts (cursor-paginated, newest first; ack, resolve) and each sensor's detector status."""

from __future__ import annotations

import base64
import binascii
from typing import Annotated

import pandas as pd
from fastapi import APIRouter, Path, Query, Request

from plantcast.api import limits
from plantcast.api.auth import READ, WRITE
from plantcast.api.models import AlertOut, AlertPage, DetectorState, DetectorStatus
from plantcast.api.problems import COMMON, NOT_FOUND
from plantcast.api.routes.common import NO_NUL, SensorName, invalid, store_of
from plantcast.core.types import AlertStatus
from plantcast.services.alert_records import alert_record

router = APIRouter(tags=["alerts"])
AlertId = Annotated[int, Path(ge=1, le=2**31 - 1, description="Alert id")]
# services.detection.DETECTORS
DETECTORS = ("residual_z", "level_shift", "stuck", "dropout", "drift", "profile_change")


def _cursor(alert) -> str:
    raw = f"{alert.ts.value // 1_000}:{alert.id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _parse_cursor(text: str) -> tuple[pd.Timestamp, int]:
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode()
        us, alert_id = (int(p) for p in raw.split(":"))
        return pd.Timestamp(us * 1_000, tz="UTC"), alert_id
    except (ValueError, binascii.Error, UnicodeDecodeError, OverflowError):
        raise invalid("not a cursor this API gave out", "cursor") from None


def _alert_out(a, names: dict[int, str], assets: dict[int, str]) -> AlertOut:
    return AlertOut(**alert_record(a, names, assets))  # the shape `plantcast alerts` prints


@router.get(
    "/alerts", response_model=AlertPage, responses={**COMMON, **NOT_FOUND}, dependencies=[READ]
)
def list_alerts(
    request: Request,
    sensor: Annotated[str | None, Query(min_length=1, max_length=200, pattern=NO_NUL)] = None,
    asset: Annotated[
        str | None,
        Query(min_length=1, max_length=200, pattern=NO_NUL, description="Only this asset's"),
    ] = None,
    status: AlertStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=limits.MAX_ALERTS_PAGE)] = 50,
    cursor: Annotated[
        str | None,
        Query(min_length=1, max_length=200, pattern=NO_NUL, description="next_cursor of a page"),
    ] = None,
) -> AlertPage:
    """Alerts newest first, ``limit`` a page; ``next_cursor`` fetches the page after."""
    store = store_of(request)
    before = _parse_cursor(cursor) if cursor else None
    sid = store.get_sensor(sensor).id if sensor else None
    aid = store.get_asset(asset).id if asset else None
    rows = store.list_alerts(
        sensor_id=sid, asset_id=aid, status=status, limit=limit + 1, before=before
    )
    total = store.count_alerts(sensor_id=sid, asset_id=aid, status=status)
    names = {s.id: s.name for s in store.list_sensors()}
    assets = store.asset_names() if any(a.asset_id is not None for a in rows) else {}
    page, more = rows[:limit], len(rows) > limit
    return AlertPage(
        total=total,
        alerts=[_alert_out(a, names, assets) for a in page],
        next_cursor=_cursor(page[-1]) if more else None,
    )


def _set_status(request: Request, alert_id: int, status: AlertStatus) -> AlertOut:
    store = store_of(request)
    alert = store.set_alert_status(alert_id, status)  # what `plantcast alerts ack|resolve` calls
    names = {s.id: s.name for s in store.list_sensors()}
    assets = store.asset_names() if alert.asset_id is not None else {}
    return _alert_out(alert, names, assets)


@router.post(
    "/alerts/{alert_id}/ack",
    response_model=AlertOut,
    responses={**COMMON, **NOT_FOUND},
    dependencies=[WRITE],
)
def ack_alert(request: Request, alert_id: AlertId) -> AlertOut:
    """Acknowledge an alert."""
    return _set_status(request, alert_id, AlertStatus.ACKNOWLEDGED)


@router.post(
    "/alerts/{alert_id}/resolve",
    response_model=AlertOut,
    responses={**COMMON, **NOT_FOUND},
    dependencies=[WRITE],
)
def resolve_alert(request: Request, alert_id: AlertId) -> AlertOut:
    """Mark an alert resolved."""
    return _set_status(request, alert_id, AlertStatus.RESOLVED)


@router.get(
    "/sensors/{name}/detectors",
    response_model=DetectorStatus,
    responses={**COMMON, **NOT_FOUND},
    dependencies=[READ],
)
def detector_status(request: Request, name: SensorName) -> DetectorStatus:
    """How far each detector has scored the sensor, and its open alerts."""
    store = store_of(request)
    sensor = store.get_sensor(name)
    marks = store.scored_until(sensor.id, DETECTORS)
    return DetectorStatus(
        sensor=name,
        detectors=[DetectorState(detector=d, scored_until=t) for d, t in marks.items()],
        open_alerts=store.count_open_alerts(sensor.id),
    )
