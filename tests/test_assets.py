"""Assets on SQLite and PostgreSQL: the tables (and their upgrade into an older database), the
service, the CLI and the API with their errors, a sensor in two assets; and the alignment of an
asset's sensors on one grid: a bounded forward fill, long gaps kept, nothing seen ahead."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
import warnings

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from plantcast.api import create_app
from plantcast.cli.main import cli
from plantcast.core.errors import InputError, NotFound, PlantcastError, Refused
from plantcast.core.types import Source
from plantcast.detect.alignment import align, default_max_age, grid
from plantcast.services import assets as service
from plantcast.services.apikeys import create_key
from plantcast.store import Store

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

T0 = pd.Timestamp("2026-03-01", tz="UTC")
MIN = pd.Timedelta("1min")


def _sensor(store, name, interval="1min", n=0, values=None, start=T0):
    sensor = store.ensure_sensor(name, source=Source.IMPORTED, interval=pd.Timedelta(interval))
    if n:
        index = pd.date_range(start, periods=n, freq=interval, tz="UTC")
        data = np.arange(n, dtype=float) if values is None else np.asarray(values, dtype=float)
        store.write_readings(sensor.id, pd.Series(data, index=index))
    return sensor


@pytest.fixture
def plant(store):
    """Three sensors: flow (1 min), pressure (1 min), temperature (5 min)."""
    for name, interval in (("flow", "1min"), ("pressure", "1min"), ("temp", "5min")):
        _sensor(store, name, interval)
    return store


def _run(*args, ok=True):
    result = CliRunner().invoke(cli, [str(a) for a in args])
    if ok:
        assert result.exit_code == 0, result.output
    return result


# -- the tables ---------------------------------------------------------------------------------


def test_init_makes_the_tables_and_migrate_adds_them_to_an_older_database(db_url):
    with Store.open(db_url) as store:
        made = store.init()
        assert {"assets created", "asset_sensors created"} <= set(made)
        assert store.init() == []  # idempotent: nothing left to do
        _sensor(store, "flow")
        cascade = " CASCADE" if store.dialect == "postgresql" else ""  # alerts.asset_id's key
        with store.write() as conn:  # a database from before assets
            conn.exec_driver_sql("DROP TABLE asset_state")
            conn.exec_driver_sql("DROP TABLE asset_sensors")
            conn.exec_driver_sql(f"DROP TABLE assets{cascade}")
    refused = _run("asset", "list", "--database-url", db_url, ok=False)
    assert refused.exit_code == 1
    assert "no assets or asset_sensors or asset_state table" in refused.output
    assert "run `plantcast migrate`" in refused.output
    assert "Traceback" not in refused.output
    done = _run("migrate", "--database-url", db_url)
    assert "assets created" in done.output and "asset_sensors created" in done.output
    _run("asset", "create", "pump", "--sensor", "flow", "--database-url", db_url)
    with Store.open(db_url) as store:
        assert [a.name for a in store.list_assets()] == ["pump"]
    assert "created" not in _run("migrate", "--database-url", db_url).output  # nothing again


# -- the service --------------------------------------------------------------------------------


def test_create_change_and_remove_through_the_service(plant):
    made = service.create_asset(plant, "pump", ["pressure", "flow"])
    assert made.sensor_names == ("pressure", "flow")  # the order given
    assert made.step is None and made.grid_step == MIN
    assert made.train_from is None and made.train_to is None
    assert made.created_at.tzinfo is not None

    grown = service.add_sensors(plant, "pump", ["temp"])
    assert grown.sensor_names == ("pressure", "flow", "temp")
    assert grown.grid_step == pd.Timedelta("5min")  # the slowest sensor's interval

    stepped = service.set_step(plant, "pump", "30s")
    assert stepped.step == stepped.grid_step == pd.Timedelta("30s")
    assert service.set_step(plant, "pump", None).grid_step == pd.Timedelta("5min")

    trained = service.set_training(plant, "pump", "2026-01-01T00:00Z", "2026-02-01T00:00Z")
    assert trained.train_from == pd.Timestamp("2026-01-01", tz="UTC")
    assert trained.train_to == pd.Timestamp("2026-02-01", tz="UTC")
    cleared = service.set_training(plant, "pump", None, None)
    assert cleared.train_from is None and cleared.train_to is None

    shrunk = service.remove_sensors(plant, "pump", ["pressure"])
    assert shrunk.sensor_names == ("flow", "temp")
    again = service.add_sensors(plant, "pump", ["pressure"])
    assert again.sensor_names == ("flow", "temp", "pressure")  # joins at the end

    assert [a.name for a in service.list_assets(plant)] == ["pump"]
    gone = service.remove_asset(plant, "pump")
    assert gone.name == "pump" and service.list_assets(plant) == []
    assert {s.name for s in plant.list_sensors()} == {"flow", "pressure", "temp"}  # stay


def test_an_asset_made_in_a_failed_transaction_is_not_kept(plant):
    """create_asset_in joins the caller's transaction: sensors and asset commit together."""
    with pytest.raises(RuntimeError), plant.transaction() as tx:
        tx.ensure_sensor("new", source=Source.IMPORTED, interval=MIN)
        assert service.create_asset_in(tx, "pump", ["flow", "new"]).sensor_names == (
            "flow",
            "new",
        )
        raise RuntimeError("the import failed after")
    assert service.list_assets(plant) == []
    assert "new" not in {s.name for s in plant.list_sensors()}


