"""Detection fanned out on a real Dask LocalCluster writes what the serial path writes."""

from __future__ import annotations

import time

import pandas as pd
import psutil
import pytest
from click.testing import CliRunner
from distributed import LocalCluster

from plantcast.cli.main import cli
from plantcast.core.errors import PlantcastError
from plantcast.core.types import Source
from plantcast.scale import detect_many
from plantcast.services.detection import DETECTORS, detect_sensor
from plantcast.services.detection_batch import detect_pass
from plantcast.signals import SignalModel, generate_readings
from plantcast.store import alerts as alert_rows

START = pd.Timestamp("2025-03-01", tz="UTC")
STEP = pd.Timedelta("30min")
N_SENSORS = 20
DAYS = 14


@pytest.fixture(scope="module")
def scheduler():
    """One cluster of 2 worker processes for the module (start-up costs seconds); every
    process it started is gone afterwards."""
    me = psutil.Process()
    before = {p.pid for p in me.children(recursive=True)}
    with LocalCluster(
        n_workers=2, processes=True, threads_per_worker=1, dashboard_address=None
    ) as cluster:
        yield cluster.scheduler_address
    deadline = time.monotonic() + 20
    while (left := _started_since(me, before)) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not left, f"worker processes left running: {left}"


def _started_since(me, before: set[int]) -> list:
    """Child processes not there before, but multiprocessing's resource tracker (one per
    interpreter, it lives as long as this one)."""
    out = []
    for p in me.children(recursive=True):
        try:
            if p.pid not in before and "resource_tracker" not in " ".join(p.cmdline()):
                out.append(p)
        except psutil.NoSuchProcess:
            continue
    return out


def _series(i: int) -> pd.Series:
    """A seeded sensor; most carry an anomaly (spike, level shift, stuck) in the second week."""
    s = generate_readings(SignalModel(seed=100 + i), START, periods=DAYS * 48 + 10, interval=STEP)
    v = s.to_numpy().copy()
    at = 9 * 48 + (i * 37) % (4 * 48)
    if i % 4 == 0:
        v[at] += 40.0
    elif i % 4 == 1:
        v[at : at + 30] += 20.0
    elif i % 4 == 2:
        v[at : at + 20] = v[at]
    return pd.Series(v, index=s.index)


def _write_pairs(store, lo: int, hi: int) -> None:
    """Readings [lo, hi) of every sensor, three times: ``serial_i``, ``dask_i`` and ``batch_i``
    hold the same."""
    for i in range(N_SENSORS):
        part = _series(i).iloc[lo:hi]
        for prefix in ("serial", "dask", "batch"):
            s = store.ensure_sensor(f"{prefix}_{i:02d}", source=Source.IMPORTED, interval=STEP)
            store.write_readings(s.id, part)


def _state(store, prefix: str) -> dict:
    """Every sensor's alerts (as rows, sorted) and resume points, keyed by its number."""
    out = {}
    for i in range(N_SENSORS):
        sensor = store.get_sensor(f"{prefix}_{i:02d}")
        with store.read() as conn:
            marks = {n: alert_rows.get_scored_until(conn, sensor.id, n) for n in DETECTORS}
            rows = alert_rows.list_alerts(conn, sensor_id=sensor.id, limit=10_000)
        alerts = sorted(
            (a.detector, a.ts, a.ends_at, a.status, round(a.score, 6), round(a.value, 6))
            for a in rows
        )
        out[i] = (alerts, marks)
    return out


def _recorder(calls: list):
    return lambda done, total, _: calls.append((done, total))


def _same_results(got: dict, serial: list, prefix: str) -> None:
    for i, r in enumerate(serial):
        mine = got[f"{prefix}_{i:02d}"]
        assert not isinstance(mine, Exception), mine
        assert (mine.scored, mine.opened, mine.updated, mine.skipped) == (
            r.scored,
            r.opened,
            r.updated,
            r.skipped,
        )
        assert (mine.scored_from, mine.scored_until) == (r.scored_from, r.scored_until)


def test_cluster_and_bulk_pass_write_the_alerts_and_resume_points_of_a_serial_run(store, scheduler):
    """A first run over two weeks of history, then incremental runs over a few new readings
    each (the bulk path: one chunk per sensor, alerts still open from the run before)."""
    n_first = DAYS * 48
    steps = [(0, n_first), (n_first, n_first + 10), (n_first + 10, n_first + 13)]
    for lo, hi in steps:
        _write_pairs(store, lo, hi)
        serial = [detect_sensor(store, f"serial_{i:02d}") for i in range(N_SENSORS)]
        names = [f"dask_{i:02d}" for i in range(N_SENSORS)]
        calls: list = []
        fanned = detect_many(store, names, scheduler=scheduler, on_progress=_recorder(calls))
        assert list(fanned) == names
        _same_results(fanned, serial, "dask")
        assert calls[-1] == (N_SENSORS, N_SENSORS)
        bulk = detect_pass(store, [f"batch_{i:02d}" for i in range(N_SENSORS)], batch_size=7)
        _same_results(bulk, serial, "batch")
        assert _state(store, "dask") == _state(store, "serial")
        assert _state(store, "batch") == _state(store, "serial")
    alerts = sum(len(a) for a, _ in _state(store, "dask").values())
    assert alerts >= N_SENSORS // 2  # the anomalies were found, so the comparison means something
    again = detect_many(store, names, scheduler=scheduler)
    assert {r.scored for r in again.values()} == {0}  # nothing new: nothing scored


