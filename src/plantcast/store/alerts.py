"""Alerts: what detectors found, with a lifecycle open → acknowledged → resolved."""

from __future__ import annotations

from collections.abc import Collection, Iterable
from typing import Any

import pandas as pd
from sqlalchemy import (
    BigInteger,
    Connection,
    Row,
    Select,
    Text,
    and_,
    bindparam,
    cast,
    func,
    inspect,
    select,
    text,
    type_coerce,
)

from plantcast.core.errors import InputError, NotFound, StoreError
from plantcast.core.timeutil import TimeLike, from_epoch_us, to_epoch_us, to_utc
from plantcast.core.types import Alert, AlertComment, AlertLabel, AlertStatus, Ongoing
from plantcast.store import notifications as outbox
from plantcast.store import silences
from plantcast.store.engine import upsert
from plantcast.store.schema import (
    alert_comments,
    alerts,
    asset_state,
    assets,
    detector_state,
    sensors,
)

# The notification each status change queues (in the same transaction: store.notifications).
STATUS_EVENTS = {"acknowledged": "acknowledged", "resolved": "resolved", "open": "reopened"}


def _to_alert(row: Row[Any]) -> Alert:
    agreed = {str(d["detector"]): float(d["score"]) for d in (row.detectors or [])}
    return Alert(
        id=row.id,
        sensor_id=row.sensor_id,
        ts=row.ts,
        ends_at=row.ends_at,
        detector=row.detector,
        score=row.score,
        value=row.value,
        expected=row.expected,
        status=AlertStatus(row.status),
        created_at=row.created_at,
        detectors=agreed or {row.detector: float(row.score)},
        asset_id=row.asset_id,
        contributors={str(c["sensor"]): float(c["share"]) for c in (row.contributors or [])},
        silenced=bool(row.silenced),
        details=dict(row.details or {}),
        assignee=row.assignee,
        label=None if row.label is None else AlertLabel(row.label),
        seen_until=row.seen_until,
    )


def _stored_detectors(fields: dict[str, Any]) -> None:
    """``detectors`` as a ``{name: score}`` mapping becomes the stored ordered list, and
    ``contributors`` as ``{sensor: share}`` the stored ranked list."""
    found = fields.get("detectors")
    if isinstance(found, dict):
        fields["detectors"] = [{"detector": k, "score": float(v)} for k, v in found.items()]
    ranked = fields.get("contributors")
    if isinstance(ranked, dict):
        fields["contributors"] = [{"sensor": k, "share": float(v)} for k, v in ranked.items()]


def insert_alert(
    conn: Connection,
    /,
    sensor_id: int | None,
    *,
    silencer: silences.Silencer | None = None,
    **fields: Any,
) -> int:
    """A new alert of a sensor, or (``sensor_id`` None, ``asset_id=`` given) of an asset;
    ``silencer``: the transaction's, to read the silences once for all its alerts (else they
    are read for this one)."""
    values = {**fields, "sensor_id": sensor_id}
    if (sensor_id is None) == (values.get("asset_id") is None):
        raise ValueError("an alert names either its sensor or its asset")
    values.setdefault("detectors", {values["detector"]: values["score"]})
    _stored_detectors(values)
    for key in ("ts", "ends_at", "seen_until"):
        if values.get(key) is not None:
            values[key] = to_utc(values[key])
    if not values.get("details"):
        values.pop("details", None)
    if silencer is None:
        silencer = silences.Silencer(conn)
    if silencer.covering(sensor_id, values["ts"], values.get("asset_id")) is not None:
        values["silenced"] = True  # stored all the same; the outbox skips it
    alert_id = int(conn.execute(alerts.insert().values(**values)).inserted_primary_key[0])  # type: ignore[index]  # never None after an INSERT
    outbox.enqueue(conn, alert_id, "opened", by="detector")
    return alert_id


