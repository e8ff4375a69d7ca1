"""What a new user met on data of their own (imported CSVs, not the simulator's): short and fast
sensors, gaps, the explanations and messages they read."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from plantcast.cli.main import cli
from plantcast.services.forecasting import ForecastSpec, forecast_sensor
from plantcast.store import Store

START = pd.Timestamp("2026-10-01", tz="UTC")


def write_csv(path, index: pd.DatetimeIndex, values) -> str:
    lines = ["ts,value", *(f"{t.isoformat()},{v}" for t, v in zip(index, values, strict=True))]
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def daily(index: pd.DatetimeIndex, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    phase = 2 * np.pi * (index - START).total_seconds().to_numpy() / 86_400
    return np.round(50 + 10 * np.sin(phase) + rng.normal(0, 1, len(index)), 3)


def run(*args: str):
    result = CliRunner().invoke(cli, list(args))
    assert result.exit_code in (0, 1), result.output
    return result


def imported(url: str, tmp_path, name: str, index: pd.DatetimeIndex) -> None:
    path = write_csv(tmp_path / f"{name}.csv", index, daily(index))
    result = run("import", path, "--sensor", name, "--database-url", url)
    assert result.exit_code == 0, result.output


def test_a_forecast_without_bands_says_why(sqlite_url, tmp_path):
    """Ten readings: the 1-day horizon leaves no backtest origin to calibrate the bands. The
    forecast still comes, and the user is told why its bands are missing and what helps."""
    imported(sqlite_url, tmp_path, "short", pd.date_range(START, periods=10, freq="10min"))
    result = run("forecast", "--sensor", "short", "--format", "csv", "--database-url", sqlite_url)
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0] == "ts,mean"
    assert "short: no 80/95 % bands: too little history to calibrate them" in result.stderr
    assert "shorter than one horizon (144 steps)" in result.stderr
    assert "a shorter horizon needs less" in result.stderr
    # the shorter horizon does give them, and then nothing is said
    shorter = run(
        "forecast",
        "--sensor",
        "short",
        "--horizon",
        "30min",
        "--format",
        "csv",
        "--database-url",
        sqlite_url,
    )
    assert shorter.stdout.splitlines()[0] == "ts,mean,lower_80,upper_80,lower_95,upper_95"
    assert "no 80/95 % bands" not in shorter.stderr


def test_bands_missing_for_the_season_name_the_season(sqlite_url, tmp_path):
    """Two days at 10 min with a daily season: no origin has two days before it; the reason
    says so (a shorter horizon would not help, so it is not suggested)."""
    imported(sqlite_url, tmp_path, "twodays", pd.date_range(START, periods=288, freq="10min"))
    result = run(
        "forecast",
        "--sensor",
        "twodays",
        "--horizon",
        "2h",
        "--format",
        "csv",
        "--database-url",
        sqlite_url,
    )
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0] == "ts,mean"
    assert "need 2 periods of 24h of history" in result.stderr
    assert "shorter horizon" not in result.stderr


def test_the_forecast_result_carries_the_reason(store, tmp_path):
    index = pd.date_range(START, periods=20, freq="10min")
    sensor = store.ensure_sensor("tiny", source="imported", interval=pd.Timedelta("10min"))
    store.write_readings(sensor.id, pd.Series(daily(index), index=index))
    result = forecast_sensor(store, "tiny", ForecastSpec(horizon=144, periods=()))
    assert list(result.frame.columns) == ["mean"]
    assert result.no_bands is not None and "too little history" in result.no_bands
    full = forecast_sensor(store, "tiny", ForecastSpec(horizon=2, periods=(), windows=3))
    assert "lower_80" in full.frame.columns and full.no_bands is None


def test_a_backtest_too_long_for_the_history_says_what_to_shorten(sqlite_url, tmp_path):
    """A 1 s sensor with 15 min of history: the default horizon (1,440 steps) is longer than it."""
    imported(sqlite_url, tmp_path, "fast", pd.date_range(START, periods=900, freq="1s"))
    result = run(
        "backtest", "--sensor", "fast", "--models", "fourier_linear", "--database-url", sqlite_url
    )
    assert result.exit_code == 1
    message = " ".join(result.output.split())
    assert "900 readings for a horizon of 1440 steps and 10 windows" in message
    assert "a shorter horizon or fewer windows needs less" in message
    shorter = run(
        "backtest",
        "--sensor",
        "fast",
        "--models",
        "fourier_linear",
        "--horizon",
        "1min",
        "--windows",
        "3",
        "--format",
        "json",
        "--database-url",
        sqlite_url,
    )
    assert shorter.exit_code == 0, shorter.output


def test_a_dropout_alert_shows_without_an_expected_value(sqlite_url, tmp_path):
    """Ten days at 5 min with a 7 h gap: the dropout alert has no expected value, and neither
    `alerts show` nor `detect --explain` prints Python's None or raw nanoseconds."""
    index = pd.date_range(START, periods=2880, freq="5min")
    hours = (index - START).total_seconds() / 3600
    imported(sqlite_url, tmp_path, "gappy", index[(hours < 100) | (hours > 107)])
    assert run("detect", "--sensor", "gappy", "--database-url", sqlite_url).exit_code == 0
    listed = json.loads(run("alerts", "--format", "json", "--database-url", sqlite_url).stdout)
    dropout = next(a for a in listed["alerts"] if a["detector"] == "dropout")
    assert dropout["expected"] is None
    shown = run("alerts", "--database-url", sqlite_url, "show", str(dropout["id"]))
    assert shown.exit_code == 0, shown.output
    assert "None" not in shown.stdout
    value_line = next(line for line in shown.stdout.splitlines() if "value:" in line)
    assert "expected" not in value_line
    explained = run("detect", "--explain", "--sensor", "gappy", "--database-url", sqlite_url)
    assert explained.exit_code == 0, explained.output
    text = " ".join(explained.stdout.split())
    assert "step 5min" in text and "300000000000" not in text
    assert " None" not in text


