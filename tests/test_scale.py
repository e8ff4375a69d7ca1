"""Detection, backtests and forecasts fanned out on Dask write what the serial path writes: on a
real ``dask scheduler`` process with a ``dask worker`` of two processes (through the API and the
CLI's ``--scheduler`` and ``--dask``), and on the real LocalCluster ``--workers N`` starts."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time

import pandas as pd
import psutil
import pytest
from click.testing import CliRunner
from distributed import LocalCluster  # the class ``--workers N`` starts

from plantcast.cli.main import cli
from plantcast.core.errors import PlantcastError
from plantcast.core.types import Source
from plantcast.scale import detect_many
from plantcast.services.detection import DETECTORS, detect_sensor
from plantcast.services.detection_batch import detect_pass
from plantcast.signals import SignalModel, generate_readings
from plantcast.store import Store
from plantcast.store import alerts as alert_rows
from plantcast.store import fits as fit_rows

START = pd.Timestamp("2025-03-01", tz="UTC")
STEP = pd.Timedelta("30min")
N_SENSORS = 8  # two of each kind of anomaly; what is compared is each sensor's result
DAYS = 14


@pytest.fixture(scope="module")
def scheduler(tmp_path_factory):
    """A real ``dask scheduler`` on a free port and a ``dask worker`` of two single-threaded
    processes, in process groups of their own, for the module (start-up costs seconds); both
    stopped (or killed) after, and every process they started gone."""
    from distributed import Client

    where = tmp_path_factory.mktemp("dask")
    info = where / "scheduler.json"
    procs: list[subprocess.Popen] = []
    left: list = []

    def start(module: str, *args: str) -> subprocess.Popen:
        cmd = [sys.executable, "-m", f"distributed.cli.{module}", *args]
        with (where / f"{module.rsplit('.', 1)[-1]}.log").open("wb") as log:
            procs.append(
                subprocess.Popen(cmd, stdout=log, stderr=log, cwd=where, start_new_session=True)
            )
        return procs[-1]

    def address() -> str | None:
        """The scheduler's address once its file is complete."""
        try:
            return json.loads(info.read_text())["address"]
        except (OSError, ValueError, KeyError):
            return None

    def logs() -> str:
        return "\n".join(f.read_text()[-1500:] for f in sorted(where.glob("*.log")))

    try:
        scheduler = start(
            "dask_scheduler",
            *("--host", "127.0.0.1", "--port", "0", "--dashboard-address", "127.0.0.1:0"),
            *("--scheduler-file", str(info)),
        )
        deadline = time.monotonic() + 60
        while (found := address()) is None:
            assert scheduler.poll() is None, f"dask scheduler exited:\n{logs()}"
            assert time.monotonic() < deadline, f"no scheduler file after 60 s:\n{logs()}"
            time.sleep(0.1)
        start(
            "dask_worker",
            found,
            *("--nworkers", "2", "--nthreads", "1", "--no-dashboard", "--host", "127.0.0.1"),
            *("--local-directory", str(where), "--death-timeout", "60"),
        )
        with Client(found, timeout="30s") as client:
            try:
                client.wait_for_workers(2, timeout=60)
            except TimeoutError:
                pytest.fail(f"no dask worker joined the scheduler in 60 s:\n{logs()}")
        yield found
    finally:
        for proc in reversed(procs):  # the worker first: it leaves the scheduler cleanly
            if proc.poll() is None:
                proc.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=20)
        groups = {proc.pid for proc in procs}
        deadline = time.monotonic() + 20
        while (left := _in_groups(groups)) and time.monotonic() < deadline:
            time.sleep(0.2)
        for group in groups:  # killed whatever happens, so that a failure leaves nothing
            with contextlib.suppress(ProcessLookupError):
                os.killpg(group, signal.SIGKILL)
        for proc in procs:
            proc.wait(timeout=10)
    assert not left, f"dask processes left running after SIGTERM: {left}"


def _in_groups(groups: set[int]) -> list:
    """The live processes (not zombies) of these process groups."""
    out = []
    for p in psutil.process_iter(["pid", "status"]):
        with contextlib.suppress(ProcessLookupError, psutil.Error):
            if os.getpgid(p.pid) in groups and p.info["status"] != psutil.STATUS_ZOMBIE:
                out.append(p)
    return out


def _executed(address: str) -> int:
    """Tasks the workers of the scheduler at ``address`` have run so far."""
    from distributed import Client

    with Client(address, timeout="30s") as client:
        return sum(client.run(lambda dask_worker: dask_worker.state.executed_count).values())


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
    """Every sensor's alerts (as rows, sorted), resume points and stored fit (the end of its
    training window), keyed by its number."""
    out = {}
    for i in range(N_SENSORS):
        sensor = store.get_sensor(f"{prefix}_{i:02d}")
        with store.read() as conn:
            marks = {n: alert_rows.get_scored_until(conn, sensor.id, n) for n in DETECTORS}
            rows = alert_rows.list_alerts(conn, sensor_id=sensor.id, limit=10_000)
            fit = fit_rows.get_fit(conn, sensor.id)
        alerts = sorted(
            (a.detector, a.ts, a.ends_at, a.status, round(a.score, 6), round(a.value, 6))
            for a in rows
        )
        out[i] = (alerts, marks, fit and (fit.detectors, fit.trained_until))
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
    alerts = sum(len(a) for a, _, _ in _state(store, "dask").values())
    assert all(fit is not None for _, _, fit in _state(store, "dask").values())  # fits stored
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
    ran = _executed(scheduler)
    args = ["detect", "--database-url", db_url, "--scheduler", scheduler]
    run = CliRunner().invoke(cli, [*args, "--sensor", "dask_00", "--sensor", "nope"])
    assert run.exit_code == 1  # the unknown sensor is reported, dask_00 is scored
    assert "dask_00: scored 144 readings" in run.output
    assert "nope: not scored" in run.output
    assert _executed(scheduler) > ran  # scored by the worker of that scheduler
    assert _state(store, "dask")[0] == _serial_state(store, 0)