def update_alert(conn: Connection, /, alert_id: int, **fields: Any) -> None:
    _stored_detectors(fields)
    for key in ("ts", "ends_at", "seen_until"):
        if fields.get(key) is not None:
            fields[key] = to_utc(fields[key])
    was_ongoing = None
    if "ends_at" in fields:  # the detector ends (resolves) or reopens an episode
        ends = conn.execute(select(alerts.c.ends_at).where(alerts.c.id == alert_id)).first()
        was_ongoing = None if ends is None else ends[0] is None
    conn.execute(alerts.update().where(alerts.c.id == alert_id).values(**fields))
    if was_ongoing is not None and was_ongoing != (fields["ends_at"] is None):
        outbox.enqueue(conn, alert_id, "resolved" if was_ongoing else "reopened", by="detector")


def list_alerts(
    conn: Connection,
    *,
    sensor_id: int | None = None,
    asset_id: int | None = None,
    status: AlertStatus | str | None = None,
    start: TimeLike | None = None,
    end: TimeLike | None = None,
    detector: str | None = None,
    ongoing: bool = False,
    limit: int = 200,
    before: tuple[pd.Timestamp, int] | None = None,
    silenced: bool | None = None,
    assignee: str | None = None,
    label: AlertLabel | str | None = None,
) -> list[Alert]:
    """Newest first; ``before`` = (ts, id) of the last alert of a previous page (a cursor);
    ``silenced``: only those raised inside a silence (True) or outside one (False)."""
    q = _workflow_filters(select(alerts), assignee, label)
    if silenced is not None:
        q = q.where(alerts.c.silenced == bool(silenced))
    if before is not None:
        b_ts, b_id = to_utc(before[0]), int(before[1])
        q = q.where((alerts.c.ts < b_ts) | ((alerts.c.ts == b_ts) & (alerts.c.id < b_id)))
    if ongoing:
        q = q.where(alerts.c.ends_at.is_(None))
    if sensor_id is not None:
        q = q.where(alerts.c.sensor_id == sensor_id)
    if asset_id is not None:
        q = q.where(alerts.c.asset_id == asset_id)
    if status is not None:
        q = q.where(alerts.c.status == str(AlertStatus(status)))
    if detector is not None:  # the detector that raised it, or one that agreed
        listed = cast(alerts.c.detectors, Text).like(f'%"detector": "{_like_safe(detector)}"%')
        q = q.where((alerts.c.detector == detector) | listed)
    if start is not None:
        q = q.where((alerts.c.ends_at.is_(None)) | (alerts.c.ends_at >= to_utc(start)))
    if end is not None:
        q = q.where(alerts.c.ts < to_utc(end))
    q = q.order_by(alerts.c.ts.desc(), alerts.c.id.desc()).limit(limit)
    return [_to_alert(r) for r in conn.execute(q)]


def _like_safe(text: str) -> str:
    """``text`` as a LIKE pattern's literal part: no wildcard or quote can widen the match (it
    is bound as a parameter all the same)."""
    return "".join(c for c in text if c.isalnum() or c in "_-.")


def parse_label(label: AlertLabel | str) -> AlertLabel:
    try:
        return AlertLabel(label)
    except ValueError:
        choices = ", ".join(x.value for x in AlertLabel)
        raise InputError(
            f"unknown label {label!r}; choose one of {choices}", field="label"
        ) from None


def _workflow_filters(
    q: Select[Any], assignee: str | None, label: AlertLabel | str | None
) -> Select[Any]:
    if assignee is not None:
        q = q.where(alerts.c.assignee == assignee)
    if label is not None:
        q = q.where(alerts.c.label == str(parse_label(label)))
    return q


def get_alert(conn: Connection, alert_id: int) -> Alert:
    row = conn.execute(select(alerts).where(alerts.c.id == alert_id)).first()
    if row is None:
        raise NotFound(f"no alert with id {alert_id}")
    return _to_alert(row)


