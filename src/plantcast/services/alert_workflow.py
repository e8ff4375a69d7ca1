"""The alert workflow people drive: acknowledge, resolve, assign, comment and label.

Each change is one transaction that writes the change, queues its notification in the outbox
(``acknowledged``, ``resolved``, ``assigned``, ``commented``, ``labelled``) and appends exactly
one audit entry per alert, so the three never disagree. Acknowledging or resolving several
alerts is one transaction: all change, or (an unknown id) none. Roles are checked by the
surfaces (plantcast.services.users); the actor given here is who the audit log names.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from plantcast.core.errors import InputError
from plantcast.core.types import Alert, AlertComment, AlertLabel, AlertStatus
from plantcast.services.alert_records import alert_record
from plantcast.services.audit import jsonable
from plantcast.store import Store, Transaction
from plantcast.store.audit import AuditEntry

MAX_COMMENT = 4000
LABELS = tuple(x.value for x in AlertLabel)
# what a bulk request may ask, and the audit action (and role action) of each
ACTIONS = ("acknowledge", "resolve", "assign", "unassign", "label", "comment")


@dataclass(frozen=True)
class AlertDetail:
    """One alert with its sensor's name, its comment thread and its audit history."""

    alert: Alert
    sensor: str | None
    asset: str | None  # an asset's alert: its asset's name
    comments: list[AlertComment]
    history: list[AuditEntry]  # oldest first

    def record(self) -> dict:
        """The alert as `plantcast alerts` and the API give it (services.alert_records)."""
        a = self.alert
        names = {a.sensor_id: self.sensor} if a.sensor_id is not None and self.sensor else {}
        assets = {a.asset_id: self.asset} if a.asset_id is not None and self.asset else {}
        return alert_record(self.alert, names, assets)


def _target(alert_id: int) -> str:
    return f"alert:{alert_id}"


def _ids(alert_ids: int | Iterable[int]) -> list[int]:
    ids = [alert_ids] if isinstance(alert_ids, int) else list(dict.fromkeys(alert_ids))
    if not ids:
        raise InputError("no alert id given", field="ids")
    return [int(i) for i in ids]


def detail(store: Store, alert_id: int) -> AlertDetail:
    with store.transaction(readonly=True) as tx:
        alert = tx.get_alert(alert_id)
        sensor = None if alert.sensor_id is None else tx.sensor_names().get(alert.sensor_id)
        asset = None if alert.asset_id is None else tx.asset_names().get(alert.asset_id)
        comments = tx.alert_comments(alert_id)
        history = tx.audit_entries(target=_target(alert_id), limit=1000)
    return AlertDetail(alert, sensor, asset, comments, list(reversed(history)))


def alerts_by_id(store: Store, alert_ids: Iterable[int]) -> list[Alert]:
    """These alerts, in the order given (each once); an unknown id is NotFound."""
    with store.transaction(readonly=True) as tx:
        return [tx.get_alert(i) for i in _ids(alert_ids)]


def _status(store: Store, alert_ids, status: AlertStatus, verb: str, actor: str) -> list[Alert]:
    done = []
    with store.transaction() as tx:
        for alert_id in _ids(alert_ids):
            before = tx.get_alert(alert_id)
            after = tx.set_alert_status(alert_id, status, by=actor)
            _audit(tx, actor, verb, alert_id, {"status": str(before.status)}, {"status": status})
            done.append(after)
    return done


def _audit(tx: Transaction, actor: str, verb: str, alert_id: int, before, after) -> None:
    tx.audit(actor, f"alert.{verb}", _target(alert_id), jsonable(before), jsonable(after))


def acknowledge(store: Store, alert_ids: int | Iterable[int], *, actor: str) -> list[Alert]:
    """Acknowledge one or several alerts (one transaction)."""
    return _status(store, alert_ids, AlertStatus.ACKNOWLEDGED, "acknowledge", actor)


def resolve(store: Store, alert_ids: int | Iterable[int], *, actor: str) -> list[Alert]:
    """Resolve one or several alerts (one transaction)."""
    return _status(store, alert_ids, AlertStatus.RESOLVED, "resolve", actor)


