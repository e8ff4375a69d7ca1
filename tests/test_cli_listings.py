"""The CLI's listings and exports: one --format for every listing, `sensors`, `readings` read
page by page, one alert shape for the CLI and the API, `notify run --once` failing loudly,
and horizons that follow the sensor's interval."""

from __future__ import annotations

import csv
import datetime
import io
import json
import warnings

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from plantcast.cli import catalog
from plantcast.cli.main import cli
from plantcast.core.timeutil import format_duration
from plantcast.core.types import Source
from plantcast.notify import add_destination
from plantcast.services.apikeys import create_key
from plantcast.store import alerts as alert_rows

START = pd.Timestamp("2026-03-01", tz="UTC")
LISTINGS = [
    ["alerts"],
    ["sensors"],
    ["dead-letters"],
    ["notify", "list"],
    ["apikey", "list"],
    ["seasons", "--sensor", "hourly"],
    ["readings", "--sensor", "hourly"],
]


def _run(*args, ok: bool = True):
    result = CliRunner().invoke(cli, [str(a) for a in args])
    if ok:
        assert result.exit_code == 0, result.output
    return result


def _hourly(store, n=30):
    sensor = store.ensure_sensor(
        "hourly", source=Source.IMPORTED, interval=pd.Timedelta("1h"), unit="bar"
    )
    index = pd.date_range(START, periods=n, freq="1h", tz="UTC")
    store.write_readings(sensor.id, pd.Series(np.arange(n) * 0.5 + 1.0, index=index))
    return sensor


def _alert(store, sid, hours: int) -> int:
    with store.write() as conn:
        return alert_rows.insert_alert(
            conn,
            sid,
            detector="residual_z",
            ts=START + pd.Timedelta(hours=hours),
            score=6.0,
            value=130.0,
            expected=100.0,
        )


@pytest.mark.parametrize("listing", LISTINGS, ids=lambda a: " ".join(a))
def test_every_listing_takes_table_json_and_csv(store, db_url, listing):
    sensor = _hourly(store)
    _alert(store, sensor.id, 3)
    create_key(store, "grafana", "read")
    add_destination(store, "ops", webhook="http://127.0.0.1:9/hook")
    for fmt in ("table", "json", "csv"):
        result = _run(*listing, "--database-url", db_url, "--format", fmt)
        if fmt == "json":
            json.loads(result.stdout)  # the whole of stdout is one JSON document
        elif fmt == "csv":
            rows = list(csv.reader(io.StringIO(result.stdout)))
            assert rows and all(len(r) == len(rows[0]) for r in rows), result.stdout
    assert _run(*listing, "--database-url", db_url, "--format", "xml", ok=False).exit_code == 2


def test_sensors_lists_unit_source_interval_and_last_reading(store, db_url):
    _hourly(store, n=30)
    store.ensure_sensor("weekly", source=Source.IMPORTED, interval=pd.Timedelta("7d"))
    rows = json.loads(_run("sensors", "--database-url", db_url, "--format", "json").stdout)
    by_name = {r["name"]: r for r in rows}
    assert by_name["hourly"] == {
        "name": "hourly",
        "unit": "bar",
        "source": "imported",
        "interval": "1h",
        "last_reading_at": (START + pd.Timedelta(hours=29)).isoformat(),
        "last_value": 1.0 + 29 * 0.5,
    }
    assert by_name["weekly"]["interval"] == "7d" and by_name["weekly"]["last_reading_at"] is None
    table = _run("sensors", "--database-url", db_url).stdout
    assert "hourly" in table and "7d" in table and "7 days" not in table


def test_readings_exports_the_window_page_by_page_without_loss_or_repeats(
    store, db_url, monkeypatch
):
    sensor = _hourly(store, n=30)
    monkeypatch.setattr(catalog, "PAGE_READINGS", 4)  # 3 h windows: many pages, edges inside
    reads = []
    real = type(store).read_series

    def spy(self, sensor_id, start, end):
        reads.append((start, end))
        return real(self, sensor_id, start, end)

    monkeypatch.setattr(type(store), "read_series", spy)
    since, until = START + pd.Timedelta(hours=2), START + pd.Timedelta(hours=21)
    args = ["readings", "--database-url", db_url, "--sensor", "hourly", "--format", "csv"]
    result = _run(*args, "--since", since.isoformat(), "--until", until.isoformat())
    got = pd.read_csv(io.StringIO(result.stdout))
    expected = store.read_series(sensor.id, since, until)
    assert list(got["ts"]) == [t.isoformat() for t in expected.index]
    assert got["value"].tolist() == expected.tolist() and len(got) == 19
    assert len(reads) >= 5 and all(b - a <= pd.Timedelta(hours=4) for a, b in reads[:-1])
    everything = _run(
        "readings", "--database-url", db_url, "--sensor", "hourly", "--format", "json"
    )
    assert len(json.loads(everything.stdout)) == 30  # no --since: from the first reading
    assert "30 reading(s)" in everything.output


