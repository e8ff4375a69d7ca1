"""The API's shapes: pydantic models that validate requests and document /docs."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field

from plantcast.core.types import NAME_PATTERN, AlertStatus, EventKind, Source

SENSOR_NAME = NAME_PATTERN
NO_NUL = r"^[^\x00]*$"  # PostgreSQL text refuses NUL
_RFC3339 = re.compile(
    r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?([Zz]|[+-]\d{2}:?\d{2})$"
)


def _rfc3339_only(value):
    """Times are RFC 3339 text with a zone; pydantic alone would also take epoch numbers."""
    if isinstance(value, str) and _RFC3339.match(value.strip()):
        return value.strip()
    if isinstance(value, datetime):
        return value
    raise ValueError("expected an RFC 3339 time with a zone, e.g. 2026-11-01T06:00:00Z")


Rfc3339 = Annotated[AwareDatetime, BeforeValidator(_rfc3339_only)]


class SensorOut(BaseModel):
    name: str
    unit: str
    description: str
    source: Source
    interval_seconds: float = Field(description="The nominal interval between readings.")
    created_at: datetime
    last_reading_at: datetime | None = Field(
        None, description="The time of the latest reading; null when there is none."
    )


class SensorIn(BaseModel):
    """A sensor for imported readings (posted through /readings)."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=SENSOR_NAME, examples=["line3_flow"])
    unit: str = Field("", max_length=50, pattern=NO_NUL)
    description: str = Field("", max_length=2000, pattern=NO_NUL)
    interval: str = Field(
        "1min", max_length=20, pattern=NO_NUL, description="Nominal interval: 1s, 30min, 1h…"
    )


class Reading(BaseModel):
    ts: datetime
    value: float


class Bucket(BaseModel):
    ts: datetime = Field(description="The bucket's start")
    mean: float
    min: float
    max: float
    count: int


class ReadingsWindow(BaseModel):
    sensor: str
    start: datetime
    end: datetime
    mode: Literal["raw", "buckets"]
    bucket_seconds: float | None = None
    readings: list[Reading] | None = None
    buckets: list[Bucket] | None = None


class ReadingIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ts: Rfc3339 = Field(description="RFC 3339 with a zone, e.g. 2026-11-01T06:00:00Z")
    value: float = Field(allow_inf_nan=False)


class ReadingsBatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    readings: list[ReadingIn] = Field(min_length=1)


class ImportOut(BaseModel):
    sensor: str
    rows: int
    duplicates_dropped: int
    start: datetime
    end: datetime


class ForecastPoint(BaseModel):
    ts: datetime
    mean: float
    lower_80: float | None = None
    upper_80: float | None = None
    lower_95: float | None = None
    upper_95: float | None = None


class ForecastOut(BaseModel):
    sensor: str
    model: str
    chosen: str = Field(description="What forecast: differs from model for auto")
    scores: dict[str, float] | None = Field(None, description="auto: backtest MASE of each")
    fitted_on: int
    no_bands: str | None = Field(
        None, description="Why the points have no 80/95 % bands (e.g. too little history)"
    )
    forecast: list[ForecastPoint]


class StoredForecastOut(BaseModel):
    """A forecast kept ready by the scheduled refresh: read from the store, never fitted."""

    sensor: str
    model: str
    chosen: str = Field(description="What forecast: differs from model for auto")
    horizon_steps: int = Field(description="How many points, step_s apart")
    step_s: float | None = Field(
        description="Seconds between points: the sensor's interval, or a coarser step when its "
        "horizon holds more readings than the refresh's points (1 s readings, 10 min ahead: 10)"
    )
    made_at: datetime
    trained_until: datetime = Field(description="The last reading the model was fitted on")
    age_s: float = Field(description="Seconds since the forecast was made")
    stale: bool = Field(description="Older than stale_after: the refresh is not keeping up")
    stale_after_s: float
    fitted_on: int
    chosen_at: datetime | None = Field(
        None,
        description="auto: when it chose this model (null under auto: not chosen yet, a "
        "sensor's first forecast, from the scheduled refresh's first_model)",
    )
    scores: dict[str, float] | None = Field(None, description="auto: backtest MASE of each")
    backtest: dict[str, float] = Field(description="The chosen model's backtest metrics")
    forecast: list[ForecastPoint]


class BacktestOut(BaseModel):
    sensor: str
    horizon_steps: int
    windows: int
    models: dict[str, dict[str, float | None]]
    failed: dict[str, str]


class EventIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: EventKind
    magnitude: float = Field(0.0, allow_inf_nan=False, ge=-1e9, le=1e9)
    duration: str | None = Field(
        None, max_length=20, pattern=NO_NUL, description="Simulated duration, e.g. 6h"
    )
    note: str = Field("", max_length=500, pattern=NO_NUL)


