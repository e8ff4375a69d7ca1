"""The sender: due outbox rows → deliveries, retried with exponential backoff until accepted.

On PostgreSQL each row is delivered inside a transaction that holds it ``FOR UPDATE SKIP
LOCKED``: senders may run side by side, and a row whose sender dies is free again at once. On
SQLite one sender runs at a time (a lock file beside the database says so): rows are read,
delivered with no transaction open (a slow receiver never blocks the writers), then marked.
A row is marked delivered only after the receiver accepted it; one delivered but not marked
when the sender dies is sent again under the same idempotency key, and the receiver drops it.
"""

from __future__ import annotations

import fcntl
import logging
import os
import random
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO

from plantcast.core.config import Settings
from plantcast.core.errors import Refused, StoreUnavailable
from plantcast.notify import mail, webhook
from plantcast.notify.webhook import DeliveryError
from plantcast.store import Store, Transaction
from plantcast.store.notifications import Destination, Pending

log = logging.getLogger(__name__)
PURGE_EVERY_S = 3600.0  # how often a running sender deletes old delivered rows


def resolve_secret(dest: Destination) -> str | None:
    """The webhook's signing secret: stored, or read now from the variable named at `add`."""
    if dest.secret_env:
        value = os.environ.get(dest.secret_env)
        if not value:
            raise DeliveryError(f"environment variable {dest.secret_env} (the secret) is not set")
        return value
    return dest.secret


def deliver(dest: Destination, body: str, key: str, event: str, settings: Settings) -> str:
    """One attempt; returns what the receiver said, raises :class:`DeliveryError`."""
    timeout = settings.notify_timeout
    if dest.kind == "webhook":
        secret = resolve_secret(dest)
        status = webhook.post(
            dest.target, body, key=key, event=event, secret=secret, timeout=timeout
        )
        return f"HTTP {status}"
    to = [a.strip() for a in dest.target.split(",") if a.strip()]
    mail.send(body, key=key, to=to, settings=settings, timeout=timeout)
    return f"accepted by {settings.smtp_host}"


def backoff_delay(attempts: int, base: float, cap: float) -> float:
    """Seconds before try ``attempts + 1``: base·2^(attempts-1), capped, with ±10 % jitter."""
    delay = min(cap, base * 2 ** max(0, attempts - 1))
    return delay * random.uniform(0.9, 1.1)


@dataclass
class SendStats:
    delivered: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)


class Sender:
    """Delivers the outbox of one store; :meth:`run_once` for a pass, :meth:`run` to follow."""

    def __init__(
        self,
        store: Store,
        settings: Settings,
        *,
        backoff: float,
        max_backoff: float,
        keep: timedelta | None = None,
    ) -> None:
        self.store, self.settings = store, settings
        self.backoff, self.max_backoff = backoff, max_backoff
        self.keep = keep  # delivered rows older than this are deleted (None: kept)
        self.stopping = threading.Event()
        self._lock_file: IO[str] | None = None
        self._purged_at = float("-inf")

    # -- one pass ---------------------------------------------------------------------------
    def run_once(self, limit: int = 100) -> SendStats:
        """Deliver the rows due now (up to ``limit``)."""
        stats = SendStats()
        if self.store.dialect == "postgresql":
            for _ in range(limit):
                if self.stopping.is_set() or not self._one_locked(stats):
                    break
        else:
            with self.store.transaction(readonly=True) as tx:
                rows = tx.due_notifications(datetime.now(UTC), limit=limit)
            for row in rows:
                if self.stopping.is_set():
                    break
                outcome = self._attempt(row)
                with self.store.transaction() as tx:
                    self._record(tx, row, outcome, stats)
        return stats

    def _one_locked(self, stats: SendStats) -> bool:
        with self.store.transaction() as tx:
            rows = tx.due_notifications(datetime.now(UTC), limit=1, skip_locked=True)
            if not rows:
                return False
            self._record(tx, rows[0], self._attempt(rows[0]), stats)
        return True

    def _attempt(self, row: Pending) -> str | None:
        """None when accepted, else the error."""
        try:
            said = deliver(row.destination, row.body, row.idempotency_key, row.event, self.settings)
        except DeliveryError as exc:
            return str(exc)
        except Exception as exc:  # a bad row must not stop the others: kept, retried, shown
            log.exception("delivering %s failed", row.idempotency_key)
            return f"unexpected {type(exc).__name__}: {exc}"
        log.info(
            "delivered %s (%s) to %s: %s",
            row.idempotency_key,
            row.event,
            row.destination.name,
            said,
        )
        return None

    def _record(self, tx: Transaction, row: Pending, error: str | None, stats: SendStats) -> None:
        if error is None:
            tx.mark_delivered(row.id, datetime.now(UTC))
            stats.delivered += 1
            return
        delay = backoff_delay(row.attempts + 1, self.backoff, self.max_backoff)
        tx.mark_failed(row.id, error, timedelta(seconds=delay))
        stats.failed += 1
        stats.errors.append(f"{row.destination.name}: {error}")
        log.warning(
            "%s to %s failed (try %d, again in %.1f s): %s",
            row.event,
            row.destination.name,
            row.attempts + 1,
            delay,
            error,
        )

    # -- following --------------------------------------------------------------------------
    def run(self, poll: float, on_pass=None) -> SendStats:
        """Pass after pass until :meth:`stop`; a database outage is waited out."""
        total = SendStats()
        self._take_sqlite_lock()
        try:
            while not self.stopping.is_set():
                try:
                    stats = self.run_once()
                    self._purge_now_and_then()
                except StoreUnavailable as exc:
                    log.warning("%s; retrying", exc)
                    stats = SendStats()
                total.delivered += stats.delivered
                total.failed += stats.failed
                if on_pass is not None and (stats.delivered or stats.failed):
                    on_pass(stats)
                if not stats.delivered:  # nothing moved: wait; otherwise go on at once
                    self.stopping.wait(poll)
        finally:
            self._release()
        return total

    def stop(self) -> None:
        self.stopping.set()

    def purge(self) -> int:
        """Delete delivered rows older than ``keep``; undelivered rows are never deleted."""
        if self.keep is None:
            return 0
        with self.store.transaction() as tx:
            return tx.purge_delivered(datetime.now(UTC) - self.keep)

    def _purge_now_and_then(self) -> None:
        if time.monotonic() - self._purged_at >= PURGE_EVERY_S:
            self._purged_at = time.monotonic()
            if n := self.purge():
                log.info("deleted %d delivered notification(s) older than %s", n, self.keep)

    def _take_sqlite_lock(self) -> None:
        """One sender per SQLite file: an advisory lock the OS drops when the process dies."""
        db = self.store.engine.url.database if self.store.dialect == "sqlite" else None
        if not db or db == ":memory:":
            return
        path = Path(f"{db}.notify.lock")
        handle = path.open("a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            raise Refused(
                f"another `plantcast notify run` is sending for {db} (SQLite: one sender at a "
                "time; on PostgreSQL several may run)"
            ) from None
        self._lock_file = handle

    def _release(self) -> None:
        if self._lock_file is not None:
            self._lock_file.close()
            self._lock_file = None