def set_alert_status(
    conn: Connection, alert_id: int, status: AlertStatus | str, *, by: str = "operator"
) -> Alert:
    try:
        status = AlertStatus(status)
    except ValueError:
        choices = ", ".join(s.value for s in AlertStatus)
        raise InputError(f"unknown status {status!r}; choose one of {choices}") from None
    before = conn.execute(select(alerts.c.status).where(alerts.c.id == alert_id)).scalar()
    if before is None:
        raise NotFound(f"no alert with id {alert_id}")
    conn.execute(alerts.update().where(alerts.c.id == alert_id).values(status=str(status)))
    if before != str(status):
        outbox.enqueue(conn, alert_id, STATUS_EVENTS[str(status)], by=by)
    return _to_alert(conn.execute(select(alerts).where(alerts.c.id == alert_id)).one())


def set_assignee(conn: Connection, alert_id: int, assignee: str | None, *, by: str) -> Alert:
    """Put ``assignee`` on the alert (None: nobody); a change queues ``assigned``."""
    before = get_alert(conn, alert_id)
    conn.execute(alerts.update().where(alerts.c.id == alert_id).values(assignee=assignee))
    if before.assignee != assignee:
        outbox.enqueue(conn, alert_id, "assigned", by=by)
    return get_alert(conn, alert_id)


def set_label(conn: Connection, alert_id: int, label: AlertLabel | str | None, *, by: str) -> Alert:
    """Say what the alert was (None: take the label back); a change queues ``labelled``."""
    value = None if label is None else str(parse_label(label))
    before = get_alert(conn, alert_id)
    conn.execute(alerts.update().where(alerts.c.id == alert_id).values(label=value))
    if (before.label and str(before.label)) != value:
        outbox.enqueue(conn, alert_id, "labelled", by=by)
    return get_alert(conn, alert_id)


def _to_comment(row: Row[Any]) -> AlertComment:
    return AlertComment(
        id=row.id, alert_id=row.alert_id, at=row.at, author=row.author, text=row.text
    )


def add_comment(conn: Connection, alert_id: int, author: str, text: str) -> AlertComment:
    """Append a comment to the alert's thread; queues ``commented`` (the text in the body)."""
    get_alert(conn, alert_id)
    new = conn.execute(alert_comments.insert().values(alert_id=alert_id, author=author, text=text))
    comment_id = new.inserted_primary_key[0]  # type: ignore[index]  # never None after an INSERT
    outbox.enqueue(conn, alert_id, "commented", by=author, detail={"comment": text})
    row = conn.execute(select(alert_comments).where(alert_comments.c.id == comment_id)).one()
    return _to_comment(row)


def list_comments(conn: Connection, alert_id: int) -> list[AlertComment]:
    """The alert's thread, oldest first."""
    q = select(alert_comments).where(alert_comments.c.alert_id == alert_id)
    return [_to_comment(r) for r in conn.execute(q.order_by(alert_comments.c.id))]


def labelled_alerts(
    conn: Connection,
    *,
    sensor_ids: Iterable[int] | None = None,
    labels: Iterable[AlertLabel | str] | None = None,
) -> list[Alert]:
    """Every labelled alert (of these sensors, with these labels), oldest first."""
    q = select(alerts).where(alerts.c.label.is_not(None))
    if labels is not None:
        q = q.where(alerts.c.label.in_([str(parse_label(x)) for x in labels]))
    if sensor_ids is not None:
        q = q.where(alerts.c.sensor_id.in_([int(i) for i in sensor_ids]))
    return [_to_alert(r) for r in conn.execute(q.order_by(alerts.c.ts, alerts.c.id))]


def count_alerts(
    conn: Connection,
    *,
    sensor_id: int | None = None,
    asset_id: int | None = None,
    status: AlertStatus | str | None = None,
    assignee: str | None = None,
    label: AlertLabel | str | None = None,
) -> int:
    """How many alerts match (what a listing cut by its limit is out of)."""
    q = _workflow_filters(select(func.count()).select_from(alerts), assignee, label)
    if sensor_id is not None:
        q = q.where(alerts.c.sensor_id == sensor_id)
    if asset_id is not None:
        q = q.where(alerts.c.asset_id == asset_id)
    if status is not None:
        q = q.where(alerts.c.status == str(AlertStatus(status)))
    return int(conn.execute(q).scalar_one())


