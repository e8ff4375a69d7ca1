"""Sensors and their readings: list, get, create (imported); a bounded window; a posted batch."""

from __future__ import annotations

import csv
import io
import math
import re
import tempfile
from pathlib import Path
from typing import Annotated

import numpy as np
import pandas as pd
from fastapi import APIRouter, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from plantcast.api import limits
from plantcast.api.auth import READ, WRITE, actor_of
from plantcast.api.models import (
    ImportOut,
    ReadingsBatch,
    ReadingsWindow,
    Rfc3339,
    SensorIn,
    SensorOut,
)
from plantcast.api.problems import COMMON, CONFLICT, NOT_FOUND, ApiProblem, _problem_doc
from plantcast.api.routes.common import NO_NUL, SensorName, invalid, store_of, utc
from plantcast.core.errors import InputError, Refused
from plantcast.core.timeutil import parse_duration
from plantcast.core.types import Sensor, Source
from plantcast.ingest.csv_import import CsvSpec
from plantcast.services import imports

router = APIRouter(tags=["sensors"])


def _sensor_out(sensor: Sensor, last: pd.Timestamp | None = None) -> SensorOut:
    return SensorOut(
        name=sensor.name,
        unit=sensor.unit,
        description=sensor.description,
        source=sensor.source,
        interval_seconds=sensor.interval.total_seconds(),
        created_at=sensor.created_at,
        last_reading_at=last,
    )


@router.get("/sensors", response_model=list[SensorOut], responses=COMMON, dependencies=[READ])
def list_sensors(request: Request, source: Source | None = None) -> list[SensorOut]:
    """Every sensor, by name (optionally of one source), with the time of its latest reading."""
    store = store_of(request)
    found = store.list_sensors(source)
    last = store.last_readings([s.id for s in found])  # one statement for the whole list
    return [_sensor_out(s, last[s.id][0] if s.id in last else None) for s in found]


@router.get(
    "/sensors/{name}",
    response_model=SensorOut,
    responses={**COMMON, **NOT_FOUND},
    dependencies=[READ],
)
def get_sensor(request: Request, name: SensorName) -> SensorOut:
    """One sensor, with the time of its latest reading."""
    store = store_of(request)
    sensor = store.get_sensor(name)
    return _sensor_out(sensor, store.last_timestamp(sensor.id))


@router.post(
    "/sensors",
    response_model=SensorOut,
    status_code=201,
    responses={**COMMON, **CONFLICT},
    dependencies=[WRITE],
)
def create_sensor(request: Request, body: SensorIn) -> SensorOut:
    """Create a sensor for imported readings (POST its readings to /sensors/{name}/readings)."""
    interval = parse_duration(body.interval, field="interval")
    if not pd.Timedelta(0) < interval <= pd.Timedelta("7d"):
        raise invalid("interval must be more than 0 and at most 7d", "interval")
    store = store_of(request)
    if body.name in {s.name for s in store.list_sensors()}:
        raise ApiProblem(409, "exists", "Already exists", f"sensor {body.name!r} exists")
    sensor = imports.create_sensor(
        store,
        body.name,
        interval,
        unit=body.unit,
        description=body.description,
        actor=actor_of(request),
    )
    return _sensor_out(sensor)


