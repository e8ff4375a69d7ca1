"""The ``seasons`` command: a sensor's seasonal periods and their strengths."""

from __future__ import annotations

import json

import click

from plantcast.cli.common import database_option, out
from plantcast.cli.group import cli
from plantcast.cli.output import listing_format, write_csv
from plantcast.core.types import Source


@cli.command()
@database_option
@click.option("--sensor", required=True, help="Sensor name.")
@click.option("--refresh", is_flag=True, help="Detect the seasons again from the readings.")
@listing_format
def seasons(database_url, sensor, refresh, fmt) -> None:
    """Show a sensor's seasonal periods (detected from its data) and their strengths."""
    from rich.table import Table

    from plantcast.services.context import open_store
    from plantcast.services.seasons import season_report

    with open_store(database_url) as store:
        report = season_report(store, sensor, refresh=refresh)
    if fmt == "json":
        click.echo(json.dumps(report.to_dict(), indent=2))
        return
    if fmt == "csv":  # one season a row
        rows = [{"period": s.label, "strength": s.strength} for s in report.seasons or ()]
        write_csv(rows, ("period", "strength"))
        return
    if report.seasons is None:
        out.print(f"{report.sensor}: seasons not detected yet (run with --refresh)")
    elif not report.seasons:
        out.print(
            f"{report.sensor}: no seasonal cycle found (data up to {report.at:%Y-%m-%d %H:%M})"
        )
    else:
        table = Table("period", "strength")
        for s in report.seasons:
            table.add_row(s.label, f"{s.strength:.3f}")
        out.print(table)
        out.print(f"detected on data up to {report.at:%Y-%m-%d %H:%M} UTC")
    used = ", ".join(report.periods) or "none, models fit without a season"
    out.print(f"periods models use: {used} ({_origin(report)})")


def _origin(report) -> str:
    if report.source is Source.SIMULATED:
        return "configured with the simulated signal"
    if report.seasons is None:
        return "not analysed yet"
    return "detected" if report.seasons else "no season found"