def count_open_alerts(conn: Connection, sensor_id: int | None = None) -> int:
    q = select(func.count()).select_from(alerts).where(alerts.c.status == str(AlertStatus.OPEN))
    if sensor_id is not None:
        q = q.where(alerts.c.sensor_id == sensor_id)
    return int(conn.execute(q).scalar_one())


def sensor_names(conn: Connection) -> dict[int, str]:
    return {r.id: r.name for r in conn.execute(select(sensors.c.id, sensors.c.name))}


def get_scored_until(conn: Connection, sensor_id: int, detector: str) -> pd.Timestamp | None:
    q = select(detector_state.c.scored_until).where(
        and_(detector_state.c.sensor_id == sensor_id, detector_state.c.detector == detector)
    )
    return conn.execute(q).scalar()


def set_scored_until(conn: Connection, sensor_id: int, detector: str, ts: pd.Timestamp) -> None:
    where = and_(detector_state.c.sensor_id == sensor_id, detector_state.c.detector == detector)
    n = conn.execute(detector_state.update().where(where).values(scored_until=to_utc(ts))).rowcount
    if n == 0:
        conn.execute(
            detector_state.insert().values(
                sensor_id=sensor_id, detector=detector, scored_until=to_utc(ts)
            )
        )


# -- many sensors at once (a detect pass over a plant) -------------------------------------
def scored_until_many(
    conn: Connection, sensor_ids: Iterable[int]
) -> dict[tuple[int, str], pd.Timestamp]:
    """Every resume point of these sensors: ``{(sensor_id, detector): scored_until}``. The
    times are read as epoch microseconds and made Timestamps all at once (a pass reads a
    mark per detector of every sensor: a conversion per row cost more than the query)."""
    ids = [int(i) for i in dict.fromkeys(sensor_ids)]
    pg = conn.dialect.name == "postgresql"
    col = detector_state.c.scored_until
    # PostgreSQL's extract gives an exact numeric; SQLite stores the microseconds themselves
    us_sql = (
        cast(func.extract("epoch", col) * 1_000_000, BigInteger)
        if pg
        else type_coerce(col, BigInteger)
    )
    keys: list[tuple[int, str]] = []
    us: list[int] = []
    for lo in range(0, len(ids), 500):
        q = select(detector_state.c.sensor_id, detector_state.c.detector, us_sql).where(
            detector_state.c.sensor_id.in_(ids[lo : lo + 500])
        )
        for sid, det, at in conn.execute(q):
            keys.append((sid, det))
            us.append(at)
    # the unit the column's own type gives each engine: a datetime's on PostgreSQL
    times = from_epoch_us(us).as_unit("us") if pg else from_epoch_us(us)
    return dict(zip(keys, times, strict=True))


def set_scored_until_many(conn: Connection, marks: dict[tuple[int, str], pd.Timestamp]) -> None:
    """``set_scored_until`` for many (sensor, detector) pairs in one upsert statement: on
    PostgreSQL the pairs go as three arrays (``unnest``), one round trip for a whole pass; on
    SQLite the upsert is run for each row, in-process."""
    if not marks:
        return
    keys = sorted(marks)
    times = pd.to_datetime([marks[k] for k in keys], utc=True)  # as to_utc each, at once
    if conn.dialect.name == "postgresql":
        conn.execute(
            _UPSERT_MARKS_PG,
            {
                "s": [int(sid) for sid, _ in keys],
                "d": [det for _, det in keys],
                "t": to_epoch_us(times).tolist(),  # numbers cross quicker than datetimes
            },
        )
        return
    rows = [
        {"sensor_id": sid, "detector": det, "scored_until": ts}
        for (sid, det), ts in zip(keys, times, strict=True)
    ]
    upsert(conn, detector_state, rows, ("sensor_id", "detector"))


