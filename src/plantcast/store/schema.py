"""The tables (docs/architecture.md), in SQLAlchemy Core, with one time type for both engines."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, cast

import pandas as pd
from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    false,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeEngine


class UTCTime(TypeDecorator[pd.Timestamp]):
    """Tz-aware UTC time: ``TIMESTAMPTZ`` on PostgreSQL, integer epoch microseconds on SQLite.

    SQLite has no time type; an integer keeps range scans and bucketing cheap and exact.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(BigInteger())
        return dialect.type_descriptor(DateTime(timezone=True))

    def process_bind_param(self, value: Any, dialect: Dialect) -> int | datetime | None:
        if value is None:
            return None
        ts = pd.Timestamp(value)
        ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
        if dialect.name == "sqlite":
            return int(ts.value // 1_000)
        return cast(datetime, ts.to_pydatetime())

    def process_result_value(self, value: Any, dialect: Dialect) -> pd.Timestamp | None:
        if value is None:
            return None
        if dialect.name == "sqlite":
            return pd.Timestamp(int(value) * 1_000, tz="UTC")
        return pd.Timestamp(value).tz_convert("UTC")


def _now() -> datetime:
    return datetime.now(UTC)


metadata = MetaData()

sensors = Table(
    "sensors",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(200), nullable=False, unique=True),
    Column("unit", String(50), nullable=False, default=""),
    Column("description", Text, nullable=False, default=""),
    Column("source", String(20), nullable=False),
    Column("interval_s", Float, nullable=False),
    # The signal model of a simulated sensor, as JSON, so any process can stream it.
    Column("params", Text, nullable=False, default="{}"),
    Column("created_at", UTCTime, nullable=False, default=_now),
    # A streamer's simulated clock: the last time it generated, written or not (dropouts).
    Column("clock", UTCTime, nullable=True),
)

readings = Table(
    "readings",
    metadata,
    Column("sensor_id", Integer, ForeignKey("sensors.id"), primary_key=True),
    Column("ts", UTCTime, primary_key=True),
    Column("value", Float, nullable=False),
    # The primary key is the clustered index on SQLite: range scans per sensor read contiguously.
    sqlite_with_rowid=False,
    # Monthly range partitions on PostgreSQL (plantcast.store.partitions); ignored by SQLite.
    postgresql_partition_by="RANGE (ts)",
)

events = Table(
    "events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("sensor_id", Integer, ForeignKey("sensors.id"), nullable=False),
    Column("kind", String(20), nullable=False),
    Column("starts_at", UTCTime, nullable=False),
    Column("ends_at", UTCTime, nullable=True),
    Column("magnitude", Float, nullable=False, default=0.0),
    Column("note", Text, nullable=False, default=""),
    Column("created_at", UTCTime, nullable=False, default=_now),
    Index("ix_events_sensor_start", "sensor_id", "starts_at"),
)

alerts = Table(
    "alerts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    # a sensor's alert names its sensor; an asset's (multivariate) alert its asset instead
    Column("sensor_id", Integer, ForeignKey("sensors.id"), nullable=True),
    Column("ts", UTCTime, nullable=False),  # when the anomaly started
    Column("ends_at", UTCTime, nullable=True),  # last flagged reading; NULL while ongoing
    Column("detector", String(50), nullable=False),
    Column("score", Float, nullable=False),
    Column("value", Float, nullable=False),
    Column("expected", Float, nullable=True),
    Column("status", String(20), nullable=False, default="open"),
    Column("created_at", UTCTime, nullable=False, default=_now),
    # one alert per episode: every detector that agreed, [{"detector", "score"}] in the order
    # they joined (empty on alerts stored before: then only ``detector``)
    Column("detectors", JSON, nullable=False, default=list),
    # an asset's alert: the asset, and its sensors ranked by their share of the score at the
    # peak, [{"sensor": name, "share": 0..1}] (NULL on a sensor's alert)
    Column("asset_id", Integer, ForeignKey("assets.id"), nullable=True),
    Column("contributors", JSON, nullable=True),
    # raised inside a silence (maintenance window): stored, but no notification leaves
    Column("silenced", Boolean, nullable=False, default=False, server_default=false()),
    # what a kind of alert adds (a limit alarm: the limit and level; a forecast crossing: when
    # and the forecast's band there), as JSON; {} for the detectors' alerts
    Column("details", JSON, nullable=False, default=dict, server_default="{}"),
    # the workflow (plantcast.services.alert_workflow): who is on it, and what people said it
    # was (real, false_alarm, maintenance); added by `plantcast init` to older tables
    Column("assignee", String(200), nullable=True),
    Column("label", String(20), nullable=True),
    # while ongoing, the end of its newest episode of a memoryless detector (dropout's gaps,
    # ``Detector.memoryless``): a detect pass no longer rescores such an episode whole, it
    # closes the alert from this once the signal has been normal for ``resolve_after``
    # (NULL: no such episode, or stored before; then its episode is rescored whole)
    Column("seen_until", UTCTime, nullable=True),
    Index("ix_alerts_sensor_ts", "sensor_id", "ts"),
    Index("ix_alerts_asset_ts", "asset_id", "ts"),
    Index("ix_alerts_status", "status"),
)