def test_a_sensor_may_belong_to_several_assets(plant):
    service.create_asset(plant, "pump", ["flow", "pressure"], step="1min")
    service.create_asset(plant, "line", ["flow", "temp"])
    flow = plant.get_sensor("flow")
    assert plant.assets_of_sensor(flow.id) == ["line", "pump"]
    listed = {a.name: a.sensor_names for a in service.list_assets(plant)}
    assert listed == {"line": ("flow", "temp"), "pump": ("flow", "pressure")}
    service.remove_sensors(plant, "pump", ["flow"])
    assert service.get_asset(plant, "line").sensor_names == ("flow", "temp")
    service.remove_asset(plant, "line")
    assert service.get_asset(plant, "pump").sensor_names == ("pressure",)
    assert plant.assets_of_sensor(flow.id) == []


def test_a_member_without_readings_is_not_dropped_as_a_failed_import(plant):
    """An import drops the sensor it made when it fails, unless an asset names it by then
    (the foreign key would refuse the delete on SQLite, where it is enforced)."""
    service.create_asset(plant, "pump", ["flow"])
    flow, temp = plant.get_sensor("flow"), plant.get_sensor("temp")
    with plant.transaction() as tx:
        assert tx.drop_sensor_if_empty(flow.id) is False
        assert tx.drop_sensor_if_empty(temp.id) is True
    assert {s.name for s in plant.list_sensors()} == {"flow", "pressure"}