class EventOut(BaseModel):
    id: int
    sensor: str
    kind: EventKind
    starts_at: datetime
    ends_at: datetime | None
    magnitude: float
    note: str


class NormalizeOut(BaseModel):
    sensor: str
    ended: int


class AgreeingDetector(BaseModel):
    detector: str
    score: float = Field(description="Its peak score over the episode (its own scale)")


class Contributor(BaseModel):
    sensor: str
    share: float = Field(description="Its share of the asset's score at the alert's peak, 0..1")


class AlertOut(BaseModel):
    id: int
    sensor: str | None = Field(description="The sensor of a sensor's alert; None on an asset's")
    asset: str | None = Field(None, description="The asset of an asset's (multivariate) alert")
    contributors: list[Contributor] = Field(
        default_factory=list,
        description="An asset alert's sensors, largest share of its score at the peak first",
    )
    detector: str = Field(description="The detector that raised it; score is at its peak")
    detectors: list[AgreeingDetector] = Field(
        description="Every detector that flagged this episode, in the order they joined"
    )
    start: datetime
    end: datetime | None = Field(description="None while the anomaly is ongoing")
    score: float
    value: float
    expected: float | None
    status: AlertStatus
    silenced: bool = Field(
        False, description="Raised inside a silence (maintenance window): never notified"
    )
    details: dict[str, Any] = Field(
        default_factory=dict,
        description="What its kind adds: a limit alarm's limit and level, a forecast "
        "crossing's time and band",
    )
    assignee: str | None = Field(None, description="Who is on it (a user), if anyone")
    label: Literal["real", "false_alarm", "maintenance"] | None = Field(
        None, description="What people said it was, if they did"
    )


class CommentOut(BaseModel):
    id: int
    at: datetime
    author: str
    text: str


class HistoryOut(BaseModel):
    at: datetime
    actor: str
    action: str
    before: dict | None
    after: dict | None


class AlertDetailOut(AlertOut):
    comments: list[CommentOut] = Field(description="The comment thread, oldest first")
    history: list[HistoryOut] = Field(description="The audit log of this alert, oldest first")


class CommentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str = Field(min_length=1, max_length=4000, pattern=NO_NUL)


class AssigneeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    assignee: str | None = Field(
        max_length=200, pattern=NO_NUL, description="A user's name; null takes whoever off it"
    )


class LabelIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    label: Literal["real", "false_alarm", "maintenance"]


class BulkIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ids: list[Annotated[int, Field(ge=1, le=2**31 - 1)]] = Field(min_length=1, max_length=500)
    action: Literal["acknowledge", "resolve", "assign", "unassign", "label", "comment"]
    value: str | None = Field(
        None,
        max_length=4000,
        pattern=NO_NUL,
        description="assign: the user; label: real, false_alarm or maintenance; comment: the text",
    )


class BulkOut(BaseModel):
    action: str
    alerts: list[AlertOut]


class AlertPage(BaseModel):
    total: int = Field(description="How many alerts match the filters")
    alerts: list[AlertOut]
    next_cursor: str | None = Field(None, description="Pass as ?cursor= for the next page")


class DetectorState(BaseModel):
    detector: str
    scored_until: datetime | None


class DetectorStatus(BaseModel):
    sensor: str
    detectors: list[DetectorState]
    open_alerts: int


class ServeComponent(BaseModel):
    name: str
    state: str
    restarts: int
    last_error: str | None


class ServeHealth(BaseModel):
    """What `plantcast serve` last wrote of its components (see `plantcast status`)."""

    state: str  # running, degraded, stopped, gone (see plantcast.services.serve_status)
    components: list[ServeComponent]


class Health(BaseModel):
    status: Literal["ok", "degraded"]
    database: Literal["ok", "unavailable"]
    version: str
    serve: ServeHealth | None = None


class AssetSensor(BaseModel):
    name: str
    unit: str
    source: Source
    interval_seconds: float


class AssetOut(BaseModel):
    name: str
    description: str
    sensors: list[AssetSensor] = Field(description="In the order they joined")
    step_seconds: float = Field(description="The grid its sensors are aligned on")
    step_set: bool = Field(description="false: the step is the slowest sensor's interval")
    train_from: datetime | None = Field(None, description="The pinned known-good period's start")
    train_to: datetime | None = Field(None, description="… and its end (exclusive)")
    created_at: datetime