@pytest.mark.parametrize("offset", ["+02:00", "-05:00"])
def test_times_with_a_utc_offset_are_stored_in_utc(sqlite_url, tmp_path, offset):
    """A file written in local time with its offset lands on the same UTC instants."""
    index = pd.date_range(START, periods=6, freq="10min")
    local = index.tz_convert(f"Etc/GMT{'-' if offset[0] == '+' else '+'}{int(offset[1:3])}")
    path = tmp_path / "local.csv"
    path.write_text("ts,value\n" + "".join(f"{t.isoformat()},{i}\n" for i, t in enumerate(local)))
    assert offset in path.read_text()
    assert (
        run("import", str(path), "--sensor", "local", "--database-url", sqlite_url).exit_code == 0
    )
    with Store.open(sqlite_url) as store:
        series = store.read_series(store.get_sensor("local").id, START, START + pd.Timedelta("1h"))
    assert list(series.index) == list(index)


def test_refresh_without_a_horizon_follows_each_sensors_interval(store, db_url):
    """The default refresh (and serve's forecasts job) used a fixed 24h horizon: a weekly
    sensor failed at every run ("horizon 24h is shorter than one reading interval (7d)").
    Unset, it is a day of each sensor's readings, at least 24, as `forecast` does."""
    from plantcast.serve.config import PlantConfig

    weekly = store.ensure_sensor("weekly", source="imported", interval=pd.Timedelta("7d"))
    index = pd.date_range("2024-10-06", periods=104, freq="7D", tz="UTC")
    store.write_readings(weekly.id, pd.Series(1000 + 5.0 * np.arange(104), index=index))
    fast = store.ensure_sensor("halfhourly", source="imported", interval=pd.Timedelta("30min"))
    index = pd.date_range(START, periods=14 * 48, freq="30min")
    store.write_readings(fast.id, pd.Series(daily(index), index=index))
    result = run(
        "forecast",
        "refresh",
        "--model",
        "seasonal_naive",
        "--format",
        "json",
        "--database-url",
        db_url,
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["failed"] == {} and summary["refitted"] == 2
    listed = json.loads(
        run("forecast", "list", "--format", "json", "--database-url", db_url).stdout
    )
    steps = {row["sensor"]: row["horizon_steps"] for row in listed}
    assert steps == {"weekly": 24, "halfhourly": 48}
    assert PlantConfig().forecasting.horizon is None  # serve's job takes the same default
    explicit = run(
        "forecast",
        "refresh",
        "--horizon",
        "24h",
        "--max-age",
        "0s",
        "--model",
        "seasonal_naive",
        "--database-url",
        db_url,
    )
    assert explicit.exit_code == 1  # asked for less than one reading: that sensor's failure
    assert "horizon 24h is shorter than one reading interval (7d)" in explicit.output


def test_the_cli_default_horizon_is_the_services_rule():
    from plantcast.cli.forecast_options import MAX_DEFAULT_STEPS, MIN_DEFAULT_STEPS, default_steps
    from plantcast.services.forecast_store import MAX_STEPS
    from plantcast.services.forecast_store import MIN_DEFAULT_STEPS as SERVICE_MIN

    assert (MIN_DEFAULT_STEPS, MAX_DEFAULT_STEPS) == (SERVICE_MIN, MAX_STEPS)
    for interval, steps in [("1s", 1440), ("1min", 1440), ("30min", 48), ("2h", 24), ("7d", 24)]:
        assert default_steps(pd.Timedelta(interval)) == steps


def test_local_times_the_clocks_repeat_or_skip_are_named_as_such(sqlite_url, tmp_path):
    """Europe/Berlin: 02:00-03:00 on 2026-10-25 happens twice, on 2026-03-29 never. A time
    that is perfectly ISO 8601 must not be called unreadable."""
    back = tmp_path / "autumn.csv"
    back.write_text(
        "ts,value\n2026-10-25 01:45:00,1\n2026-10-25 02:15:00,2\n2026-10-25 02:15:00,3\n"
        "2026-10-25T02:45:00+01:00,4\n2026-10-25 03:15:00,5\n"
    )
    result = run(
        "import",
        str(back),
        "--sensor",
        "autumn",
        "--tz",
        "Europe/Berlin",
        "--database-url",
        sqlite_url,
    )
    assert result.exit_code == 1
    text = " ".join(result.output.split())
    assert "line 3, field 'ts': '2026-10-25 02:15:00' happens twice" in text
    assert "in Europe/Berlin: give such times their UTC offset" in text
    assert "line 5" not in text  # the one with its offset is fine
    assert "cannot read" not in text
    spring = tmp_path / "spring.csv"
    spring.write_text("ts,value\n2026-03-29 01:30:00,1\n2026-03-29 02:30:00,2\n")
    skipped = run(
        "import",
        str(spring),
        "--sensor",
        "spring",
        "--tz",
        "Europe/Berlin",
        "--skip-invalid",
        "--database-url",
        sqlite_url,
    )
    assert skipped.exit_code == 0, skipped.output
    assert "'2026-03-29 02:30:00' never happens" in " ".join(skipped.output.split())


def test_epoch_seconds_with_ts_format_s(sqlite_url, tmp_path):
    index = pd.date_range(START, periods=5, freq="1min")
    path = tmp_path / "epoch.csv"
    path.write_text(
        "ts,value\n" + "".join(f"{int(t.timestamp())},{i}\n" for i, t in enumerate(index))
    )
    plain = run("import", str(path), "--sensor", "epoch", "--database-url", sqlite_url)
    assert "cannot read '" in plain.output and "--ts-format" in plain.output
    result = run(
        "import", str(path), "--sensor", "epoch", "--ts-format", "%s", "--database-url", sqlite_url
    )
    assert result.exit_code == 0, result.output
    with Store.open(sqlite_url) as store:
        series = store.read_series(store.get_sensor("epoch").id, START, START + pd.Timedelta("1h"))
    assert list(series.index) == list(index) and list(series) == [0, 1, 2, 3, 4]
    wide = run(
        "import",
        str(path),
        "--wide",
        "--prefix",
        "w.",
        "--ts-format",
        "%s",
        "--database-url",
        sqlite_url,
    )
    assert wide.exit_code == 0, wide.output


def test_a_format_that_is_not_one_is_the_options_error(sqlite_url, tmp_path):
    """`--ts-format '%Q'` crashed with pandas' traceback; it is the option's error now."""
    path = tmp_path / "f.csv"
    path.write_text("ts,value\n01.10.2026 00:00,1\n01.10.2026 00:01,2\n")
    result = run(
        "import",
        str(path),
        "--sensor",
        "f",
        "--ts-format",
        "%d.%m.%Y %Q",
        "--tz",
        "UTC",
        "--database-url",
        sqlite_url,
    )
    assert result.exit_code == 1
    assert isinstance(result.exception, SystemExit)
    assert "field '--ts-format': '%d.%m.%Y %Q' is not a time format" in result.output


def test_the_apis_default_horizon_follows_the_interval(store):
    """GET …/forecast and …/backtest with no horizon answered 422 for a weekly sensor (1d is
    less than a reading) and a 1 s one (86,400 steps): they follow the interval as the CLI."""
    import warnings

    from plantcast.api import create_app
    from plantcast.services.apikeys import create_key

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient

    weekly = store.ensure_sensor("weekly", source="imported", interval=pd.Timedelta("7d"))
    index = pd.date_range("2024-10-06", periods=104, freq="7D", tz="UTC")
    store.write_readings(weekly.id, pd.Series(1000 + 5.0 * np.arange(104), index=index))
    fast = store.ensure_sensor("fast", source="imported", interval=pd.Timedelta("1s"))
    index = pd.date_range(START, periods=3600, freq="1s")
    store.write_readings(fast.id, pd.Series(daily(index), index=index))
    client = TestClient(create_app(store=store))
    h = {"X-API-Key": create_key(store, "nu-read", "read")[1]}
    week = client.get("/v1/sensors/weekly/forecast?model=seasonal_naive", headers=h)
    assert week.status_code == 200, week.text
    assert len(week.json()["forecast"]) == 24
    second = client.get("/v1/sensors/fast/forecast?model=seasonal_naive", headers=h)
    assert second.status_code == 200, second.text
    assert len(second.json()["forecast"]) == 1440
    bt = client.get("/v1/sensors/weekly/backtest?models=seasonal_naive&windows=2", headers=h)
    assert bt.status_code == 200, bt.text
    assert bt.json()["horizon_steps"] == 24
    short = client.get("/v1/sensors/weekly/forecast?horizon=1d", headers=h)
    assert short.status_code == 422
    assert short.json()["detail"] == "horizon 1d is shorter than one reading interval (7d)"


def test_a_wide_import_of_many_tags_is_summed_up(sqlite_url, tmp_path):
    """1,000 tags printed 2,000 lines; beyond 20 sensors the rest are one line and the seasons
    are counted."""
    index = pd.date_range(START, periods=12, freq="15min")
    names = [f"T{k:02d}" for k in range(25)]
    lines = ["ts," + ",".join(names)]
    lines += [
        f"{t.isoformat()}," + ",".join(f"{k + i}" for k in range(25)) for i, t in enumerate(index)
    ]
    path = tmp_path / "many.csv"
    path.write_text("\n".join(lines) + "\n")
    result = run("import", str(path), "--wide", "--prefix", "m.", "--database-url", sqlite_url)
    assert result.exit_code == 0, result.output
    shown = result.stdout.splitlines()
    assert sum(": imported 12 readings" in line for line in shown) == 20
    assert "… and 5 more sensor(s): 60 readings from" in result.stdout
    assert "seasons: none found on 25 sensor(s)" in result.stdout
    assert "25 sensor(s) from columns separated by ','" in result.stdout
    assert len(shown) == 23
    with Store.open(sqlite_url) as store:
        assert len(store.list_sensors()) == 25


def test_no_empty_line_on_stderr_off_a_terminal(sqlite_url, tmp_path):
    """The progress bar (transient) left a bare newline on stderr in pipes and logs."""
    path = write_csv(tmp_path / "a.csv", pd.date_range(START, periods=3, freq="10min"), [1, 2, 3])
    result = run("import", path, "--sensor", "a", "--database-url", sqlite_url)
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    assert result.stdout.startswith("a: imported 3 readings")


def test_a_posted_csv_is_told_the_apis_parameters_not_the_clis(store, tmp_path):
    """POST …/readings with a CSV body said "choose with --ts-col" and "pass --tz": options of
    the command line, which an API caller has not got; it names the query parameters."""
    import warnings

    from plantcast.api import create_app
    from plantcast.services.apikeys import create_key

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient

    client = TestClient(create_app(store=store))
    key = {"X-API-Key": create_key(store, "nu-write", "write")[1]}
    h = {**key, "Content-Type": "text/csv"}
    made = client.post("/v1/sensors", json={"name": "occ", "interval": "5min"}, headers=key)
    assert made.status_code == 201, made.text
    body = b"timestamp,value\n2015-09-01 11:05:00,1.78\n2015-09-01 11:10:00,3.89\n"
    url = "/v1/sensors/occ/readings"
    first = client.post(url, content=body, headers=h)
    assert first.status_code == 422
    assert first.json()["detail"] == (
        "no column 'ts' (columns: timestamp, value; choose with the ts_col parameter)"
    )
    second = client.post(f"{url}?ts_col=timestamp", content=body, headers=h)
    assert second.status_code == 422
    assert second.json()["detail"].endswith("has no time zone; add one or pass the tz parameter")
    done = client.post(f"{url}?ts_col=timestamp&tz=UTC", content=body, headers=h)
    assert done.status_code == 201, done.text and done.json()["rows"] == 2


def test_an_imports_seasons_are_stored_in_one_go_as_one_by_one(store):
    """A wide import of many tags stored each sensor's seasons in a transaction of its own;
    ``refresh_seasons_of`` stores them in one, with the same params as one at a time."""
    from plantcast.services.seasons import refresh_seasons, refresh_seasons_of

    index = pd.date_range(START, periods=5 * 96, freq="15min")
    made = []
    for k in range(3):
        sensor = store.ensure_sensor(f"s{k}", source="imported", interval=pd.Timedelta("15min"))
        values = daily(index, seed=k) if k < 2 else np.full(len(index), 7.0)
        store.write_readings(sensor.id, pd.Series(values, index=index))
        made.append(sensor)
    together = refresh_seasons_of(store, made)
    params = {s.name: store.sensor_params(s.id) for s in made}
    assert [p.label for p in together["s0"]] == ["24h"] and together["s2"] == ()
    for s in made:
        assert refresh_seasons(store, s) == together[s.name]
        assert store.sensor_params(s.id) == params[s.name]


def test_status_json_note_is_plain_text(sqlite_url):
    result = run("status", "--format", "json", "--database-url", sqlite_url)
    assert result.exit_code == 0, result.output
    serve = json.loads(result.stdout)["serve"]
    assert serve == {"state": "never", "note": "no serve has run on this database"}
    table = run("status", "--database-url", sqlite_url)
    assert table.stdout.startswith("serve: never (no serve has run on this database)")