def test_errors_name_what_is_wrong_and_change_nothing(plant):
    with pytest.raises(NotFound, match="no sensors 'nope', 'nada'"):
        service.create_asset(plant, "pump", ["flow", "nope", "nada"])
    assert service.list_assets(plant) == []  # all or nothing
    with pytest.raises(InputError, match="not a valid asset name") as bad:
        service.create_asset(plant, "a pump", ["flow"])
    assert bad.value.field == "name"
    for name in ("", "-pump", "x" * 201, "pump/7"):
        with pytest.raises(InputError):
            service.create_asset(plant, name, ["flow"])
    with pytest.raises(InputError, match="at least one sensor"):
        service.create_asset(plant, "pump", [])
    with pytest.raises(InputError, match="step must be more than 0"):
        service.create_asset(plant, "pump", ["flow"], step="0s")
    with pytest.raises(InputError, match="cannot read 'soon' as a duration"):
        service.create_asset(plant, "pump", ["flow"], step="soon")

    service.create_asset(plant, "pump", ["flow", "pressure"])
    with pytest.raises(Refused, match="asset 'pump' already exists"):
        service.create_asset(plant, "pump", ["temp"])
    with pytest.raises(Refused, match="asset 'pump' already has 'flow'"):
        service.add_sensors(plant, "pump", ["temp", "flow"])
    with pytest.raises(NotFound, match="no sensor named 'nope'"):
        service.add_sensors(plant, "pump", ["nope"])
    with pytest.raises(NotFound, match="asset 'pump' has no sensor 'temp'; its sensors: flow"):
        service.remove_sensors(plant, "pump", ["temp"])
    with pytest.raises(Refused, match="would leave asset 'pump' without a sensor"):
        service.remove_sensors(plant, "pump", ["flow", "pressure"])
    assert service.get_asset(plant, "pump").sensor_names == ("flow", "pressure")
    with pytest.raises(NotFound, match="no asset named 'pmp'; known assets: pump"):
        service.get_asset(plant, "pmp")
    with pytest.raises(NotFound, match="no asset named 'pmp'"):
        service.remove_asset(plant, "pmp")
    with pytest.raises(InputError, match="must end after it starts"):
        service.set_training(plant, "pump", "2026-02-01", "2026-01-01")
    with pytest.raises(InputError, match="both ends"):
        service.set_training(plant, "pump", "2026-02-01", None)
    assert service.get_asset(plant, "pump").train_from is None


# -- the CLI ------------------------------------------------------------------------------------


def test_the_asset_commands(plant, db_url):
    db = ("--database-url", db_url)
    made = _run("asset", "create", "pump", "--sensor", "flow", "--sensor", "temp", *db)
    assert "asset pump: 2 sensor(s), step 5min (slowest sensor)" in made.output
    _run("asset", "create", "line", "--sensor", "flow", "--step", "30s", *db)

    listed = json.loads(_run("asset", "list", "--format", "json", *db).output)
    assert [(a["name"], a["sensors"], a["step"], a["step_set"]) for a in listed] == [
        ("line", ["flow"], "30s", True),
        ("pump", ["flow", "temp"], "5min", False),
    ]
    rows = list(csv.DictReader(io.StringIO(_run("asset", "list", "--format", "csv", *db).output)))
    assert [(r["name"], r["sensors"], r["train_from"]) for r in rows] == [
        ("line", "flow", ""),
        ("pump", "flow,temp", ""),
    ]
    table = _run("asset", "list", *db).output
    assert "pump" in table and "5min (slowest sensor)" in table

    _run("asset", "add-sensor", "pump", "--sensor", "pressure", *db)
    _run("asset", "remove-sensor", "pump", "--sensor", "flow", *db)
    trained = _run(
        "asset", "train", "pump", "--from", "2026-01-01T00:00Z", "--to", "2026-01-08T00:00Z", *db
    )
    assert "training period: 2026-01-01 00:00:00 to 2026-01-08 00:00:00 UTC" in trained.output
    shown = _run("asset", "show", "pump", *db).output
    assert "temp: imported, every 5min" in shown and "pressure: imported, every 1min" in shown
    assert "flow" not in shown
    assert "2026-01-01 00:00:00 to 2026-01-08 00:00:00" in shown
    assert "none pinned" in _run("asset", "train", "pump", "--clear", *db).output
    assert "removed asset line (flow)" in _run("asset", "remove", "line", *db).output
    assert _run("asset", "list", *db).output.count("pump") == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["create", "pump", "--sensor", "nope"], "no sensor named 'nope'"),
        (["create", "pump", "--sensor", "flow"], "asset 'pump' already exists"),
        (["create", "bad name", "--sensor", "flow"], "not a valid asset name"),
        (["create", "p2", "--sensor", "flow", "--step", "0s"], "step must be more than 0"),
        (["remove-sensor", "pump", "--sensor", "flow"], "without a sensor"),
        (["add-sensor", "pump", "--sensor", "flow"], "already has 'flow'"),
        (["show", "nope"], "no asset named 'nope'; known assets: pump"),
        (["remove", "nope"], "no asset named 'nope'"),
        (["train", "pump", "--from", "2026-01-02T00:00Z"], "give --from and --to"),
        (["train", "pump", "--from", "2026-01-02", "--to", "2026-01-01"], "end after it starts"),
    ],
)
def test_asset_command_errors_are_one_line(plant, db_url, args, message):
    service.create_asset(plant, "pump", ["flow"])
    result = _run("asset", *args, "--database-url", db_url, ok=False)
    assert result.exit_code != 0
    assert message in result.output
    assert "Traceback" not in result.output


