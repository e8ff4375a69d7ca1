"""``plantcast notify``: alert notification destinations and the sender that delivers them."""

from __future__ import annotations

import signal
import sys

import click

from plantcast.cli.common import DURATION, console, database_option, out
from plantcast.cli.group import cli
from plantcast.cli.output import emit, listing_format


@cli.group(invoke_without_command=False)
def notify() -> None:
    """Alert notifications: webhooks (signed) and e-mail, sent on open, acknowledge, resolve.

    `notify add` a destination, `notify run` the sender (it retries until each receiver accepts).
    """


@notify.command("add")
@database_option
@click.argument("name")
@click.option("--webhook", "url", default=None, help="POST each notification to this URL.")
@click.option("--email", default=None, help="Send to these addresses (comma-separated).")
@click.option(
    "--secret-env",
    default=None,
    help="Webhook: read the signing secret from this environment variable at send time "
    "(default: generate one, store it and print it once).",
)
def notify_add(database_url, name, url, email, secret_env) -> None:
    """Add a destination: a webhook URL or e-mail addresses."""
    from plantcast.notify.destinations import add_destination
    from plantcast.services.audit import cli_actor
    from plantcast.services.context import open_store

    with open_store(database_url, init=True) as store:
        dest, secret = add_destination(
            store, name, webhook=url, email=email, secret_env=secret_env, actor=cli_actor()
        )
    out.print(f"destination {dest.id} {dest.name}: {dest.kind} {dest.target}")
    if secret is not None:
        out.print(f"signing secret (shown once; verify X-Plantcast-Signature with it): {secret}")
    elif dest.secret_env:
        out.print(f"signing secret: read from ${dest.secret_env} when sending")


@notify.command("list")
@database_option
@listing_format
def notify_list(database_url, fmt) -> None:
    """List destinations with delivered and pending notifications and the last error."""
    from rich.table import Table

    from plantcast.notify.destinations import list_destinations
    from plantcast.services.context import open_store

    with open_store(database_url, init=True) as store:
        found = list_destinations(store)
    if fmt != "table":
        rows = [
            {
                "id": d.id,
                "name": d.name,
                "kind": d.kind,
                "target": d.target,
                "secret": _secret_label(d),
                **counts,
            }
            for d, counts in found
        ]
        columns = ("id", "name", "kind", "target", "secret", "delivered", "pending", "last_error")
        emit(rows, fmt, columns, empty="")
        return
    if not found:
        out.print("no destinations (add one: plantcast notify add NAME --webhook URL)")
        return
    table = Table("id", "name", "kind", "target", "secret", "delivered", "pending", "last error")
    for d, c in found:
        table.add_row(
            str(d.id),
            d.name,
            d.kind,
            d.target,
            _secret_label(d),
            f"{c['delivered']:,}",
            f"{c['pending']:,}",
            c["last_error"] or "",
        )
    out.print(table)


def _secret_label(dest) -> str:
    if dest.kind != "webhook":
        return "-"
    return f"${dest.secret_env}" if dest.secret_env else "stored"


@notify.command("remove")
@database_option
@click.argument("name")
def notify_remove(database_url, name) -> None:
    """Remove a destination and its queued notifications."""
    from plantcast.notify.destinations import remove_destination
    from plantcast.services.audit import cli_actor
    from plantcast.services.context import open_store

    with open_store(database_url, init=True) as store:
        dropped = remove_destination(store, name, actor=cli_actor())
    note = f" ({dropped:,} undelivered notification(s) dropped)" if dropped else ""
    out.print(f"removed {name}{note}")


@notify.command("test")
@database_option
@click.argument("name")
def notify_test(database_url, name) -> None:
    """Send a test event to one destination now and say what its receiver answered."""
    from plantcast.core.config import load_settings
    from plantcast.core.errors import PlantcastError
    from plantcast.notify.destinations import send_test
    from plantcast.notify.webhook import DeliveryError
    from plantcast.services.context import open_store

    settings = load_settings(database_url=database_url)
    with open_store(database_url, init=True) as store:
        try:
            said = send_test(store, name, settings)
        except DeliveryError as exc:
            raise PlantcastError(f"test to {name} failed: {exc}") from None
    out.print(f"test delivered to {name}: {said}")


@notify.command("run")
@database_option
@click.option(
    "--once", is_flag=True, help="Deliver what is due now, then exit (1 if a delivery failed)."
)
@click.option("--poll", type=DURATION, default="1s", show_default=True, help="Idle wait.")
@click.option("--backoff", type=DURATION, default=None, help="First retry delay (default 5s).")
@click.option(
    "--max-backoff", type=DURATION, default=None, help="Longest retry delay (default 10min)."
)
@click.option(
    "--keep",
    type=DURATION,
    default="30d",
    show_default=True,
    help="Delete delivered notifications older than this (undelivered ones are never deleted).",
)
def notify_run(database_url, once, poll, backoff, max_backoff, keep) -> None:
    """Deliver queued notifications, retrying with exponential backoff until accepted.

    Runs until Ctrl-C / SIGTERM (the delivery in flight finishes first). On SQLite one sender
    runs at a time; on PostgreSQL several may share the work (FOR UPDATE SKIP LOCKED).
    """
    from plantcast.core.config import load_settings
    from plantcast.core.timeutil import parse_duration
    from plantcast.notify.sender import Sender
    from plantcast.services.context import open_store

    settings = load_settings(database_url=database_url)
    backoff = backoff if backoff is not None else parse_duration(settings.notify_backoff)
    cap = max_backoff if max_backoff is not None else parse_duration(settings.notify_max_backoff)
    with open_store(database_url, init=True) as store:
        sender = Sender(
            store,
            settings,
            backoff=backoff.total_seconds(),
            max_backoff=cap.total_seconds(),
            keep=keep.to_pytimedelta(),
        )
        if once:
            stats = sender.run_once()
        else:

            def _stop(signum, _frame):
                console.print(f"[yellow]{signal.Signals(signum).name}: stopping the sender[/]")
                sender.stop()

            before = {s: signal.signal(s, _stop) for s in (signal.SIGINT, signal.SIGTERM)}
            console.print(f"sending notifications from {store.url}; Ctrl-C stops")
            try:
                stats = sender.run(
                    poll.total_seconds(),
                    on_pass=lambda s: console.print(f"delivered {s.delivered}, failed {s.failed}"),
                )
            finally:
                for signum, handler in before.items():
                    signal.signal(signum, handler)
    out.print(f"delivered {stats.delivered:,}, {stats.failed:,} failed attempt(s)")
    if once and stats.failed:  # a script or cron job must see that a receiver refused
        for error in stats.errors:
            console.print(f"[red]not delivered:[/] {error}")
        console.print("the failed notifications stay queued and are retried (backoff)")
        sys.exit(1)