def _serial_state(store, i: int):
    """Sensor ``i``'s alerts and resume points after a serial run on ``serial_i``."""
    detect_sensor(store, f"serial_{i:02d}")
    return _state(store, "serial")[i]


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


def _cli(*args: str, code: int = 0):
    run = CliRunner().invoke(cli, list(args))
    assert run.exit_code == code, run.output
    return run


def test_cli_backtests_and_forecasts_many_sensors_on_a_scheduler(store, db_url, scheduler):
    """``backtest`` and ``forecast`` with ``--scheduler``: the work runs on the worker of a
    ``dask scheduler`` process, and the output is the serial one."""
    _write_pairs(store, 0, 7 * 48)
    sensors = ["--sensor", "dask_00", "--sensor", "dask_01"]
    on_dask = ["--scheduler", scheduler]
    backtest = ["backtest", "--database-url", db_url, "--format", "json", *sensors]
    backtest += ["--models", "seasonal_naive,fourier_linear", "--windows", "3"]
    ran = _executed(scheduler)
    payload = json.loads(_cli(*backtest, *on_dask).stdout)
    assert _executed(scheduler) > ran
    assert set(payload["sensors"]) == {"dask_00", "dask_01"}
    serial = json.loads(_cli(*backtest).stdout)["sensors"]
    for name, one in payload["sensors"].items():
        assert one["best"] == serial[name]["best"]
        assert one["best"] in {"seasonal_naive", "fourier_linear"}
        assert set(one["models"]) == {"seasonal_naive", "fourier_linear"}
        for model, metrics in one["models"].items():
            assert metrics == pytest.approx(serial[name]["models"][model], rel=1e-9)
    forecast = ["forecast", "--database-url", db_url, *sensors, "--sensor", "nope"]
    forecast += ["--format", "csv"]
    ran = _executed(scheduler)
    run = _cli(*forecast, *on_dask, code=1)  # the unknown sensor is said; the others forecast
    assert _executed(scheduler) > ran
    lines = run.stdout.strip().splitlines()
    assert lines[0].startswith("sensor,ts,mean")
    assert {line.split(",")[0] for line in lines[1:]} == {"dask_00", "dask_01"}
    assert "nope: not forecast" in run.output
    assert run.stdout == _cli(*forecast, code=1).stdout


def test_cli_dask_takes_the_configured_scheduler_and_workers_a_local_cluster(
    sqlite_url, scheduler, monkeypatch
):
    """``detect --dask`` runs on ``$PLANTCAST_DASK_SCHEDULER``; ``forecast --workers 2``
    starts a LocalCluster of two processes of its own (even with a scheduler configured),
    works on it, and leaves no process behind; both give what the serial path gives."""
    import plantcast.scale.cluster as cluster_module

    with Store.open(sqlite_url) as store:
        store.init()
        _write_pairs(store, 0, 7 * 48)
    monkeypatch.setenv("PLANTCAST_DASK_SCHEDULER", scheduler)
    ran = _executed(scheduler)
    run = _cli("detect", "--database-url", sqlite_url, "--dask", "--sensor", "dask_00")
    assert "dask_00: scored 336 readings" in run.output
    assert _executed(scheduler) > ran
    _cli("detect", "--database-url", sqlite_url, "--sensor", "serial_00")
    with Store.open(sqlite_url) as store:
        assert _state(store, "dask")[0] == _state(store, "serial")[0]

    seen: list[tuple[list[int], int]] = []  # each LocalCluster's worker pids and tasks done

    class Watched(LocalCluster):
        def __exit__(self, *exc):
            tasks = sum(p.state_counts["memory"] for p in self.scheduler.task_prefixes.values())
            seen.append(([w.pid for w in self.scheduler.workers.values()], tasks))
            return super().__exit__(*exc)

    monkeypatch.setattr(cluster_module, "LocalCluster", Watched)
    forecast = ["forecast", "--database-url", sqlite_url, "--format", "csv"]
    forecast += ["--sensor", "dask_00", "--sensor", "dask_01"]
    ran = _executed(scheduler)
    on_cluster = _cli(*forecast, "--workers", "2").stdout
    assert len(seen) == 1 and len(seen[0][0]) == 2 and seen[0][1] > 0, seen
    assert _executed(scheduler) == ran  # not on the configured scheduler
    assert on_cluster == _cli(*forecast).stdout
    deadline = time.monotonic() + 20
    while (left := [p for p in seen[0][0] if _alive(p)]) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not left, f"worker processes left running: {left}"


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
