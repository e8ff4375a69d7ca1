"""People: ``users`` (add, list, set-role, disable) and ``audit``, the trail of their changes.

The command line acts as ``$PLANTCAST_USER`` (else the login name) in the audit log; whoever can
reach the database with it is trusted as an admin (roles bind the API and the page).
"""

from __future__ import annotations

import click

from plantcast.cli.common import database_option, out
from plantcast.cli.group import cli
from plantcast.cli.output import echo_json, emit, listing_format

ROLE_CHOICES = ("viewer", "operator", "admin")
USER_FIELDS = ("name", "role", "created_at", "disabled_at")
AUDIT_FIELDS = ("id", "at", "actor", "action", "target", "before", "after")


def user_record(user) -> dict:
    return {
        "name": user.name,
        "role": user.role,
        "created_at": user.created_at.isoformat(),
        "disabled_at": None if user.disabled_at is None else user.disabled_at.isoformat(),
    }


@cli.group("users")
def users() -> None:
    """Add, list, change the role of and disable users (viewer, operator, admin)."""


@users.command("add")
@database_option
@click.argument("name")
@click.option("--role", type=click.Choice(ROLE_CHOICES), default="viewer", show_default=True)
def users_add(database_url, name, role) -> None:
    """Add a user NAME (the login name the page's single sign-on gives) with a role."""
    from plantcast.services import users as service
    from plantcast.services.audit import cli_actor
    from plantcast.services.context import open_store

    with open_store(database_url, init=True) as store:
        user = service.add_user(store, name, role, actor=cli_actor())
    out.print(f"user {user.name} added ({user.role})")


@users.command("list")
@database_option
@listing_format
def users_list(database_url, fmt) -> None:
    """List users: name, role, created, disabled."""
    from plantcast.services import users as service
    from plantcast.services.context import open_store

    with open_store(database_url, init=True) as store:
        rows = [user_record(u) for u in service.list_users(store)]
    emit(rows, fmt, list(USER_FIELDS), empty="no users (plantcast users add NAME --role ROLE)")


@users.command("set-role")
@database_option
@click.argument("name")
@click.argument("role", type=click.Choice(ROLE_CHOICES))
def users_set_role(database_url, name, role) -> None:
    """Give user NAME the role ROLE (their API keys carry it from the next request)."""
    from plantcast.services import users as service
    from plantcast.services.audit import cli_actor
    from plantcast.services.context import open_store

    with open_store(database_url, init=True) as store:
        user = service.set_role(store, name, role, actor=cli_actor())
    out.print(f"user {user.name} is now {user.role}")


@users.command("disable")
@database_option
@click.argument("name")
def users_disable(database_url, name) -> None:
    """Disable user NAME: no login, and their API keys answer 401 (kept for the audit log)."""
    from plantcast.services import users as service
    from plantcast.services.audit import cli_actor
    from plantcast.services.context import open_store

    with open_store(database_url, init=True) as store:
        user = service.disable(store, name, actor=cli_actor())
    out.print(f"user {user.name} disabled")


def audit_record(entry) -> dict:
    return {
        "id": entry.id,
        "at": entry.at.isoformat(),
        "actor": entry.actor,
        "action": entry.action,
        "target": entry.target,
        "before": entry.before,
        "after": entry.after,
    }


@cli.command("audit")
@database_option
@click.option("--since", default=None, help="Only entries at or after (ISO 8601).")
@click.option("--actor", default=None, help="Only this person (or key:NAME).")
@click.option("--action", default=None, help="Only this action; `alert.` matches a family.")
@click.option("--target", default=None, help="Only this target (e.g. alert:12, user:ann).")
@click.option("--limit", type=click.IntRange(min=1), default=200, show_default=True)
@listing_format
def audit(database_url, since, actor, action, target, limit, fmt) -> None:
    """The audit log, newest first: who changed what, when, before and after."""
    import json

    from plantcast.core.errors import InputError
    from plantcast.core.timeutil import to_utc
    from plantcast.services import audit as service
    from plantcast.services.context import open_store

    try:
        since_ts = None if since is None else to_utc(since)
    except ValueError:
        raise InputError(
            f"not a time: {since!r} (ISO 8601, e.g. 2026-01-31T08:00)", field="since"
        ) from None
    with open_store(database_url, init=True) as store:
        found = service.entries(
            store, since=since_ts, actor=actor, action=action, target=target, limit=limit
        )
    rows = [audit_record(e) for e in found]
    if fmt == "json":
        echo_json(rows)
        return
    for row in rows:  # one cell each in a table or CSV
        for key in ("before", "after"):
            row[key] = None if row[key] is None else json.dumps(row[key], sort_keys=True)
    emit(rows, fmt, list(AUDIT_FIELDS), empty="no audit entries")