def test_readings_say_what_is_wrong(store, db_url):
    _hourly(store)
    missing = _run("readings", "--database-url", db_url, "--sensor", "nope", ok=False)
    assert missing.exit_code == 1 and "no sensor named 'nope'" in missing.output
    backwards = _run(
        "readings", "--database-url", db_url, "--sensor", "hourly",
        "--since", "2026-03-02", "--until", "2026-03-01", ok=False,
    )  # fmt: skip
    assert backwards.exit_code == 2 and "must be after --since" in backwards.output


def test_the_cli_and_the_api_give_an_alert_in_one_shape(store, db_url):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient

    from plantcast.api import create_app

    sensor = _hourly(store)
    _alert(store, sensor.id, 3)
    [cli_alert] = json.loads(_run("alerts", "--database-url", db_url, "--format", "json").stdout)[
        "alerts"
    ]
    _, token = create_key(store, "t", "read")
    client = TestClient(create_app(store=store))
    page = client.get("/v1/alerts", headers={"Authorization": f"Bearer {token}"}).json()
    [api_alert] = page["alerts"]
    assert cli_alert.keys() == api_alert.keys()
    for key in ("start", "end"):  # the same instant, each in its own RFC 3339 spelling
        same = {pd.Timestamp(a[key]) if a[key] else None for a in (cli_alert, api_alert)}
        assert len(same) == 1, key
    assert {k: v for k, v in cli_alert.items() if k not in ("start", "end")} == {
        k: v for k, v in api_alert.items() if k not in ("start", "end")
    }
    assert cli_alert["sensor"] == "hourly" and cli_alert["status"] == "open"


def test_notify_run_once_exits_1_and_names_the_failed_deliveries(store, db_url):
    sensor = _hourly(store)
    quiet = _run("notify", "run", "--once", "--database-url", db_url)
    assert "delivered 0, 0 failed" in quiet.output  # nothing due: success
    add_destination(store, "ops", webhook="http://127.0.0.1:9/hook")  # nothing listens there
    _alert(store, sensor.id, 3)
    failed = _run("notify", "run", "--once", "--database-url", db_url, ok=False)
    assert failed.exit_code == 1, failed.output
    assert "1 failed attempt(s)" in failed.output and "not delivered: ops:" in failed.output


def test_the_default_horizon_follows_the_interval_and_durations_read_as_written(store, db_url):
    weekly = store.ensure_sensor("weekly", source=Source.IMPORTED, interval=pd.Timedelta("7d"))
    index = pd.date_range("2020-01-05", periods=200, freq="7D", tz="UTC")
    values = 400 + np.sin(np.arange(200) / 3.0)
    store.write_readings(weekly.id, pd.Series(values, index=index))
    base = ["forecast", "--database-url", db_url, "--sensor", "weekly", "--model", "seasonal_naive"]
    made = json.loads(_run(*base, "--periods", "4w", "--format", "json").stdout)
    assert len(made["forecast"]) == 24  # a day would be less than one reading: 24 readings
    short = _run(*base, "--horizon", "1d", ok=False)
    assert short.exit_code == 1
    assert "horizon 24h is shorter than one reading interval (7d)" in short.output
    assert "days" not in short.output and "00:00:00" not in short.output


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (pd.Timedelta("7d"), "7d"),
        (pd.Timedelta("10h"), "10h"),
        (pd.Timedelta("37min"), "37min"),
        (pd.Timedelta("1d12h"), "36h"),
        (pd.Timedelta("36h30min"), "1d12h30min"),
        (pd.Timedelta("1500ns"), "0.000001s"),
        (pd.Timedelta("30.5s"), "30.5s"),
        (datetime.timedelta(days=7), "7d"),
        (datetime.timedelta(minutes=37), "37min"),
    ],
)
def test_durations_print_as_people_write_them(value, shown):
    assert format_duration(value) == shown


def test_inject_says_how_long_in_words(store, db_url):
    from plantcast.ingest.backfill import backfill

    backfill(store, "reservoir_pressure", days=1, interval=pd.Timedelta("30min"))
    args = ["--sensor", "reservoir_pressure", "--kind", "drift", "--magnitude", "3"]
    made = _run("inject", "--database-url", db_url, *args, "--duration", "10h")
    assert "drift +3 on reservoir_pressure for 10h of data time (until " in made.output
    assert ".000001" not in made.output and "days" not in made.output
