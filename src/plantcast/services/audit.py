"""Who did what: the actor of a change and the JSON form of what it changed, for the audit log.

A change and its audit entry are written in one transaction (``tx.audit(...)``), so the trail
never records a change that did not happen nor misses one that did.
"""

from __future__ import annotations

import getpass
import os
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

import pandas as pd

from plantcast.core.timeutil import format_duration
from plantcast.store.audit import AuditEntry
from plantcast.store.facade import Store

SYSTEM = "system"


def cli_actor() -> str:
    """The person running a command: ``PLANTCAST_USER`` if set, else the login name."""
    name = os.environ.get("PLANTCAST_USER", "").strip()
    if name:
        return name
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (a container's random uid)
        return "unknown"


def jsonable(fields: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The fields as JSON values: times as ISO 8601 text, durations as people write them
    (``8h``), numpy scalars as Python numbers."""
    if fields is None:
        return None
    return {k: _value(v) for k, v in fields.items()}


def _value(v: Any) -> Any:
    if isinstance(v, pd.Timestamp | datetime):
        return pd.Timestamp(v).isoformat()
    if isinstance(v, pd.Timedelta | timedelta):
        return format_duration(pd.Timedelta(v))
    if isinstance(v, Mapping):
        return {str(k): _value(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_value(x) for x in v]
    if hasattr(v, "item") and callable(v.item):  # numpy scalar
        return v.item()
    return v


def changed(before: Mapping[str, Any], after: Mapping[str, Any]) -> tuple[dict, dict]:
    """Only the fields that differ, as (before, after)."""
    keys = [k for k in after if before.get(k) != after.get(k)]
    return (
        jsonable({k: before.get(k) for k in keys}) or {},
        jsonable({k: after.get(k) for k in keys}) or {},
    )


def entries(
    store: Store,
    *,
    since: Any = None,
    until: Any = None,
    actor: str | None = None,
    action: str | None = None,
    target: str | None = None,
    limit: int = 200,
) -> list[AuditEntry]:
    """The newest entries first (see :func:`plantcast.store.audit.list_entries`)."""
    with store.transaction(readonly=True) as tx:
        return tx.audit_entries(
            since=since, until=until, actor=actor, action=action, target=target, limit=limit
        )
