"""The audit trail's rows: appended in the transaction of the change they record, never changed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd
from sqlalchemy import Connection, Row, select

from plantcast.core.timeutil import TimeLike, to_utc
from plantcast.store.schema import audit_log


@dataclass(frozen=True)
class AuditEntry:
    id: int
    at: pd.Timestamp
    actor: str
    action: str
    target: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None


def _to_entry(row: Row[Any]) -> AuditEntry:
    return AuditEntry(
        id=row.id,
        at=row.at,
        actor=row.actor,
        action=row.action,
        target=row.target,
        before=row.before,
        after=row.after,
    )


def record(
    conn: Connection,
    actor: str,
    action: str,
    target: str,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> int:
    """Append one entry; returns its id. Values must be JSON-serialisable (times as ISO text)."""
    result = conn.execute(
        audit_log.insert().values(
            actor=actor, action=action, target=target, before=before, after=after
        )
    )
    return int(result.inserted_primary_key[0])  # type: ignore[index]  # never None after an INSERT


def list_entries(
    conn: Connection,
    *,
    since: TimeLike | None = None,
    until: TimeLike | None = None,
    actor: str | None = None,
    action: str | None = None,
    target: str | None = None,
    limit: int = 200,
) -> list[AuditEntry]:
    """The newest entries first, filtered; ``action`` may end with ``.`` to match a family."""
    query = select(audit_log)
    if since is not None:
        query = query.where(audit_log.c.at >= to_utc(since))
    if until is not None:
        query = query.where(audit_log.c.at < to_utc(until))
    if actor is not None:
        query = query.where(audit_log.c.actor == actor)
    if action is not None:
        if action.endswith("."):
            query = query.where(audit_log.c.action.startswith(action, autoescape=True))
        else:
            query = query.where(audit_log.c.action == action)
    if target is not None:
        query = query.where(audit_log.c.target == target)
    query = query.order_by(audit_log.c.id.desc()).limit(limit)
    return [_to_entry(r) for r in conn.execute(query)]