class AssetIn(BaseModel):
    """An asset of existing sensors (a sensor may belong to several assets)."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=SENSOR_NAME, examples=["pump_7"])
    sensors: list[Annotated[str, Field(min_length=1, max_length=200, pattern=NO_NUL)]] = Field(
        min_length=1, max_length=1000, examples=[["pump_7_flow", "pump_7_pressure"]]
    )
    step: str | None = Field(
        None,
        max_length=20,
        pattern=NO_NUL,
        description="Grid step (1min, 30s…); omitted: the slowest sensor's interval",
    )
    description: str = Field("", max_length=2000, pattern=NO_NUL)


class TrainingIn(BaseModel):
    """A known-good training period ``start <= t < end``; both null clear it."""

    model_config = ConfigDict(extra="forbid")
    start: Rfc3339 | None
    end: Rfc3339 | None


class AlignedWindow(BaseModel):
    asset: str
    start: datetime
    end: datetime
    step_seconds: float
    times: list[datetime] = Field(description="The grid times, start <= t < end")
    values: dict[str, list[float | None]] = Field(
        description="Per sensor, one value per grid time: its last reading at or before that "
        "time, null where that reading is older than two of the sensor's intervals"
    )


class UserIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=200, pattern=NO_NUL, description="Login name")
    role: Literal["viewer", "operator", "admin"] = "viewer"


class RoleIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role: Literal["viewer", "operator", "admin"]


class UserOut(BaseModel):
    name: str
    role: str
    created_at: datetime
    disabled_at: datetime | None


class KeyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=200, pattern=NO_NUL)
    user: str | None = Field(
        None, min_length=1, max_length=200, pattern=NO_NUL, description="Carries its role"
    )
    scopes: list[Literal["read", "write", "admin"]] | None = Field(
        None, description="Only without user (default read)"
    )


class KeyOut(BaseModel):
    id: int
    name: str
    prefix: str
    scopes: list[str]
    user: str | None
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class KeyMade(KeyOut):
    token: str = Field(description="Shown this once: only its hash is stored")


class AuditEntryOut(BaseModel):
    id: int
    at: datetime
    actor: str
    action: str
    target: str
    before: dict | None
    after: dict | None


# -- silences, annotations and limits -------------------------------------------------------
class SilenceIn(BaseModel):
    """A silence of one sensor, one asset or everything (``all``): one range (``end`` or
    ``duration``) or weekly windows (``every``: "sat 06:00 8h", UTC)."""

    model_config = ConfigDict(extra="forbid")
    sensor: str | None = Field(None, min_length=1, max_length=200, pattern=NO_NUL)
    asset: str | None = Field(None, min_length=1, max_length=200, pattern=NO_NUL)
    all: bool = False
    reason: str = Field(min_length=1, max_length=2000, pattern=NO_NUL)
    start: Rfc3339 | None = Field(None, description="From (default: now)")
    end: Rfc3339 | None = None
    duration: str | None = Field(None, max_length=20, pattern=NO_NUL, examples=["8h"])
    every: str | None = Field(None, max_length=100, pattern=NO_NUL, examples=["sat 06:00 8h"])


class SilenceOut(BaseModel):
    id: int
    scope: Literal["sensor", "asset", "all"]
    target: str | None
    starts_at: datetime
    ends_at: datetime | None
    recurrence: str | None
    reason: str
    author: str
    created_at: datetime
    ended_at: datetime | None
    active: bool = Field(description="Silencing now")


class SilenceWindowOut(BaseModel):
    """One silenced span of a sensor, clipped to the range asked for."""

    silence_id: int
    start: datetime
    end: datetime
    scope: str
    reason: str


class AnnotationIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    sensor: str = Field(min_length=1, max_length=200, pattern=NO_NUL)
    text: str = Field(min_length=1, max_length=2000, pattern=NO_NUL)
    at: Rfc3339 | None = Field(None, description="When (default: now)")
    end: Rfc3339 | None = Field(None, description="The end, for a note over a range")


class AnnotationPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str | None = Field(None, min_length=1, max_length=2000, pattern=NO_NUL)
    at: Rfc3339 | None = None
    end: Rfc3339 | None = None


class AnnotationOut(BaseModel):
    id: int
    sensor: str
    starts_at: datetime
    ends_at: datetime | None
    text: str
    author: str
    created_at: datetime


class LimitsIn(BaseModel):
    """A sensor's limits, all of them (an omitted or null level is not set)."""

    model_config = ConfigDict(extra="forbid")
    low_low: float | None = Field(None, allow_inf_nan=False)
    low: float | None = Field(None, allow_inf_nan=False)
    high: float | None = Field(None, allow_inf_nan=False)
    high_high: float | None = Field(None, allow_inf_nan=False)
    deadband: float = Field(0.0, ge=0, allow_inf_nan=False)


class LimitsOut(BaseModel):
    sensor: str
    low_low: float | None = None
    low: float | None = None
    high: float | None = None
    high_high: float | None = None
    deadband: float = 0.0
    updated_at: datetime | None = None
    updated_by: str | None = None
