"""The storage upkeep commands: ``migrate`` (monthly partitions) and ``retention``."""

from __future__ import annotations

import click

from plantcast.cli.common import DURATION, database_option, out, progress_bar
from plantcast.cli.group import cli


@cli.command()
@database_option
def migrate(database_url) -> None:
    """Bring an existing database up to this version: add the tables and columns added since
    (e.g. assets), and partition a PostgreSQL readings table by month (safe to run again)."""
    from plantcast.services.context import open_store
    from plantcast.store.maintenance import migrate as run_migrate

    with open_store(database_url) as store:
        for done in store.init():
            out.print(done)
        with progress_bar("copying months") as bar:
            result = run_migrate(store, on_progress=bar)
    if result.created:
        out.print(f"created table(s): {', '.join(result.created)}")
    if result.status == "migrated":
        out.print(
            f"migrated {result.rows:,} readings into {result.partitions} monthly partitions "
            "(row counts verified month by month)"
        )
    else:
        out.print(f"nothing to do: {result.status}")


@cli.command()
@database_option
@click.option(
    "--older-than", type=DURATION, required=True, help="Remove readings older than this (400d)."
)
@click.option("--dry-run", is_flag=True, help="Only say what would be removed.")
def retention(database_url, older_than, dry_run) -> None:
    """Remove readings older than a duration: whole monthly partitions on PostgreSQL."""
    from plantcast.core.timeutil import format_duration, utcnow
    from plantcast.services.context import open_store
    from plantcast.store.maintenance import retention as run_retention

    if older_than.total_seconds() <= 0:
        raise click.BadParameter("must be positive", param_hint="--older-than")
    with open_store(database_url) as store:
        result = run_retention(store, utcnow() - older_than, dry_run=dry_run)
    verb = "would remove" if dry_run else "removed"
    dropped = ""
    if result.partitions:
        whole = "would be dropped whole" if dry_run else "dropped whole"
        dropped = f"; {len(result.partitions)} partition(s) {whole}: {', '.join(result.partitions)}"
    out.print(
        f"{verb} {result.rows:,} readings older than {format_duration(older_than)} "
        f"(before {result.cutoff:%Y-%m-%d %H:%M} UTC){dropped}"
    )