_UPSERT_MARKS_PG = text(
    "INSERT INTO detector_state (sensor_id, detector, scored_until)"
    " SELECT s, d, timestamptz 'epoch' + t * interval '1 microsecond'"
    " FROM unnest(CAST(:s AS integer[]), CAST(:d AS varchar[]), CAST(:t AS bigint[])) AS m(s, d, t)"
    " ON CONFLICT (sensor_id, detector) DO UPDATE SET scored_until = excluded.scored_until"
)


def alerts_reaching_many(
    conn: Connection, sensor_ids: Iterable[int], start: TimeLike
) -> dict[int, list[Alert]]:
    """Alerts of these sensors still ongoing or ending at or after ``start``, newest first per
    sensor: what ``list_alerts(sensor_id=…, start=…)`` gives each."""
    ids = [int(i) for i in dict.fromkeys(sensor_ids)]
    out: dict[int, list[Alert]] = {}
    at = to_utc(start)
    for lo in range(0, len(ids), 500):
        q = (
            select(alerts)
            .where(alerts.c.sensor_id.in_(ids[lo : lo + 500]))
            .where((alerts.c.ends_at.is_(None)) | (alerts.c.ends_at >= at))
            .order_by(alerts.c.sensor_id, alerts.c.ts.desc(), alerts.c.id.desc())
        )
        for r in conn.execute(q):
            out.setdefault(r.sensor_id, []).append(_to_alert(r))
    return out


def ongoing_alerts(
    conn: Connection, sensor_ids: Iterable[int], remembered: Collection[str] = ()
) -> dict[int, Ongoing]:
    """Of these sensors, those with an alert still ongoing (no end yet), each with the start
    of its oldest ongoing alert and the detectors that agreed on any of them. An alert is
    left out when every detector that agreed on it is one of ``remembered`` and it keeps
    where its newest episode ended (``seen_until``): its episode is not rescored whole."""
    ids = [int(i) for i in dict.fromkeys(sensor_ids)]
    kept = frozenset(remembered)
    since: dict[int, pd.Timestamp] = {}
    agreed: dict[int, set[str]] = {}
    cols = (alerts.c.sensor_id, alerts.c.ts, alerts.c.detector, alerts.c.detectors)
    for lo in range(0, len(ids), 500):
        q = select(*cols, alerts.c.seen_until).where(
            alerts.c.sensor_id.in_(ids[lo : lo + 500]), alerts.c.ends_at.is_(None)
        )
        for r in conn.execute(q):
            names = {str(r.detector), *(str(d["detector"]) for d in (r.detectors or []))}
            if r.seen_until is not None and names <= kept:
                continue
            sid, ts = int(r.sensor_id), to_utc(r.ts)
            since[sid] = min(since.get(sid, ts), ts)
            agreed.setdefault(sid, set()).update(names)
    return {sid: Ongoing(ts, frozenset(agreed[sid])) for sid, ts in since.items()}


def alerts_of_assets(
    conn: Connection, asset_ids: Iterable[int], start: TimeLike
) -> dict[int, list[Alert]]:
    """Alerts of these assets still ongoing or ending at or after ``start``, newest first
    per asset."""
    ids = [int(i) for i in dict.fromkeys(asset_ids)]
    out: dict[int, list[Alert]] = {}
    at = to_utc(start)
    for lo in range(0, len(ids), 500):
        q = (
            select(alerts)
            .where(alerts.c.asset_id.in_(ids[lo : lo + 500]))
            .where((alerts.c.ends_at.is_(None)) | (alerts.c.ends_at >= at))
            .order_by(alerts.c.asset_id, alerts.c.ts.desc(), alerts.c.id.desc())
        )
        for r in conn.execute(q):
            out.setdefault(r.asset_id, []).append(_to_alert(r))
    return out


def has_alerts_of_asset(conn: Connection, asset_id: int) -> bool:
    """Whether any alert names this asset (such an asset is kept: its alerts need it)."""
    q = select(alerts.c.id).where(alerts.c.asset_id == asset_id).limit(1)
    return conn.execute(q).first() is not None