# An alert's comment thread, oldest first; comments are never edited or deleted.
alert_comments = Table(
    "alert_comments",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("alert_id", Integer, ForeignKey("alerts.id"), nullable=False),
    Column("at", UTCTime, nullable=False, default=_now),
    Column("author", String(200), nullable=False),
    Column("text", Text, nullable=False),
    Index("ix_alert_comments_alert", "alert_id", "id"),
)

# Per sensor and detector: the last reading time already scored, so `detect` is incremental.
detector_state = Table(
    "detector_state",
    metadata,
    Column("sensor_id", Integer, ForeignKey("sensors.id"), primary_key=True),
    Column("detector", String(50), primary_key=True),
    Column("scored_until", UTCTime, nullable=False),
)

# Per sensor: the detectors of its last refit, so an incremental pass scores new readings
# against them instead of refitting (plantcast.services.detector_fits). Derived data: the
# table may be emptied or dropped at any time; the next pass refits and writes it again.
detector_fits = Table(
    "detector_fits",
    metadata,
    Column("sensor_id", Integer, ForeignKey("sensors.id"), primary_key=True),
    Column("detectors", Text, nullable=False),  # the names fitted, comma-separated
    Column("periods", Text, nullable=False),  # the seasons asked for, comma-separated
    Column("trained_until", UTCTime, nullable=False),  # last reading of the training window
    Column("fitted_at", UTCTime, nullable=False),
    Column("version", Integer, nullable=False),  # of the state's format; another is refitted
    Column("state", LargeBinary, nullable=False),  # the fitted detectors, pickled
)

# Per sensor: its latest forecast, kept ready by a scheduled refit (plantcast.services
# .forecast_store) so the API and the page read it instead of fitting. Derived data: emptying the
# table loses nothing but time (the next refresh makes every forecast again).
forecasts = Table(
    "forecasts",
    metadata,
    Column("sensor_id", Integer, ForeignKey("sensors.id"), primary_key=True),
    Column("model", String(50), nullable=False),  # the model asked for (``auto``, ``svr``, …)
    Column("chosen", String(200), nullable=False),  # what forecast: auto's choice, or ``model``
    Column("horizon", Integer, nullable=False),  # steps ahead
    Column("made_at", UTCTime, nullable=False),  # when the refit ran (its age: stale or not)
    Column("trained_until", UTCTime, nullable=False),  # the last reading it was fitted on
    Column("fitted_on", Integer, nullable=False),  # readings it was fitted on
    # [[ts_us, mean, lower_80, upper_80, lower_95, upper_95], …] as JSON text: served as it is
    Column("points", Text, nullable=False),
    Column("scores", Text, nullable=False, default="{}"),  # the chosen model's backtest metrics
    # auto: what it chose from ({"scores": {candidate: MASE}, "members", "weights", "combine"})
    # and when; a refit keeps the choice until it is ``reselect_every`` old or that many refits
    Column("choice", Text, nullable=True),
    Column("chosen_at", UTCTime, nullable=True),
    Column("refits", Integer, nullable=False, default=0),  # refits since the choice
    Index("ix_forecasts_made_at", "made_at"),
)

# What a live connector could not store (bad payload, Bad OPC UA status): kept, not retried.
dead_letters = Table(
    "dead_letters",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("source", String(20), nullable=False),  # mqtt, opcua
    Column("topic", Text, nullable=False),  # MQTT topic or OPC UA node id
    Column("payload", LargeBinary, nullable=False),  # capped at PAYLOAD_CAP bytes
    Column("payload_size", Integer, nullable=False),  # the original size, before the cap
    Column("reason", Text, nullable=False),  # the detail, with the value at fault
    Column("received_at", UTCTime, nullable=False, default=_now),
    # a short stable code (json_not_number, nan, unknown_sensor, …): what counts group by
    Column("kind", String(40), nullable=False, server_default="other"),
    Index("ix_dead_letters_received", "received_at"),
)

