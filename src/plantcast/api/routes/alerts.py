"""Alerts (cursor-paginated, newest first), their workflow (acknowledge, resolve, assign,
comment, label; one at a time or in bulk) and each sensor's detector status."""

from __future__ import annotations

import base64
import binascii
from typing import Annotated

import pandas as pd
from fastapi import APIRouter, Path, Query, Request

from plantcast.api import limits
from plantcast.api.auth import READ, actor_of, require
from plantcast.api.models import (
    AlertDetailOut,
    AlertOut,
    AlertPage,
    AssigneeIn,
    BulkIn,
    BulkOut,
    CommentIn,
    CommentOut,
    DetectorState,
    DetectorStatus,
    HistoryOut,
    LabelIn,
)
from plantcast.api.problems import COMMON, NOT_FOUND
from plantcast.api.routes.common import NO_NUL, SensorName, invalid, store_of
from plantcast.core.types import AlertLabel, AlertStatus
from plantcast.services import alert_workflow as flow
from plantcast.services.alert_records import alert_record
from plantcast.services.users import require as require_role

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
    assignee: Annotated[str | None, Query(min_length=1, max_length=200, pattern=NO_NUL)] = None,
    label: AlertLabel | None = None,
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
    filters = {"status": status, "assignee": assignee, "label": label}
    rows = store.list_alerts(sensor_id=sid, asset_id=aid, limit=limit + 1, before=before, **filters)
    total = store.count_alerts(sensor_id=sid, asset_id=aid, **filters)
    names = {s.id: s.name for s in store.list_sensors()}
    assets = store.asset_names() if any(a.asset_id is not None for a in rows) else {}
    page, more = rows[:limit], len(rows) > limit
    return AlertPage(
        total=total,
        alerts=[_alert_out(a, names, assets) for a in page],
        next_cursor=_cursor(page[-1]) if more else None,
    )


def _names(request: Request) -> dict[int, str]:
    return {s.id: s.name for s in store_of(request).list_sensors()}


def _outs(request: Request, alerts) -> list[AlertOut]:
    """Alerts as the API gives them (their sensors' or assets' names looked up once)."""
    names = _names(request)
    assets = store_of(request).asset_names() if any(a.asset_id for a in alerts) else {}
    return [_alert_out(a, names, assets) for a in alerts]


def _comment_out(c) -> CommentOut:
    return CommentOut(id=c.id, at=c.at, author=c.author, text=c.text)


def _one(request: Request, done) -> AlertOut:
    [alert] = done
    return _outs(request, [alert])[0]


@router.get(
    "/alerts/{alert_id}",
    response_model=AlertDetailOut,
    responses={**COMMON, **NOT_FOUND},
    dependencies=[READ],
)
def get_alert(request: Request, alert_id: AlertId) -> AlertDetailOut:
    """One alert with its comment thread and its history (the audit log of it)."""
    found = flow.detail(store_of(request), alert_id)
    return AlertDetailOut(
        **found.record(),
        comments=[_comment_out(c) for c in found.comments],
        history=[
            HistoryOut(at=e.at, actor=e.actor, action=e.action, before=e.before, after=e.after)
            for e in found.history
        ],
    )


@router.post(
    "/alerts/{alert_id}/ack",
    response_model=AlertOut,
    responses={**COMMON, **NOT_FOUND},
    dependencies=[require("alert.acknowledge")],
)
def ack_alert(request: Request, alert_id: AlertId) -> AlertOut:
    """Acknowledge an alert."""
    return _one(request, flow.acknowledge(store_of(request), alert_id, actor=actor_of(request)))


@router.post(
    "/alerts/{alert_id}/resolve",
    response_model=AlertOut,
    responses={**COMMON, **NOT_FOUND},
    dependencies=[require("alert.resolve")],
)
def resolve_alert(request: Request, alert_id: AlertId) -> AlertOut:
    """Mark an alert resolved."""
    return _one(request, flow.resolve(store_of(request), alert_id, actor=actor_of(request)))


@router.post(
    "/alerts/{alert_id}/comments",
    response_model=CommentOut,
    status_code=201,
    responses={**COMMON, **NOT_FOUND},
    dependencies=[require("alert.comment")],
)
def comment_alert(request: Request, alert_id: AlertId, body: CommentIn) -> CommentOut:
    """Add a comment to the alert's thread, written by the key's user."""
    [c] = flow.comment(store_of(request), alert_id, body.text, actor=actor_of(request))
    return _comment_out(c)


@router.put(
    "/alerts/{alert_id}/assignee",
    response_model=AlertOut,
    responses={**COMMON, **NOT_FOUND},
    dependencies=[require("alert.assign")],
)
def assign_alert(request: Request, alert_id: AlertId, body: AssigneeIn) -> AlertOut:
    """Assign the alert to a user (``null``: to nobody)."""
    store, actor = store_of(request), actor_of(request)
    return _one(request, flow.assign(store, alert_id, body.assignee, actor=actor))


@router.put(
    "/alerts/{alert_id}/label",
    response_model=AlertOut,
    responses={**COMMON, **NOT_FOUND},
    dependencies=[require("alert.label")],
)
def label_alert(request: Request, alert_id: AlertId, body: LabelIn) -> AlertOut:
    """Say what the alert was; a false alarm raises its detectors' thresholds for the sensor."""
    store, actor = store_of(request), actor_of(request)
    return _one(request, flow.label(store, alert_id, body.label, actor=actor))


@router.post(
    "/alerts/bulk",
    response_model=BulkOut,
    responses={**COMMON, **NOT_FOUND},
    dependencies=[READ],
)
def bulk_action(request: Request, body: BulkIn) -> BulkOut:
    """One action on several alerts in one transaction: all change, or (an unknown id) none.
    The key's role must allow the action (403 otherwise)."""
    caller = request.state.caller
    require_role(caller.role, f"alert.{body.action}", caller.actor)
    store = store_of(request)
    flow.apply(store, body.action, body.ids, actor=caller.actor, value=body.value)
    return BulkOut(action=body.action, alerts=_outs(request, flow.alerts_by_id(store, body.ids)))


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