def asset_names(conn: Connection) -> dict[int, str]:
    return {r.id: r.name for r in conn.execute(select(assets.c.id, assets.c.name))}


# -- how far asset detection has scored (asset_state) --------------------------------------
def asset_scored_until(
    conn: Connection, asset_ids: Iterable[int]
) -> dict[tuple[int, str], pd.Timestamp]:
    """Every resume point of these assets: ``{(asset_id, detector): scored_until}``."""
    ids = [int(i) for i in dict.fromkeys(asset_ids)]
    out: dict[tuple[int, str], pd.Timestamp] = {}
    for lo in range(0, len(ids), 500):
        q = select(asset_state).where(asset_state.c.asset_id.in_(ids[lo : lo + 500]))
        for r in conn.execute(q):
            out[(r.asset_id, r.detector)] = r.scored_until
    return out


def set_asset_scored_until(conn: Connection, marks: dict[tuple[int, str], pd.Timestamp]) -> None:
    """Move assets' resume points: ``{(asset_id, detector): scored_until}``."""
    if not marks:
        return
    have = set(asset_scored_until(conn, {aid for aid, _ in marks}))
    rows = [{"a": aid, "d": det, "until": to_utc(ts)} for (aid, det), ts in sorted(marks.items())]
    old = [r for r in rows if (r["a"], r["d"]) in have]
    new = [r for r in rows if (r["a"], r["d"]) not in have]
    if old:
        where = and_(
            asset_state.c.asset_id == bindparam("a"), asset_state.c.detector == bindparam("d")
        )
        conn.execute(asset_state.update().where(where).values(scored_until=bindparam("until")), old)
    if new:
        conn.execute(
            asset_state.insert(),
            [{"asset_id": r["a"], "detector": r["d"], "scored_until": r["until"]} for r in new],
        )


def forget_asset_state(conn: Connection, asset_id: int) -> None:
    """An asset's resume points (removed with the asset)."""
    conn.execute(asset_state.delete().where(asset_state.c.asset_id == asset_id))


# -- upgrades of an older alerts table (plantcast init / migrate) ---------------------------
def upgrade(conn: Connection) -> list[str]:
    """Bring an older ``alerts`` table up to this schema: ``detectors`` came later (alerts
    stored before read as raised by their one detector), then ``asset_id`` and
    ``contributors`` with ``sensor_id`` made nullable (asset alerts), then ``silenced`` and
    ``details`` (alerts stored before: not silenced, no details), then the workflow's
    ``assignee`` and ``label`` (none assigned, no label), then ``seen_until`` (none kept:
    such an alert's episode is rescored whole, as before). Returns what was done.

    On SQLite a NOT NULL cannot be dropped in place: :func:`rebuild_sqlite` does that, on a
    connection of its own, before this runs."""
    columns = {c["name"]: c for c in inspect(conn).get_columns("alerts")}
    done = []
    if "detectors" not in columns:
        conn.exec_driver_sql("ALTER TABLE alerts ADD COLUMN detectors JSON NOT NULL DEFAULT '[]'")
        done.append("alerts.detectors added")
    if "silenced" not in columns:  # alerts stored before silences were never silenced
        conn.exec_driver_sql(
            "ALTER TABLE alerts ADD COLUMN silenced BOOLEAN NOT NULL DEFAULT false"
        )
        done.append("alerts.silenced added")
    if "details" not in columns:
        conn.exec_driver_sql("ALTER TABLE alerts ADD COLUMN details JSON NOT NULL DEFAULT '{}'")
        done.append("alerts.details added")
    if "asset_id" not in columns:
        conn.exec_driver_sql(
            "ALTER TABLE alerts ADD COLUMN asset_id INTEGER REFERENCES assets (id)"
        )
        conn.exec_driver_sql("ALTER TABLE alerts ADD COLUMN contributors JSON")
        conn.exec_driver_sql(
            "CREATE INDEX IF NOT EXISTS ix_alerts_asset_ts ON alerts (asset_id, ts)"
        )
        done.append("alerts.asset_id and alerts.contributors added")
    if not columns["sensor_id"]["nullable"] and conn.dialect.name == "postgresql":
        conn.exec_driver_sql("ALTER TABLE alerts ALTER COLUMN sensor_id DROP NOT NULL")
        done.append("alerts.sensor_id made nullable (asset alerts)")
    for name, kind in (("assignee", "VARCHAR(200)"), ("label", "VARCHAR(20)")):
        if name not in columns:
            conn.exec_driver_sql(f"ALTER TABLE alerts ADD COLUMN {name} {kind}")  # fixed names
            done.append(f"alerts.{name} added")
    if "seen_until" not in columns:  # alerts stored before: their episodes are rescored whole
        kind = alerts.c.seen_until.type.compile(dialect=conn.dialect)  # the schema's own type
        conn.exec_driver_sql(f"ALTER TABLE alerts ADD COLUMN seen_until {kind}")
        done.append("alerts.seen_until added")
    return done