def _after(ts: pd.Timestamp, sensor: Sensor) -> pd.Timestamp:
    """The first tick after ``ts``, so a default window prints as people write times (no
    ``.000001Z``) and still holds the reading at ``ts``. A tick is the sensor's interval when
    that is whole seconds within the default window (a 30 min sensor's window ends at the half
    hour after its latest reading), else one second."""
    second = pd.Timedelta(seconds=1)
    whole = second <= sensor.interval <= limits.DEFAULT_WINDOW and not sensor.interval % second
    tick = (sensor.interval if whole else second).value
    return pd.Timestamp((ts.value // tick + 1) * tick, tz="UTC").as_unit("us")


def _window(store, sensor: Sensor, start, end) -> tuple[pd.Timestamp, pd.Timestamp]:
    """The asked window, defaulting to the last day up to the latest reading; limits checked."""
    end_ts = utc(end, "end") if end is not None else None
    start_ts = utc(start, "start") if start is not None else None
    if end_ts is None:
        if start_ts is not None:
            end_ts = start_ts + limits.DEFAULT_WINDOW
        else:
            last = store.last_timestamp(sensor.id)
            end_ts = _after(last if last is not None else pd.Timestamp.now(tz="UTC"), sensor)
    if start_ts is None:
        start_ts = end_ts - limits.DEFAULT_WINDOW
    if end_ts <= start_ts:
        raise invalid("end must be after start", "end")
    if end_ts - start_ts > limits.MAX_WINDOW:
        raise invalid(
            f"the window is longer than the limit of {limits.MAX_WINDOW.days} days",
            "start",
            limit=limits.MAX_WINDOW.days,
        )
    return start_ts, end_ts


@router.get(
    "/sensors/{name}/readings",
    response_model=ReadingsWindow,
    responses={**COMMON, **NOT_FOUND},
    dependencies=[READ],
)
def get_readings(
    request: Request,
    name: SensorName,
    start: Annotated[Rfc3339 | None, Query(description="RFC 3339; default end - 1 day")] = None,
    end: Annotated[
        Rfc3339 | None, Query(description="RFC 3339, exclusive; default: after the latest")
    ] = None,
    buckets: Annotated[
        int | None,
        Query(ge=1, le=limits.MAX_BUCKETS, description="Downsample in SQL; omit for raw readings"),
    ] = None,
) -> Response:
    """Readings over a bounded window: raw, or in equal time buckets (mean, min, max, count)."""
    store = store_of(request)
    sensor = store.get_sensor(name)
    lo, hi = _window(store, sensor, start, end)
    if buckets is None:
        expected = (hi - lo) / sensor.interval if sensor.interval > pd.Timedelta(0) else 0
        if expected > limits.MAX_RAW_READINGS:
            raise invalid(
                f"about {expected:,.0f} raw readings: more than the limit of "
                f"{limits.MAX_RAW_READINGS:,}; ask for ?buckets=N or a shorter window",
                "buckets",
                limit=limits.MAX_RAW_READINGS,
            )
        series = store.read_series(sensor.id, lo, hi)
        readings = [
            {"ts": t, "value": v}
            for t, v in zip(series.index.to_pydatetime(), series.to_numpy().tolist(), strict=True)
        ]
        window = ReadingsWindow(sensor=name, start=lo, end=hi, mode="raw", readings=readings)  # type: ignore[arg-type]  # pydantic validates the dicts
        return _json(window)
    frame = store.read_buckets(sensor.id, lo, hi, buckets)
    width = math.ceil((hi - lo).value / 1_000 / buckets) / 1e6
    rows = [
        {"ts": t, "mean": m, "min": a, "max": b, "count": c}
        for t, m, a, b, c in zip(
            frame.index.to_pydatetime(),
            frame["mean"].to_numpy().tolist(),
            frame["min"].to_numpy().tolist(),
            frame["max"].to_numpy().tolist(),
            frame["count"].to_numpy(dtype=np.int64).tolist(),
            strict=True,
        )
    ]
    return _json(
        ReadingsWindow(
            sensor=name,
            start=lo,
            end=hi,
            mode="buckets",
            bucket_seconds=width,
            buckets=rows,  # type: ignore[arg-type]  # pydantic validates the dicts
        )
    )


def _json(window: ReadingsWindow) -> Response:
    """The window as JSON, serialized once by pydantic's own encoder. Returned as a Response,
    FastAPI neither validates it again nor walks it with ``jsonable_encoder`` (about 10 ms for
    1,000 buckets, most of this route's cost beside the query); ``response_model`` still
    documents it."""
    return Response(window.model_dump_json(), media_type="application/json")


def _inlined(schema: dict) -> dict:
    """A JSON schema with its ``$defs`` written in place (OpenAPI resolves ``#`` at the root)."""
    defs = schema.pop("$defs", {})

    def walk(node):
        if isinstance(node, dict):
            if "$ref" in node:
                return walk(defs[node["$ref"].rsplit("/", 1)[-1]])
            return {k: walk(v) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node

    return walk(schema)


_BATCH_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": _inlined(ReadingsBatch.model_json_schema())},
            "text/csv": {
                "schema": {"type": "string"},
                "example": "ts,value\n2026-11-01T06:00:00Z,101.5\n2026-11-01T06:01:00Z,101.7\n",
            },
        },
    }
}


