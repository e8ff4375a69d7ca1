"""Running a plant: ``config check|example`` (and, as they land, ``serve``, ``status``,
``jobs``, ``backup``, ``restore``)."""

from __future__ import annotations

from pathlib import Path

import click

from plantcast.cli.common import out
from plantcast.cli.group import cli


@cli.group()
def config() -> None:
    """The plant's config file (TOML) that `plantcast serve --config` runs."""


@config.command("check")
@click.argument("file", type=click.Path(path_type=Path))
def config_check(file: Path) -> None:
    """Check FILE (with the environment's overrides) and list what serve would run.

    Every problem is listed with its key and line; exit 1 if there is one."""
    from plantcast.serve.components import components
    from plantcast.serve.config import load_config

    plant = load_config(file)
    out.print(f"{file}: ok", markup=False)
    out.print(f"database: {_safe_url(plant.database.url)}", markup=False)
    for component in components(plant, str(file)):
        out.print(f"  {component.name}: plantcast {' '.join(component.args)}", markup=False)


@config.command("example")
def config_example() -> None:
    """Print a commented example config (`plantcast config example > plant.toml`)."""
    from plantcast.serve.example import EXAMPLE

    click.echo(EXAMPLE, nl=False)


def _safe_url(url: str) -> str:
    """The URL with any password hidden."""
    import re

    return re.sub(r"(://[^/@:]*:)[^/@]+@", r"\1***@", url)
