"""The ``plantcast`` click group: a leaf every command module attaches its commands to."""

from __future__ import annotations

import click

from plantcast import __version__
from plantcast.cli.common import PlantcastGroup, setup_logging


@click.group(cls=PlantcastGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="plantcast")
@click.option("-v", "--verbose", is_flag=True, help="Log progress details to stderr.")
def cli(verbose: bool) -> None:
    """plantcast: store, simulate, stream, forecast and watch industrial sensor readings."""
    setup_logging(verbose)