def _csv_from_json(batch: ReadingsBatch) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["ts", "value"])
    for r in batch.readings:
        writer.writerow([r.ts.isoformat(), repr(r.value)])
    return buf.getvalue()


def _parse_batch(raw: bytes) -> ReadingsBatch:
    try:
        return ReadingsBatch.model_validate_json(raw)
    except ValidationError as exc:
        errors = [{**e, "loc": ("body", *e.get("loc", ()))} for e in exc.errors()]
        raise RequestValidationError(errors) from None


def _import(
    store, sensor: Sensor, text: bytes, spec_kw: dict, from_json: bool, actor: str
) -> ImportOut:
    """Validate and write like ``plantcast import``: all rows in one transaction, or none."""
    with tempfile.TemporaryDirectory(prefix="plantcast-api-") as tmp:
        path = Path(tmp) / "body.csv"
        path.write_bytes(text)
        try:
            spec = CsvSpec(path, **spec_kw)
            result = imports.import_file(store, spec, sensor.name, actor=actor, source="api")
        except (OverflowError, pd.errors.OutOfBoundsDatetime, pd.errors.OutOfBoundsTimedelta):
            raise invalid(
                "the readings span more time than pandas can hold (about 292 years)", "ts"
            ) from None
        except InputError as exc:
            field = (exc.field or "").lstrip("-") or None
            line = exc.line
            if from_json and line is not None and line >= 2:
                field = f"readings.{line - 2}.{'ts' if field == 'ts' else 'value'}"
                line = None
            reason = _in_api_terms(exc.reason)
            raise invalid(reason, field or "body", **({"line": line} if line else {})) from None
    return ImportOut(
        sensor=result.sensor,
        rows=result.rows,
        duplicates_dropped=result.duplicates_dropped,
        start=result.start,
        end=result.end,
    )


_CSV_OPTIONS = re.compile(r"--(ts-col|value-col|tz)\b")


def _in_api_terms(reason: str) -> str:
    """The import's message with the CLI's options named as this route's query parameters
    (`--ts-col` → the `ts_col` parameter)."""
    return _CSV_OPTIONS.sub(lambda m: f"the {m.group(1).replace('-', '_')} parameter", reason)


@router.post(
    "/sensors/{name}/readings",
    response_model=ImportOut,
    status_code=201,
    responses={
        **COMMON,
        **NOT_FOUND,
        **CONFLICT,
        415: _problem_doc("Neither application/json nor text/csv"),
    },
    dependencies=[WRITE],
    openapi_extra=_BATCH_BODY,
)
async def post_readings(
    request: Request,
    name: SensorName,
    ts_col: Annotated[str, Query(min_length=1, max_length=100, pattern=NO_NUL)] = "ts",
    value_col: Annotated[str, Query(min_length=1, max_length=100, pattern=NO_NUL)] = "value",
    tz: Annotated[
        str | None,
        Query(min_length=1, max_length=64, pattern=NO_NUL, description="CSV: zone of naive times"),
    ] = None,
) -> ImportOut:
    """Add readings to an imported sensor, validated like `plantcast import`: all or nothing.

    JSON: ``{"readings": [{"ts": "2026-11-01T06:00:00Z", "value": 101.5}, …]}``; CSV (text/csv):
    a header line, then one reading a line (``--ts-col``/``--value-col``/``--tz`` as query
    parameters). An error names the field (JSON: ``readings.3.value``) or the CSV line.
    """
    store = store_of(request)
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind not in ("application/json", "text/csv"):
        raise ApiProblem(
            415,
            "unsupported-media-type",
            "Unsupported media type",
            f"send application/json or text/csv, not {kind or 'nothing'}",
            field="content-type",
        )
    raw = await request.body()
    sensor = await run_in_threadpool(store.get_sensor, name)
    if sensor.source is not Source.IMPORTED:
        raise Refused(
            f"sensor {name!r} holds {sensor.source.value} data; readings can be posted to "
            "imported sensors only (create one with POST /v1/sensors)"
        )
    if kind == "application/json":
        text = _csv_from_json(_parse_batch(raw)).encode()
        spec_kw, from_json = {}, True
    else:
        text, spec_kw, from_json = raw, {"ts_col": ts_col, "value_col": value_col, "tz": tz}, False
    actor = actor_of(request)
    return await run_in_threadpool(_import, store, sensor, text, spec_kw, from_json, actor)