def test_asset_commands_start_without_the_models(plant, db_url):
    """Listing or changing assets loads the store, not the detectors (scikit-learn)."""
    service.create_asset(plant, "pump", ["flow"])
    probe = (
        "import json, sys\nfrom plantcast.cli.main import cli\n"
        "try:\n    cli(sys.argv[1:], prog_name='plantcast')\nexcept SystemExit as e:\n"
        "    assert not e.code, e.code\n"
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))"
    )
    args = ["asset", "list", "--format", "json", "--database-url", db_url]
    done = subprocess.run(
        [sys.executable, "-c", probe, *args], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    loaded = set(json.loads(done.stdout.strip().splitlines()[-1]))
    assert "sqlalchemy" in loaded
    assert loaded & {"sklearn", "scipy", "statsforecast", "fastapi", "streamlit"} == set()


# -- the API ------------------------------------------------------------------------------------


@pytest.fixture
def api(plant):
    client = TestClient(create_app(store=plant))
    # admins manage assets: the changing key is an admin's
    client.keys = {s: create_key(plant, f"k-{s}", s)[1] for s in ("read", "admin")}
    client.keys["write"] = client.keys["admin"]
    return client


def _h(api, scope):
    return {"Authorization": f"Bearer {api.keys[scope]}"}


def test_the_asset_routes(api):
    r, w = _h(api, "read"), _h(api, "write")
    body = {"name": "pump", "sensors": ["flow", "temp"]}
    assert api.get("/v1/assets").status_code == 401
    assert api.post("/v1/assets", json=body, headers=r).status_code == 403  # read cannot change
    assert api.get("/v1/assets", headers=r).json() == []

    made = api.post("/v1/assets", json=body, headers=w)
    assert made.status_code == 201, made.text
    out = made.json()
    assert [s["name"] for s in out["sensors"]] == ["flow", "temp"]
    assert out["step_seconds"] == 300 and out["step_set"] is False
    assert api.get("/v1/assets/pump", headers=r).json() == out
    assert [a["name"] for a in api.get("/v1/assets", headers=r).json()] == ["pump"]

    again = api.post("/v1/assets", json=body, headers=w)
    assert again.status_code == 409 and "already exists" in again.json()["detail"]
    unknown = api.post("/v1/assets", json={"name": "p2", "sensors": ["nope"]}, headers=w)
    assert unknown.status_code == 404 and "'nope'" in unknown.json()["detail"]
    bad = api.post("/v1/assets", json={"name": "a b", "sensors": ["flow"]}, headers=w)
    assert bad.status_code == 422 and bad.json()["field"] == "name"
    step = api.post("/v1/assets", json={"name": "p2", "sensors": ["flow"], "step": "x"}, headers=w)
    assert step.status_code == 422 and step.json()["field"] == "step"
    assert api.get("/v1/assets/nope", headers=r).status_code == 404

    assert api.post("/v1/assets/pump/sensors/pressure", headers=r).status_code == 403
    added = api.post("/v1/assets/pump/sensors/pressure", headers=w)
    assert [s["name"] for s in added.json()["sensors"]] == ["flow", "temp", "pressure"]
    assert api.post("/v1/assets/pump/sensors/pressure", headers=w).status_code == 409
    taken = api.delete("/v1/assets/pump/sensors/temp", headers=w)
    assert taken.status_code == 200 and taken.json()["step_seconds"] == 60
    assert api.delete("/v1/assets/pump/sensors/temp", headers=w).status_code == 404
    api.delete("/v1/assets/pump/sensors/flow", headers=w)
    last = api.delete("/v1/assets/pump/sensors/pressure", headers=w)
    assert last.status_code == 409 and "without a sensor" in last.json()["detail"]

    period = {"start": "2026-01-01T00:00:00Z", "end": "2026-01-08T00:00:00Z"}
    assert api.put("/v1/assets/pump/training", json=period, headers=r).status_code == 403
    pinned = api.put("/v1/assets/pump/training", json=period, headers=w).json()
    assert pd.Timestamp(pinned["train_from"]) == pd.Timestamp("2026-01-01", tz="UTC")
    backwards = {"start": period["end"], "end": period["start"]}
    assert api.put("/v1/assets/pump/training", json=backwards, headers=w).status_code == 422
    cleared = api.put("/v1/assets/pump/training", json={"start": None, "end": None}, headers=w)
    assert cleared.json()["train_from"] is None

    assert api.delete("/v1/assets/pump", headers=r).status_code == 403
    assert api.delete("/v1/assets/pump", headers=w).status_code == 204
    assert api.get("/v1/assets/pump", headers=r).status_code == 404


def test_the_aligned_readings_route(api):
    store = api.app.state.store
    a = _sensor(store, "a", "1min", n=10)
    _sensor(store, "b", "2min", n=5, values=[10, 11, 12, 13, 14])
    store.write_readings(a.id, pd.Series([99.0], index=[T0 + pd.Timedelta("30min")]))
    service.create_asset(store, "duo", ["a", "b"])
    params = {"start": "2026-03-01T00:00:00Z", "end": "2026-03-01T00:20:00Z"}
    r = api.get("/v1/assets/duo/readings", params=params, headers=_h(api, "read"))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["step_seconds"] == 120 and len(body["times"]) == 10
    assert body["values"]["a"][:5] == [0.0, 2.0, 4.0, 6.0, 8.0]
    assert body["values"]["a"][5:] == [9.0, None, None, None, None]  # 2 min fill, then a gap
    assert body["values"]["b"][:5] == [10.0, 11.0, 12.0, 13.0, 14.0]
    backwards = {"start": params["end"], "end": params["start"]}
    bad = api.get("/v1/assets/duo/readings", params=backwards, headers=_h(api, "read"))
    assert bad.status_code == 422 and bad.json()["field"] == "end"


# -- alignment ----------------------------------------------------------------------------------


def _s(times, values):
    return pd.Series(values, index=pd.DatetimeIndex(times, tz="UTC"), dtype=float)


def test_the_grid_is_whole_steps_and_half_open():
    times = grid(T0 + pd.Timedelta("30s"), T0 + pd.Timedelta("5min"), MIN)
    assert list(times) == [T0 + k * MIN for k in range(1, 5)]
    assert grid(T0, T0, MIN).empty


def test_a_short_gap_is_filled_and_a_long_one_stays_a_gap():
    times = pd.date_range(T0, periods=12, freq="1min", tz="UTC")
    keep = [0, 1, 2, 4, 5, 10, 11]  # one reading missing at 3; five missing from 6 to 9
    series = _s(times[keep], [float(k) for k in keep])
    frame = align({"x": series}, times, default_max_age(MIN))
    col = frame["x"].tolist()
    assert col[:6] == [0.0, 1.0, 2.0, 2.0, 4.0, 5.0]  # 3 carries 2 (one interval old)
    assert col[6:8] == [5.0, 5.0]  # within two intervals of the last reading
    assert np.isnan(col[8:10]).all()  # then the long gap stays a gap
    assert col[10:] == [10.0, 11.0]


def test_nothing_after_a_grid_time_reaches_it():
    times = pd.date_range(T0, periods=5, freq="1min", tz="UTC")
    # readings one second after each grid time: each may show only from the next grid time on
    late = _s(times + pd.Timedelta("1s"), [10.0, 11.0, 12.0, 13.0, 14.0])
    frame = align({"x": late}, times, pd.Timedelta("5min"))
    assert np.isnan(frame["x"].iloc[0])
    assert frame["x"].iloc[1:].tolist() == [10.0, 11.0, 12.0, 13.0]  # never 14


def test_each_row_is_what_was_known_at_its_time():
    """Causality as an oracle: the row at t is the same whether or not the readings after t
    exist, and is the last reading at or before t (a plain loop) within the fill."""
    rng = np.random.default_rng(7)
    stamps = np.sort(rng.choice(np.arange(0, 6_000), size=120, replace=False))
    readings = {
        "x": _s(T0 + pd.to_timedelta(stamps, unit="s"), rng.normal(size=120)),
        "y": _s(T0 + pd.to_timedelta(stamps[::3] + 7, unit="s"), rng.normal(size=40)),
    }
    limit = {"x": pd.Timedelta("90s"), "y": pd.Timedelta("5min")}
    times = grid(T0, T0 + pd.Timedelta("100min"), MIN)
    full = align(readings, times, limit)
    for t in times:
        known = {k: v[v.index <= t] for k, v in readings.items()}
        row = align(known, pd.DatetimeIndex([t]), limit).iloc[0]
        for name, series in known.items():
            fresh = series[series.index >= t - limit[name]]
            expected = fresh.iloc[-1] if len(fresh) else np.nan
            assert row[name] == pytest.approx(expected, nan_ok=True)
            assert full.loc[t, name] == pytest.approx(expected, nan_ok=True)


def test_the_aligned_read_of_an_asset(plant):
    """The default step is the slowest sensor's; the first grid time is filled from before the
    window; readings after the window's last grid time are not read."""
    flow, temp = plant.get_sensor("flow"), plant.get_sensor("temp")
    index = pd.date_range(T0 - 3 * MIN, periods=40, freq="1min", tz="UTC")
    plant.write_readings(flow.id, pd.Series(np.arange(40, dtype=float), index=index))
    slow = pd.date_range(T0, periods=4, freq="5min", tz="UTC") + pd.Timedelta("10s")
    plant.write_readings(temp.id, pd.Series([50.0, 51.0, 52.0, 53.0], index=slow))
    service.create_asset(plant, "pump", ["flow", "temp"])
    start = T0 + pd.Timedelta("30s")
    end = T0 + pd.Timedelta("31min")
    frame = service.aligned_readings(plant, "pump", start, end)
    assert list(frame.columns) == ["flow", "temp"]
    assert list(frame.index) == [T0 + k * 5 * MIN for k in range(1, 7)]  # the 5 min grid
    assert frame["flow"].tolist() == [8.0, 13.0, 18.0, 23.0, 28.0, 33.0]
    # temp's reading at :05:10 is not there at :05, so :05 carries the :00:10 one; at :30 the
    # last (:15:10) is 14:50 old, more than two 5 min intervals: a gap
    assert frame["temp"].tolist()[:5] == [50.0, 51.0, 52.0, 53.0, 53.0]
    assert np.isnan(frame["temp"].iloc[5])
    tight = service.aligned_readings(plant, "pump", start, end, max_age="0s")
    assert np.isnan(tight["temp"]).all() and tight["flow"].notna().all()  # only on-grid readings
    with pytest.raises(InputError, match="end after it starts"):
        service.aligned_readings(plant, "pump", T0, T0)
    with pytest.raises(PlantcastError, match="grid rows"):
        service.aligned_readings(plant, "pump", T0, T0 + pd.Timedelta("20000d"))