def test_a_sensor_that_cannot_be_scored_is_reported_and_the_others_go_on(store, scheduler):
    _write_pairs(store, 0, 3 * 48)
    out = detect_many(store, ["nope", "dask_00", "dask_01"], scheduler=scheduler)
    assert isinstance(out["nope"], PlantcastError)
    assert out["dask_00"].scored == out["dask_01"].scored == 3 * 48


def test_batches_are_sized_by_measured_work(store, scheduler, monkeypatch):
    """Tasks carry several sensors each (about ``batch_seconds`` of scoring), not one each."""
    from plantcast.scale.fanout import FanOut

    sizes = []
    real = FanOut._submit
    monkeypatch.setattr(
        FanOut, "_submit", lambda self, b, units: (sizes.append(len(b)), real(self, b, units))
    )
    _write_pairs(store, 0, 3 * 48)
    names = [f"dask_{i:02d}" for i in range(N_SENSORS)]
    detect_many(store, names, scheduler=scheduler, batch_seconds=3600)
    assert sizes == [N_SENSORS]  # an hour of work asked for: one task holds every sensor


def test_cli_detect_on_a_scheduler(store, db_url, scheduler):
    _write_pairs(store, 0, 3 * 48)
    args = ["detect", "--database-url", db_url, "--scheduler", scheduler]
    run = CliRunner().invoke(cli, [*args, "--sensor", "dask_00", "--sensor", "nope"])
    assert run.exit_code == 1  # the unknown sensor is reported, dask_00 is scored
    assert "dask_00: scored 144 readings" in run.output
    assert "nope: not scored" in run.output


def _forecast_spec(store, name):
    from plantcast.services.forecasting import ForecastSpec

    return ForecastSpec(model="fourier_linear", horizon=12, periods=("24h",), windows=3)


def test_backtests_and_forecasts_on_the_cluster_equal_the_serial_ones(store, scheduler):
    from plantcast.scale import backtest_many_sensors, forecast_many
    from plantcast.services.forecasting import backtest_sensor, forecast_sensor

    _write_pairs(store, 0, 7 * 48)
    store.ensure_sensor("empty", source=Source.IMPORTED, interval=STEP)
    names = [f"dask_{i:02d}" for i in range(6)]
    models = ("seasonal_naive", "fourier_linear")
    spec = _forecast_spec(store, None)
    calls: list = []
    fanned = backtest_many_sensors(
        store,
        [*names, "empty", "nope"],
        models,
        lambda n: spec,
        client=None,
        scheduler=scheduler,
        on_progress=_recorder(calls),
    )
    assert list(fanned) == [*names, "empty", "nope"]
    assert calls[-1] == (len(names) + 2, len(names) + 2)
    assert isinstance(fanned["empty"], PlantcastError)  # no readings: said, the others go on
    assert isinstance(fanned["nope"], PlantcastError)
    for name in names:
        _, serial, serial_failed = backtest_sensor(store, name, models, spec)
        found, failed = fanned[name]
        assert failed == serial_failed
        assert list(found) == list(models)
        for model in models:
            assert found[model].metrics == pytest.approx(serial[model].metrics, rel=1e-9)
    forecasts = forecast_many(store, names, lambda n: spec, scheduler=scheduler)
    for name in names:
        here = forecast_sensor(store, name, spec)
        pd.testing.assert_frame_equal(forecasts[name].frame, here.frame)
        assert forecasts[name].chosen == here.chosen == "fourier_linear"


def test_cli_backtests_many_sensors_on_a_scheduler(store, db_url, scheduler):
    import json

    _write_pairs(store, 0, 7 * 48)
    args = ["backtest", "--database-url", db_url, "--scheduler", scheduler, "--format", "json"]
    sensors = ["--sensor", "dask_00", "--sensor", "dask_01"]
    run = CliRunner().invoke(
        cli, [*args, *sensors, "--models", "seasonal_naive,fourier_linear", "--windows", "3"]
    )
    assert run.exit_code == 0, run.output
    payload = json.loads(run.stdout)
    assert set(payload["sensors"]) == {"dask_00", "dask_01"}
    for one in payload["sensors"].values():
        assert one["best"] in {"seasonal_naive", "fourier_linear"}
        assert set(one["models"]) == {"seasonal_naive", "fourier_linear"}
    run = CliRunner().invoke(
        cli,
        ["forecast", "--database-url", db_url, *sensors, "--sensor", "nope", "--format", "csv"],
    )
    assert run.exit_code == 1  # the unknown sensor is said; the others are forecast
    lines = run.stdout.strip().splitlines()
    assert lines[0].startswith("sensor,ts,mean")
    assert {line.split(",")[0] for line in lines[1:]} == {"dask_00", "dask_01"}
    assert "nope: not forecast" in run.output