# People (plantcast.services.users): a login name (what the OpenID Connect claim or the CLI's
# PLANTCAST_USER gives) and a role, viewer / operator / admin. Disabled, never deleted: the audit
# log names them.
users = Table(
    "users",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(200), nullable=False, unique=True),
    Column("role", String(20), nullable=False),
    Column("created_at", UTCTime, nullable=False, default=_now),
    Column("disabled_at", UTCTime, nullable=True),
)

# REST API keys (plantcast.api): only a SHA-256 of each token is kept; scopes comma-separated.
# A key made for a user (user_id) carries that user's role instead of its scopes.
api_keys = Table(
    "api_keys",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(200), nullable=False),
    Column("prefix", String(16), nullable=False),  # the token's start: tells keys apart
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("scopes", String(100), nullable=False),
    Column("created_at", UTCTime, nullable=False, default=_now),
    Column("revoked_at", UTCTime, nullable=True),
    Column("last_used_at", UTCTime, nullable=True),
    Column("user_id", Integer, ForeignKey("users.id"), nullable=True),
)

# Where alert notifications go (plantcast.notify): a webhook URL or e-mail addresses. A webhook's
# signing secret is stored here or, with secret_env, read from that environment variable.
notify_destinations = Table(
    "notify_destinations",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(200), nullable=False, unique=True),
    Column("kind", String(20), nullable=False),  # webhook, email
    Column("target", Text, nullable=False),  # URL, or comma-separated addresses
    Column("secret", Text, nullable=True),
    Column("secret_env", String(200), nullable=True),
    Column("created_at", UTCTime, nullable=False, default=_now),
)

# The outbox: one row per alert transition per destination, written in the alert's transaction;
# the body is frozen there, so every retry sends (and signs) the same bytes under the same key.
notifications = Table(
    "notifications",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("destination_id", Integer, ForeignKey("notify_destinations.id"), nullable=False),
    Column("alert_id", Integer, ForeignKey("alerts.id"), nullable=False),
    Column("event", String(20), nullable=False),  # opened, acknowledged, resolved, reopened
    Column("idempotency_key", String(64), nullable=False, unique=True),
    Column("body", Text, nullable=False),
    Column("created_at", UTCTime, nullable=False, default=_now),
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", UTCTime, nullable=False, default=_now),
    Column("delivered_at", UTCTime, nullable=True),
    Column("last_error", Text, nullable=True),
    Index("ix_notifications_due", "delivered_at", "next_attempt_at"),
    Index("ix_notifications_alert", "alert_id", "destination_id"),  # in order, per alert
)

# Assets: groups of sensors watched together (multivariate detection aligns their readings on
# one grid). ``step_s`` NULL means the slowest member's interval; the training period is a
# pinned known-good span (both ends or neither).
assets = Table(
    "assets",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(200), nullable=False, unique=True),
    Column("description", Text, nullable=False, default=""),
    Column("step_s", Float, nullable=True),
    Column("train_from", UTCTime, nullable=True),
    Column("train_to", UTCTime, nullable=True),
    Column("created_at", UTCTime, nullable=False, default=_now),
)

# Per asset and detector: the last grid time already scored, so asset detection is
# incremental (the asset's ``detector_state``).
asset_state = Table(
    "asset_state",
    metadata,
    Column("asset_id", Integer, ForeignKey("assets.id"), primary_key=True),
    Column("detector", String(50), primary_key=True),
    Column("scored_until", UTCTime, nullable=False),
)

# Per asset and detector: the fitted asset detector that scores its new grid rows while fresh
# (plantcast.services.asset_detection). Derived data, as ``detector_fits``: it may be emptied
# or dropped; the next pass refits.
asset_fits = Table(
    "asset_fits",
    metadata,
    Column("asset_id", Integer, ForeignKey("assets.id"), primary_key=True),
    Column("detector", String(50), primary_key=True),
    Column("sensors", Text, nullable=False),  # the sensors fitted, comma-separated, in order
    Column("train_from", UTCTime, nullable=False),  # the training window's first grid time
    Column("train_to", UTCTime, nullable=False),  # and its end (exclusive)
    Column("fitted_at", UTCTime, nullable=False),
    Column("version", Integer, nullable=False),  # of the state's format; another is refitted
    Column("state", LargeBinary, nullable=False),  # the fitted detector, pickled
)

# Membership, many to many: a sensor may belong to several assets. ``position`` keeps the
# order sensors joined (an aligned frame's column order).
asset_sensors = Table(
    "asset_sensors",
    metadata,
    Column("asset_id", Integer, ForeignKey("assets.id"), primary_key=True),
    Column("sensor_id", Integer, ForeignKey("sensors.id"), primary_key=True),
    Column("position", Integer, nullable=False),
    Index("ix_asset_sensors_sensor", "sensor_id"),  # the assets of one sensor
)

