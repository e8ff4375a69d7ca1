"""Configuring destinations (``plantcast notify add|list|remove|test``)."""

from __future__ import annotations

import json
import re
import secrets
import uuid
from datetime import UTC, datetime

from plantcast.core.config import Settings
from plantcast.core.errors import InputError
from plantcast.notify.sender import deliver
from plantcast.notify.webhook import check_url
from plantcast.store import Store
from plantcast.store.notifications import Destination

_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_ADDRESS = re.compile(r"[^@\s,]+@[^@\s,]+")


def add_destination(
    store: Store,
    name: str,
    *,
    webhook: str | None = None,
    email: str | None = None,
    secret_env: str | None = None,
    actor: str = "system",
) -> tuple[Destination, str | None]:
    """Add a webhook or e-mail destination; returns it and a newly generated secret (a webhook
    without ``secret_env`` gets one, shown once), else None. One audit entry, as ``actor``
    (never the secret)."""
    if (webhook is None) == (email is None):
        raise InputError("give either --webhook URL or --email ADDRESS[,ADDRESS…]")
    generated = None
    if webhook is not None:
        kind, target = "webhook", check_url(webhook)
        if secret_env is not None and not _ENV_NAME.fullmatch(secret_env):
            raise InputError(
                f"not an environment variable name: {secret_env!r}", field="secret_env"
            )
        if secret_env is None:
            generated = secrets.token_urlsafe(32)
    else:
        if secret_env is not None:
            raise InputError("--secret-env is for webhooks (e-mail is not signed)")
        addresses = [a.strip() for a in email.split(",") if a.strip()]
        bad = [a for a in addresses if not _ADDRESS.fullmatch(a)]
        if not addresses or bad:
            raise InputError(f"not an e-mail address: {(bad or [email])[0]!r}", field="email")
        kind, target = "email", ",".join(addresses)
    with store.transaction() as tx:
        dest = tx.add_destination(name, kind, target, secret=generated, secret_env=secret_env)
        after = {"kind": kind, "target": target, "secret_env": secret_env}
        tx.audit(actor, "destination.add", f"destination:{name}", None, after)
    return dest, generated


def list_destinations(store: Store) -> list[tuple[Destination, dict]]:
    """Each destination with its outbox counts (delivered, pending, last error)."""
    with store.transaction(readonly=True) as tx:
        dests = tx.list_destinations()
        summary = tx.outbox_summary()
    empty = {"delivered": 0, "pending": 0, "last_error": None}
    return [(d, summary.get(d.id, empty)) for d in dests]


def remove_destination(store: Store, name: str, *, actor: str = "system") -> int:
    """Remove a destination and its queued notifications (how many were undelivered)."""
    with store.transaction() as tx:
        gone = tx.get_destination(name)
        dropped = tx.remove_destination(name)
        before = {"kind": gone.kind, "target": gone.target, "secret_env": gone.secret_env}
        after = {"undelivered": dropped}
        tx.audit(actor, "destination.remove", f"destination:{name}", before, after)
        return dropped


def send_test(store: Store, name: str, settings: Settings) -> str:
    """Deliver a test event to one destination now (not through the outbox); returns what the
    receiver said, raises :class:`~plantcast.notify.webhook.DeliveryError`."""
    with store.transaction(readonly=True) as tx:
        dest = tx.get_destination(name)
    key = uuid.uuid4().hex
    body = json.dumps(
        {
            "event": "test",
            "by": "operator",
            "idempotency_key": key,
            "occurred_at": datetime.now(UTC).isoformat(),
            "alert": None,
        },
        separators=(",", ":"),
    )
    return deliver(dest, body, key, "test", settings)