def _user(tx: Transaction, name: str) -> str:
    user = tx.find_user(name.strip())
    if user is None:
        raise InputError(
            f"no user named {name!r} to assign (plantcast users add {name.strip() or 'NAME'})",
            field="assignee",
        )
    if not user.active:
        raise InputError(f"user {user.name!r} is disabled", field="assignee")
    return user.name


def assign(
    store: Store, alert_ids: int | Iterable[int], user: str | None, *, actor: str
) -> list[Alert]:
    """Put a user on the alerts (``None``: take whoever was off them)."""
    done = []
    with store.transaction() as tx:
        name = None if user is None else _user(tx, user)
        verb = "assign" if name is not None else "unassign"
        for alert_id in _ids(alert_ids):
            before = tx.get_alert(alert_id)
            after = tx.set_alert_assignee(alert_id, name, by=actor)
            _audit(tx, actor, verb, alert_id, {"assignee": before.assignee}, {"assignee": name})
            done.append(after)
    return done


def unassign(store: Store, alert_ids: int | Iterable[int], *, actor: str) -> list[Alert]:
    return assign(store, alert_ids, None, actor=actor)


def label(
    store: Store, alert_ids: int | Iterable[int], value: AlertLabel | str, *, actor: str
) -> list[Alert]:
    """Say what the alerts were: ``real``, ``false_alarm`` (its detectors' thresholds for that
    sensor rise: plantcast.services.feedback) or ``maintenance``."""
    try:
        chosen = AlertLabel(str(value).strip().lower())
    except ValueError:
        raise InputError(
            f"unknown label {value!r}; choose one of {', '.join(LABELS)}", field="label"
        ) from None
    done = []
    with store.transaction() as tx:
        for alert_id in _ids(alert_ids):
            before = tx.get_alert(alert_id)
            after = tx.set_alert_label(alert_id, chosen, by=actor)
            was = None if before.label is None else str(before.label)
            _audit(tx, actor, "label", alert_id, {"label": was}, {"label": str(chosen)})
            done.append(after)
    return done


def comment(
    store: Store, alert_ids: int | Iterable[int], text: str, *, actor: str
) -> list[AlertComment]:
    """Add a comment to each alert's thread (written by ``actor``)."""
    body = text.strip()
    if not body:
        raise InputError("a comment needs some text", field="text")
    if len(body) > MAX_COMMENT or "\x00" in body:
        raise InputError(
            f"a comment is at most {MAX_COMMENT} characters, without NUL", field="text"
        )
    done = []
    with store.transaction() as tx:
        for alert_id in _ids(alert_ids):
            made = tx.add_alert_comment(alert_id, actor, body)
            _audit(tx, actor, "comment", alert_id, None, {"comment": body, "comment_id": made.id})
            done.append(made)
    return done


def apply(
    store: Store, action: str, alert_ids: Iterable[int], *, actor: str, value: str | None = None
) -> int:
    """One of :data:`ACTIONS` on several alerts (what the inbox's bulk bar and the bulk API
    route ask); ``value`` is the user, label or comment text. Returns how many alerts."""
    ids = _ids(alert_ids)
    needs_value = {"assign": "assignee", "label": "label", "comment": "text"}
    if action in needs_value and not (value or "").strip():
        raise InputError(f"{action} needs a value ({needs_value[action]})", field="value")
    if action == "acknowledge":
        acknowledge(store, ids, actor=actor)
    elif action == "resolve":
        resolve(store, ids, actor=actor)
    elif action == "assign":
        assign(store, ids, value, actor=actor)
    elif action == "unassign":
        unassign(store, ids, actor=actor)
    elif action == "label":
        label(store, ids, str(value), actor=actor)
    elif action == "comment":
        comment(store, ids, str(value), actor=actor)
    else:
        choices = ", ".join(ACTIONS)
        raise InputError(f"unknown action {action!r}; choose one of {choices}", field="action")
    return len(ids)
