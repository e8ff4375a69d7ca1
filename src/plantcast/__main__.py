"""Allow ``python -m plantcast``."""

from plantcast.cli.main import cli

if __name__ == "__main__":
    cli()