def sqlite_needs_rebuild(conn: Connection) -> bool:
    """An SQLite ``alerts`` table whose ``sensor_id`` is still NOT NULL."""
    if conn.dialect.name != "sqlite" or not inspect(conn).has_table("alerts"):
        return False
    found = {c["name"]: c for c in inspect(conn).get_columns("alerts")}
    return not found["sensor_id"]["nullable"]


def rebuild_sqlite(dbapi_conn: Any) -> list[str]:
    """Rebuild an SQLite ``alerts`` table in place with this schema (SQLite cannot drop a NOT
    NULL): the documented way, in one transaction with foreign keys off — a new table, every
    row copied with its id, the old one dropped, the new one renamed, its indexes made — then
    checked: the same row count and no dangling foreign key (``PRAGMA foreign_key_check``), or
    it is rolled back whole. ``dbapi_conn`` is a raw sqlite3 connection in autocommit mode
    (PRAGMA foreign_keys has no effect inside a transaction)."""
    from sqlalchemy.dialects import sqlite
    from sqlalchemy.schema import CreateIndex, CreateTable

    dialect = sqlite.dialect()
    create = str(CreateTable(alerts).compile(dialect=dialect)).strip()
    create = create.replace("CREATE TABLE alerts ", "CREATE TABLE alerts_rebuild ", 1)
    cur = dbapi_conn.cursor()
    try:
        old = [r[1] for r in cur.execute("PRAGMA table_info(alerts)").fetchall()]
        kept = ", ".join(c for c in old if c in alerts.c)
        cur.execute("PRAGMA foreign_keys=OFF")
        cur.execute("BEGIN IMMEDIATE")
        try:
            cur.execute("DROP TABLE IF EXISTS alerts_rebuild")
            cur.execute(create)
            # the column names are the schema's own (those the old table has), not input
            cur.execute(f"INSERT INTO alerts_rebuild ({kept}) SELECT {kept} FROM alerts")
            rows = cur.execute("SELECT count(*) FROM alerts").fetchone()[0]
            cur.execute("DROP TABLE alerts")
            cur.execute("ALTER TABLE alerts_rebuild RENAME TO alerts")
            for index in alerts.indexes:
                cur.execute(str(CreateIndex(index).compile(dialect=dialect)))
            copied = cur.execute("SELECT count(*) FROM alerts").fetchone()[0]
            dangling = cur.execute("PRAGMA foreign_key_check(alerts)").fetchall()
            if cur.execute("SELECT 1 FROM sqlite_master WHERE name = 'notifications'").fetchone():
                dangling += cur.execute("PRAGMA foreign_key_check(notifications)").fetchall()
            if copied != rows or dangling:
                raise StoreError(
                    f"rebuilding the alerts table failed its check ({rows} rows before, "
                    f"{copied} after, {len(dangling)} dangling reference(s)); nothing changed"
                )
            cur.execute("COMMIT")
        except BaseException:
            cur.execute("ROLLBACK")
            raise
    finally:
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()
    return [f"alerts rebuilt ({rows} kept): sensor_id nullable, asset_id and contributors added"]
