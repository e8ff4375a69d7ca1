"""backup and restore, a round trip on SQLite and PostgreSQL that loses nothing: every table's
rows and every reading as it was when the backup was made; a database holding readings is
replaced only with --force; a backup of the other engine is refused."""

from __future__ import annotations

import pandas as pd
from click.testing import CliRunner

from plantcast.cli.main import cli
from plantcast.services.context import open_store
from plantcast.store.backup import table_counts

SENSORS = ("pump_pressure", "tank_level")


def _run(*args: str):
    result = CliRunner().invoke(cli, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def _snapshot(url: str) -> tuple[dict[str, int], dict[str, pd.Series]]:
    with open_store(url) as store:
        series = {
            s.name: store.read_series(s.id, "2000-01-01", "2100-01-01")
            for s in store.list_sensors()
        }
        return table_counts(store), series


def test_backup_and_restore_lose_nothing(db_url, tmp_path):
    for name in SENSORS:
        _run(
            "backfill",
            "--database-url",
            db_url,
            "--sensor",
            name,
            "--days",
            "40",
            "--interval",
            "10min",
        )
    _run(
        "inject",
        "--database-url",
        db_url,
        "--sensor",
        SENSORS[0],
        "--kind",
        "spike",
        "--magnitude",
        "5",
    )
    _run(
        "asset",
        "create",
        "pump",
        "--database-url",
        db_url,
        "--sensor",
        SENSORS[0],
        "--sensor",
        SENSORS[1],
    )
    _run("apikey", "create", "--database-url", db_url, "--name", "ops")
    before, series = _snapshot(db_url)
    assert before["readings"] == sum(len(s) for s in series.values()) > 10_000
    assert before["events"] == 1 and before["assets"] == 1 and before["api_keys"] == 1

    file = tmp_path / "plant.backup"
    said = _run("backup", "--database-url", db_url, "--to", str(file))
    assert f"backed up {before['readings']:,} readings of 2 sensor(s)" in said

    # later changes: more readings, a sensor gone from the asset, the key revoked
    _run("backfill", "--database-url", db_url, "--sensor", "late_sensor", "--days", "1")
    _run("asset", "remove-sensor", "pump", "--database-url", db_url, "--sensor", SENSORS[1])
    refused = CliRunner().invoke(cli, ["restore", "--database-url", db_url, "--from", str(file)])
    assert refused.exit_code == 1
    assert "already holds" in refused.output and "restore --force" in refused.output
    assert _snapshot(db_url)[0]["sensors"] == 3  # nothing was touched

    said = _run("restore", "--database-url", db_url, "--from", str(file), "--force")
    assert f"restored {before['readings']:,} readings of 2 sensor(s)" in said
    after, restored = _snapshot(db_url)
    assert after == before
    assert restored.keys() == series.keys()
    for name, s in series.items():
        pd.testing.assert_series_equal(restored[name], s)
    # the restored database works on: writes go on where the backup left off
    _run("backfill", "--database-url", db_url, "--sensor", "after_restore", "--days", "1")


def test_restore_into_a_new_sqlite_file_and_refusals(sqlite_url, pg_url, tmp_path):
    _run("backfill", "--database-url", sqlite_url, "--days", "5")
    file = tmp_path / "lite.backup"
    _run("backup", "--database-url", sqlite_url, "--to", str(file))
    fresh = f"sqlite:///{tmp_path / 'fresh.db'}"
    _run("restore", "--database-url", fresh, "--from", str(file))
    assert _snapshot(fresh)[0] == _snapshot(sqlite_url)[0]

    other = CliRunner().invoke(cli, ["restore", "--database-url", pg_url, "--from", str(file)])
    assert other.exit_code == 1
    assert "is a sqlite backup; this database is postgresql" in other.output
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"not a backup at all")
    bad = CliRunner().invoke(cli, ["restore", "--database-url", fresh, "--from", str(junk)])
    assert bad.exit_code == 1 and "is not a plantcast backup" in bad.output
