"""What ``plantcast status`` and ``/health`` say of a running plant: the components ``serve``
runs (as it last wrote them), the scheduled jobs' last runs, and the lags."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import pandas as pd

from plantcast.core.timeutil import utcnow
from plantcast.store import Store

# serve writes every component's state every few seconds (serve.status_every, default 5 s):
# rows older than this mean serve itself is gone (killed, or its host down).
STALE_AFTER = pd.Timedelta(seconds=30)


def read_status(store: Store, now: pd.Timestamp | None = None) -> dict[str, Any]:
    """A JSON-ready report: ``serve`` (state and a note), ``components``, ``jobs``, ``lags``."""
    now = utcnow() if now is None else now
    components = store.list_components()
    jobs = store.list_jobs()
    lags = store.lags(now)
    return {
        "serve": serve_state(components, now),
        "components": [_component(c, now) for c in components],
        "jobs": [_plain(asdict(j)) for j in jobs],
        "lags": _plain({k: v for k, v in asdict(lags).items()}),
    }


def serve_state(components: list[Any], now: pd.Timestamp) -> dict[str, str]:
    """``state``: running, degraded (a component is not running), stopped, gone (serve wrote
    nothing for STALE_AFTER while its components were running) or never (no serve yet)."""
    if not components:
        return {"state": "never", "note": "no serve has run on this database"}
    seen = max(c.updated_at for c in components)
    ago = now - seen
    if all(c.state == "stopped" for c in components):
        return {"state": "stopped", "note": f"at {seen:%Y-%m-%d %H:%M:%S} UTC"}
    if ago > STALE_AFTER:
        return {
            "state": "gone",
            "note": f"not heard from for {int(ago.total_seconds())} s: killed or its host down",
        }
    down = [c.name for c in components if c.state != "running"]
    if down:
        return {"state": "degraded", "note": f"not running: {', '.join(down)}"}
    return {"state": "running", "note": f"{len(components)} components"}


def _component(c: Any, now: pd.Timestamp) -> dict[str, Any]:
    row = _plain(asdict(c))
    up = None
    if c.state == "running" and c.started_at is not None:
        up = f"{int((now - c.started_at).total_seconds())} s"
    row["up"] = up
    return row


def _plain(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v.isoformat() if isinstance(v, pd.Timestamp) else v for k, v in row.items()}