# The audit trail: every change people make (acknowledge, assign, comment, label, silence,
# annotation, limit, asset, key, user, import), one row each, written in the change's own
# transaction and never updated or deleted. ``before``/``after`` are the changed fields as JSON.
audit_log = Table(
    "audit_log",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", UTCTime, nullable=False, default=_now),
    Column("actor", String(200), nullable=False),  # a user name, "key:<name>", or "system"
    Column("action", String(60), nullable=False),  # e.g. alert.acknowledge, silence.add
    Column("target", String(200), nullable=False),  # e.g. alert:12, sensor:pump_flow
    Column("before", JSON, nullable=True),
    Column("after", JSON, nullable=True),
    Index("ix_audit_log_at", "at"),
    Index("ix_audit_log_target", "target"),
)

# Silences (maintenance windows): while one covers an alert's start, the alert is stored marked
# silenced and queues no notification. ``scope`` is sensor, asset or all (``target`` the
# sensor's or asset's name, NULL for all). Either one range [starts_at, ends_at) or, with
# ``recurrence`` ("sat 06:00 8h", plantcast.core.recurrence), weekly windows from starts_at
# (until ends_at, if set). ``ended_at``: ended early by someone; nothing after it is silenced.
silences = Table(
    "silences",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("scope", String(10), nullable=False),
    Column("target", String(200), nullable=True),
    Column("starts_at", UTCTime, nullable=False),
    Column("ends_at", UTCTime, nullable=True),
    Column("recurrence", String(100), nullable=True),
    Column("reason", Text, nullable=False),
    Column("author", String(200), nullable=False),
    Column("created_at", UTCTime, nullable=False, default=_now),
    Column("ended_at", UTCTime, nullable=True),
    Index("ix_silences_scope_target", "scope", "target"),
)

# Annotations: a note on a sensor at a time (``ends_at`` NULL) or over a range.
notes = Table(
    "annotations",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("sensor_id", Integer, ForeignKey("sensors.id"), nullable=False),
    Column("starts_at", UTCTime, nullable=False),
    Column("ends_at", UTCTime, nullable=True),
    Column("text", Text, nullable=False),
    Column("author", String(200), nullable=False),
    Column("created_at", UTCTime, nullable=False, default=_now),
    Index("ix_annotations_sensor_start", "sensor_id", "starts_at"),
)

# Per-sensor alarm limits as a SCADA sets them (any may be NULL: not set). An alarm raised at a
# limit clears only once the value is back inside it by ``deadband`` (in the sensor's unit).
sensor_limits = Table(
    "sensor_limits",
    metadata,
    Column("sensor_id", Integer, ForeignKey("sensors.id"), primary_key=True),
    Column("low_low", Float, nullable=True),
    Column("low", Float, nullable=True),
    Column("high", Float, nullable=True),
    Column("high_high", Float, nullable=True),
    Column("deadband", Float, nullable=False, default=0.0),
    Column("updated_at", UTCTime, nullable=False, default=_now),
    Column("updated_by", String(200), nullable=False),
)

# What `plantcast serve` runs (plantcast.serve): each supervised process's state, written by
# the supervisor every few seconds and on every change, read by `plantcast status` and /health.
serve_components = Table(
    "serve_components",
    metadata,
    Column("name", String(100), primary_key=True),  # detect, notify, api, mqtt:line1, …
    Column("state", String(20), nullable=False),  # running, backoff, stopped, failed
    Column("pid", Integer, nullable=True),
    Column("restarts", Integer, nullable=False, default=0),
    Column("last_exit", Integer, nullable=True),  # exit code (negative: the signal)
    Column("last_error", Text, nullable=True),  # the last lines it wrote before it died
    Column("started_at", UTCTime, nullable=True),
    Column("updated_at", UTCTime, nullable=False, default=_now),
)

# The scheduled jobs of `serve` (plantcast.serve.jobs): each one's last run and outcome.
serve_jobs = Table(
    "serve_jobs",
    metadata,
    Column("name", String(100), primary_key=True),  # retention, seasons, partitions, forecasts
    Column("runs", Integer, nullable=False, default=0),
    Column("failures", Integer, nullable=False, default=0),
    Column("last_started_at", UTCTime, nullable=True),
    Column("last_finished_at", UTCTime, nullable=True),
    Column("last_outcome", String(20), nullable=True),  # ok, failed
    Column("last_seconds", Float, nullable=True),
    Column("last_detail", Text, nullable=True),  # what it did, or the error
    Column("next_run_at", UTCTime, nullable=True),
)
