"""The CLI surface: every command has help and appears in the README; outputs and exit codes."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from plantcast.cli.main import cli

README = Path(__file__).resolve().parents[1] / "README.md"


def _commands() -> list[str]:
    return sorted(cli.commands)


@pytest.mark.parametrize("name", _commands())
def test_every_command_has_help_and_is_in_the_readme(name):
    result = CliRunner().invoke(cli, [name, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output
    assert cli.commands[name].help, f"{name} has no help text"
    assert f"plantcast {name}" in README.read_text(), f"{name} is missing from the README"


def test_backfill_twice_adds_nothing(sqlite_url):
    runner = CliRunner()
    args = ["backfill", "--database-url", sqlite_url, "--days", "2", "--end", "2026-01-03"]
    first = runner.invoke(cli, args)
    second = runner.invoke(cli, args)
    assert first.exit_code == 0 and second.exit_code == 0, first.output + second.output
    assert "reservoir_pressure: 97 readings" in first.output
    assert "rows/s" in first.output
    from plantcast.store import Store

    store = Store.open(sqlite_url)
    assert store.count_readings(store.get_sensor("reservoir_pressure").id) == 97


def test_errors_are_one_line_not_a_trace(sqlite_url):
    runner = CliRunner()
    result = runner.invoke(cli, ["stream", "--database-url", "mysql://x@y/z", "--count", "1"])
    assert result.exit_code == 1
    assert result.output.strip().startswith("Error: ")
    assert "Traceback" not in result.output
    bad = runner.invoke(cli, ["backfill", "--database-url", sqlite_url, "--interval", "soon"])
    assert bad.exit_code == 2 and "cannot read 'soon' as a duration" in bad.output
