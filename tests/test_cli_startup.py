"""The CLI starts instantly: importing it, `--help` and `inject --help` import click and no
analytics; `alerts` and `inject` import the store and neither models nor pydantic (the
database URL is read without it). Behaviour (what is imported), not timing: the figures are
benchmarks/cli_startup.py's."""

from __future__ import annotations

import json
import subprocess
import sys

import pandas as pd
import pytest

from plantcast.core.types import Source
from plantcast.store import alerts as alert_rows

STORED_SPAN = (pd.Timestamp("2000-01-01", tz="UTC"), pd.Timestamp("2100-01-01", tz="UTC"))

MODELS = {"sklearn", "statsforecast", "lightgbm", "scipy", "dask", "distributed"}
SURFACES = {"streamlit", "plotly", "fastapi", "uvicorn", "asyncua", "paho"}
DATA = {"pandas", "numpy", "sqlalchemy", "psycopg", "pydantic_settings"}

# Runs the CLI in a fresh interpreter and prints the top-level packages it imported.
PROBE = """
import json, sys
from plantcast.cli.main import cli
try:
    cli(sys.argv[1:], prog_name="plantcast")
except SystemExit as exc:
    code = exc.code
else:
    code = 0
print("\\n" + json.dumps({"code": code, "modules": sorted({m.split(".")[0] for m in sys.modules})}))
"""


def _imported(*args: str) -> set[str]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *args], capture_output=True, text=True, timeout=60
    )
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["code"] in (0, None), done.stdout + done.stderr
    return set(report["modules"])


def test_importing_the_cli_imports_no_analytics_no_data_libraries():
    code = "import json, sys, plantcast.cli.main; print(json.dumps(sorted(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    loaded = {m.split(".")[0] for m in json.loads(done.stdout)}
    assert loaded & {"sklearn", "statsforecast", "streamlit"} == set()  # the requirement
    assert loaded & (MODELS | SURFACES | DATA) == set()  # and what keeps --help instant


@pytest.mark.parametrize("args", [["--help"], ["inject", "--help"], ["notify", "--help"]])
def test_help_imports_nothing_heavy(args):
    assert _imported(*args) & (MODELS | SURFACES | DATA) == set()


def test_every_command_help_stays_off_the_models():
    """Each command's --help (its options rendered) imports no models, streamlit or server;
    `forecast`/`backtest` list the model registry in their --help, which may import it."""
    from plantcast.cli.main import cli

    for name in sorted(cli.commands):
        if name in {"forecast", "backtest"}:
            continue
        assert _imported(name, "--help") & (MODELS | SURFACES) == set(), name


def test_alerts_reads_the_store_without_models(store, db_url):
    sid = store.ensure_sensor("s", source=Source.IMPORTED, interval=pd.Timedelta("1h")).id
    with store.write() as conn:
        ts = pd.Timestamp("2026-03-01", tz="UTC")
        alert_rows.insert_alert(conn, sid, detector="stuck", ts=ts, score=6.0, value=1.0)
    loaded = _imported("alerts", "--database-url", db_url)
    assert "sqlalchemy" in loaded
    assert loaded & (MODELS | SURFACES | {"pydantic", "pydantic_settings"}) == set()
    if db_url.startswith("sqlite"):
        assert "psycopg" not in loaded  # the PostgreSQL driver only where it is used


def test_inject_writes_its_event_without_models_or_settings(sqlite_url):
    from plantcast.ingest.backfill import backfill
    from plantcast.store import Store

    with Store.open(sqlite_url) as store:
        store.init()
        backfill(store, "reservoir_pressure", days=1, interval=pd.Timedelta("1h"))
    args = ["--sensor", "reservoir_pressure", "--kind", "spike", "--magnitude", "5"]
    loaded = _imported("inject", "--database-url", sqlite_url, *args)
    assert loaded & (MODELS | SURFACES | {"pydantic", "pydantic_settings"}) == set()
    with Store.open(sqlite_url) as store:
        sensor = store.get_sensor("reservoir_pressure")
        [event] = store.events_overlapping(sensor.id, *STORED_SPAN)
    assert event.kind.value == "spike" and event.magnitude == 5


BOTH = {"PLANTCAST_DATABASE_URL": "sqlite:///a.db", "DATABASE_URL": "sqlite:///b.db"}


@pytest.mark.parametrize(
    "env", [{}, {"DATABASE_URL": "sqlite:///b.db"}, {"PLANTCAST_DATABASE_URL": "x"}, BOTH]
)
def test_the_quick_database_url_is_the_settings_one(env, monkeypatch):
    from plantcast.core.config import load_settings
    from plantcast.core.dburl import database_url

    for name in ("PLANTCAST_DATABASE_URL", "DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert database_url() == load_settings().database_url
    assert (
        database_url("sqlite:///c.db") == load_settings(database_url="sqlite:///c.db").database_url
    )
