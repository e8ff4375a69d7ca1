"""``plantcast asset``: groups of sensors watched together (create, list, show, change, remove)."""

from __future__ import annotations

from contextlib import contextmanager

import click

from plantcast.cli.common import DURATION, TIMESTAMP, database_option, out
from plantcast.cli.group import cli
from plantcast.cli.output import emit, listing_format

ASSET_FIELDS = ("name", "sensors", "step", "step_set", "train_from", "train_to", "created_at")
TABLE_FIELDS = tuple(f for f in ASSET_FIELDS if f != "step_set")  # the table says it in step


@cli.group("asset")
def asset() -> None:
    """Assets: sensors watched together (a pump, a line), aligned on one time grid.

    A sensor may belong to several assets. The grid's step is the asset's own (--step) or,
    unset, its slowest sensor's interval.
    """


@contextmanager
def _assets_store(database_url):
    """The store, with the asset tables there (an older database is told to run migrate)."""
    from plantcast.services.assets import require_tables
    from plantcast.services.context import open_store

    with open_store(database_url) as store:
        require_tables(store)
        yield store


def _step_label(a) -> str:
    from plantcast.core.timeutil import format_duration

    step = format_duration(a.grid_step)
    return step if a.step is not None else f"{step} (slowest sensor)"


def _when(ts) -> str | None:
    return None if ts is None else f"{ts:%Y-%m-%d %H:%M:%S}"


def _describe(a) -> None:
    from plantcast.core.timeutil import format_duration

    out.print(f"asset {a.name}: {len(a.sensors)} sensor(s), step {_step_label(a)}", markup=False)
    if a.description:
        out.print(f"  {a.description}", markup=False)
    for s in a.sensors:
        unit = f" [{s.unit}]" if s.unit else ""
        interval = format_duration(s.interval)
        out.print(f"  {s.name}{unit}: {s.source.value}, every {interval}", markup=False)
    if a.train_from is None:
        out.print("training period: none pinned", markup=False)
    else:
        period = f"{_when(a.train_from)} to {_when(a.train_to)} UTC"
        out.print(f"training period: {period}", markup=False)
    out.print(f"created {_when(a.created_at)} UTC", markup=False)


@asset.command("create")
@database_option
@click.argument("name")
@click.option("--sensor", "sensors", multiple=True, required=True, help="A member (repeatable).")
@click.option("--step", type=DURATION, default=None, help="Grid step (default: slowest sensor's).")
@click.option("--description", default="", help="What the asset is.")
def asset_create(database_url, name, sensors, step, description) -> None:
    """Create an asset of existing sensors."""
    from plantcast.services.assets import create_asset
    from plantcast.services.audit import cli_actor

    with _assets_store(database_url) as store:
        made = create_asset(store, name, sensors, step, description=description, actor=cli_actor())
    _describe(made)


@asset.command("list")
@database_option
@listing_format
def asset_list(database_url, fmt) -> None:
    """List the assets: sensors, grid step, training period."""
    from plantcast.core.timeutil import format_duration
    from plantcast.services.assets import list_assets

    with _assets_store(database_url) as store:
        found = list_assets(store)
    rows = []
    for a in found:
        row = {
            "name": a.name,
            "sensors": list(a.sensor_names),
            "step": format_duration(a.grid_step),
            "step_set": a.step is not None,  # false: the slowest sensor's interval
            "train_from": a.train_from,
            "train_to": a.train_to,
            "created_at": a.created_at,
        }
        if fmt == "table":
            row["sensors"] = ", ".join(a.sensor_names)
            row["step"] = _step_label(a)
            for key in ("train_from", "train_to", "created_at"):
                row[key] = _when(row[key])
        rows.append(row)
    columns = TABLE_FIELDS if fmt == "table" else ASSET_FIELDS
    emit(rows, fmt, columns, empty="no assets (plantcast asset create NAME --sensor S …)")


@asset.command("show")
@database_option
@click.argument("name")
def asset_show(database_url, name) -> None:
    """Show an asset: its sensors, grid step and training period."""
    from plantcast.services.assets import get_asset

    with _assets_store(database_url) as store:
        _describe(get_asset(store, name))


@asset.command("add-sensor")
@database_option
@click.argument("name")
@click.option("--sensor", "sensors", multiple=True, required=True, help="Sensor (repeatable).")
def asset_add_sensor(database_url, name, sensors) -> None:
    """Add sensors to an asset."""
    from plantcast.services.assets import add_sensors
    from plantcast.services.audit import cli_actor

    with _assets_store(database_url) as store:
        _describe(add_sensors(store, name, sensors, actor=cli_actor()))


@asset.command("remove-sensor")
@database_option
@click.argument("name")
@click.option("--sensor", "sensors", multiple=True, required=True, help="Sensor (repeatable).")
def asset_remove_sensor(database_url, name, sensors) -> None:
    """Take sensors out of an asset (they and their readings stay)."""
    from plantcast.services.assets import remove_sensors
    from plantcast.services.audit import cli_actor

    with _assets_store(database_url) as store:
        _describe(remove_sensors(store, name, sensors, actor=cli_actor()))


@asset.command("train")
@database_option
@click.argument("name")
@click.option("--from", "start", type=TIMESTAMP, default=None, help="Start (RFC 3339).")
@click.option("--to", "end", type=TIMESTAMP, default=None, help="End, exclusive.")
@click.option("--clear", is_flag=True, help="Unpin the training period.")
def asset_train(database_url, name, start, end, clear) -> None:
    """Pin a known-good training period for the asset's detectors (--from and --to)."""
    from plantcast.services.assets import set_training
    from plantcast.services.audit import cli_actor

    if clear and (start is not None or end is not None):
        raise click.UsageError("--clear takes neither --from nor --to")
    if not clear and (start is None or end is None):
        raise click.UsageError("give --from and --to (or --clear)")
    with _assets_store(database_url) as store:
        _describe(set_training(store, name, start, end, actor=cli_actor()))


@asset.command("remove")
@database_option
@click.argument("name")
def asset_remove(database_url, name) -> None:
    """Remove an asset (its sensors and their readings stay)."""
    from plantcast.services.assets import remove_asset
    from plantcast.services.audit import cli_actor

    with _assets_store(database_url) as store:
        gone = remove_asset(store, name, actor=cli_actor())
    out.print(f"removed asset {gone.name} ({', '.join(gone.sensor_names)})", markup=False)
