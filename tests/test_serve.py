"""`plantcast serve` from a short config, as real processes on SQLite and PostgreSQL: every
component started and shown by `status`, /health and /metrics; one SIGKILLed component
restarted by itself while the others run on; SIGTERM stops them all and exits 0."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from plantcast.cli.main import cli
from plantcast.services.context import open_store
from plantcast.store.health import ComponentState, JobState

pytestmark = [pytest.mark.timeout(240), pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[1]
WAIT = 120.0  # a shared 2-core machine: starting four Python processes may take a while


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _config(tmp_path, db_url: str, api_port: int, metrics_port: int) -> str:
    path = tmp_path / "plant.toml"
    path.write_text(
        f"""
[database]
url = "{db_url}"
[detection]
every = "2s"
[api]
port = {api_port}
[dashboard]
enabled = false
[jobs]
reports_dir = "{tmp_path / "reports"}"
[serve]
metrics_port = {metrics_port}
status_every = "1s"
backoff = "1s"
log_format = "json"
"""
    )
    return str(path)


def _wait(what: str, check, timeout: float = WAIT):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def _states(store) -> dict[str, ComponentState]:
    return {c.name: c for c in store.list_components()}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _get(url: str) -> tuple[int, str]:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.status, response.read().decode()


def test_serve_runs_restarts_a_killed_component_and_stops_on_sigterm(db_url, tmp_path):
    api_port, metrics_port = _free_port(), _free_port()
    path = _config(tmp_path, db_url, api_port, metrics_port)
    log = open(tmp_path / "serve.log", "wb")  # noqa: SIM115  # closed below
    serve = subprocess.Popen(
        [sys.executable, "-m", "plantcast", "serve", "--config", path],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    names = {"detect", "notify", "api", "jobs"}
    try:
        with open_store(db_url, init=True) as store:
            first = _wait(
                "every component running",
                lambda: (
                    (s := _states(store)).keys() == names
                    and all(c.state == "running" and c.pid for c in s.values())
                    and s
                ),
            )
            # the jobs component has run each job once at start
            _wait("the jobs' first runs", lambda: len(store.list_jobs()) == 5)
            jobs = {j.name: j for j in store.list_jobs()}
            assert all(j.last_outcome == "ok" for j in jobs.values()), jobs

            victim = first["notify"].pid
            os.kill(victim, signal.SIGKILL)
            again = _wait(
                "notify restarted",
                lambda: (
                    (s := _states(store))["notify"].restarts == 1
                    and s["notify"].state == "running"
                    and s
                ),
            )
            assert again["notify"].pid != victim
            assert "killed by SIGKILL" in (again["notify"].last_error or "")
            for name in names - {"notify"}:  # the others ran on untouched
                assert again[name].pid == first[name].pid and again[name].restarts == 0

            shown = CliRunner().invoke(cli, ["status", "--config", path])
            assert shown.exit_code == 0, shown.output
            assert "serve: running (4 components)" in shown.output
            as_json = CliRunner().invoke(cli, ["status", "--config", path, "--format", "json"])
            report = json.loads(as_json.output)
            notify = next(c for c in report["components"] if c["name"] == "notify")
            assert notify["restarts"] == 1 and notify["last_exit"] == -9
            assert {j["name"] for j in report["jobs"]} == set(jobs)
            assert report["lags"]["outbox_depth"] == 0

            status, body = _wait("the API", lambda: _try(f"http://127.0.0.1:{api_port}/health"))
            health = json.loads(body)
            assert status == 200 and health["serve"]["state"] == "running"
            restarts = {c["name"]: c["restarts"] for c in health["serve"]["components"]}
            assert restarts == {"api": 0, "detect": 0, "jobs": 0, "notify": 1}

            _, metrics = _get(f"http://127.0.0.1:{metrics_port}/metrics")
            assert 'plantcast_component_restarts_total{component="notify"} 1.0' in metrics
            assert 'plantcast_component_up{component="api"} 1.0' in metrics
            assert "plantcast_store_up 1.0" in metrics
            assert 'plantcast_job_runs_total{job="retention",outcome="ok"}' in metrics
            # every series the Grafana dashboard draws is served (the API's by the API)
            exported = set(re.findall(r"^(plantcast_\w+)", metrics, flags=re.M))
            exported |= {"plantcast_api_request_seconds_bucket", "plantcast_api_requests_total"}
            assert _dashboard_series() <= exported

            pids = [c.pid for c in _states(store).values()]
            serve.send_signal(signal.SIGTERM)
            assert serve.wait(timeout=60) == 0
            stopped = _states(store)
            assert {c.state for c in stopped.values()} == {"stopped"}
            assert not [pid for pid in pids if _alive(pid)]
            shown = CliRunner().invoke(cli, ["status", "--config", path])
            assert "serve: stopped" in shown.output
    finally:
        if serve.poll() is None:
            os.killpg(serve.pid, signal.SIGKILL)
        log.close()
    lines = (tmp_path / "serve.log").read_text().splitlines()
    records = [json.loads(line) for line in lines if line.startswith("{")]
    assert len(records) == len(lines), "every line serve writes is a JSON record"
    assert {"serve", "notify", "api", "jobs"} <= {r.get("component") for r in records}


def _dashboard_series() -> set[str]:
    dashboard = json.loads((ROOT / "deploy" / "grafana" / "plantcast.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    return {name for e in exprs for name in re.findall(r"plantcast_\w+", e)}


def _try(url: str):
    try:
        return _get(url)
    except OSError:
        return None


def test_status_before_any_serve_and_a_job_recorded(db_url):
    with open_store(db_url, init=True) as store:
        result = CliRunner().invoke(cli, ["status", "--database-url", db_url])
        assert result.exit_code == 0, result.output
        assert "serve: never" in result.output
        assert "no component has run" in result.output
        store.put_job(JobState("retention", runs=3, failures=1, last_outcome="failed"))
        store.put_components([ComponentState("detect", "backoff", restarts=2, last_exit=1)])
        store.put_components([ComponentState("api", "running", pid=1)], only=True)
        assert [c.name for c in store.list_components()] == ["api"]
        assert store.get_job("retention").failures == 1


def test_jobs_run_once_record_their_outcome(db_url, tmp_path):
    runner = CliRunner()
    made = runner.invoke(cli, ["backfill", "--database-url", db_url, "--days", "10"])
    assert made.exit_code == 0, made.output
    path = tmp_path / "plant.toml"
    path.write_text(
        f'[database]\nurl = "{db_url}"\n[retention]\nkeep = "7d"\n'
        '[forecasting]\nmodel = "seasonal_naive"\nhorizon = "6h"\n'
        f'[jobs]\nreports_dir = "{tmp_path / "reports"}"\n'
    )
    names = ["partitions", "retention", "seasons", "forecasts", "reports"]
    result = runner.invoke(cli, ["jobs", "--config", str(path), *(f"--run={n}" for n in names)])
    assert result.exit_code == 0, result.output
    # 3 of the 10 days at 30 min: 144 readings, or 145 when the cutoff falls on one
    assert re.search(r"retention: ok: removed 14[45] readings older than 7d", result.output)
    assert "forecasts: ok: 1 of 1 sensor(s) refitted" in result.output
    report = next((tmp_path / "reports").glob("backtests-*.csv")).read_text().splitlines()
    assert report[0].startswith("sensor,model,chosen,made_at,stale,") and "mase" in report[0]
    assert report[1].startswith("reservoir_pressure,seasonal_naive,seasonal_naive,")
    with open_store(db_url) as store:
        jobs = {j.name: j for j in store.list_jobs()}
        assert set(jobs) == set(names)
        assert all(
            j.runs == 1 and j.failures == 0 and j.last_outcome == "ok" for j in jobs.values()
        )
        assert jobs["forecasts"].next_run_at > jobs["forecasts"].last_started_at
    unknown = runner.invoke(cli, ["jobs", "--config", str(path), "--run", "vacuum"])
    assert unknown.exit_code == 2
    assert "vacuum: the jobs are partitions, retention, seasons, forecasts, reports" in (
        unknown.output
    )


def test_a_failed_job_is_tried_again_soon_not_a_period_later(db_url):
    """An hourly job whose run fails (the database restarting, say) runs again ``retry_s``
    later; its record says so, and once it succeeds it keeps its period."""
    import threading

    from plantcast.serve.config import PlantConfig
    from plantcast.serve.jobs import Job, run_scheduler

    calls: list[float] = []

    def flaky(_store, _config, _stop) -> str:
        calls.append(time.monotonic())
        if len(calls) == 1:
            raise ConnectionError("the database is restarting")
        return "done"

    config = PlantConfig.model_validate({"database": {"url": db_url}})
    stop = threading.Event()
    with open_store(db_url, init=True) as store:
        thread = threading.Thread(
            target=run_scheduler,
            args=(store, config, stop),
            kwargs={"jobs": [Job("flaky", 3600.0, flaky)], "retry_s": 1.0},
        )
        thread.start()
        try:
            deadline = time.monotonic() + 30
            while len(calls) < 2 and time.monotonic() < deadline:
                time.sleep(0.1)
        finally:
            stop.set()
            thread.join(timeout=30)
        assert len(calls) == 2 and 0.9 < calls[1] - calls[0] < 20  # a second, not an hour
        job = store.get_job("flaky")
        assert (job.runs, job.failures, job.last_outcome) == (2, 1, "ok")
        assert job.next_run_at - job.last_started_at == pd.Timedelta(hours=1)


def test_a_sensor_too_young_for_a_forecast_has_one_at_the_jobs_next_look(db_url):
    """The forecasts job looks six times a period: a sensor too young at one run is refitted
    at the next look, while the forecasts it made are not due before the period is over."""
    from plantcast.ingest.backfill import backfill
    from plantcast.serve.config import PlantConfig
    from plantcast.serve.jobs import forecast_checks, forecasts_job, plan
    from plantcast.services.forecast_store import list_stored

    config = PlantConfig.model_validate(
        {
            "database": {"url": db_url},
            "forecasting": {"model": "seasonal_naive", "horizon": "6h", "every": "1h"},
        }
    )
    import threading

    (job,) = [j for j in plan(config) if j.name == "forecasts"]
    assert job.every_s == 600.0  # not 3,600: a young sensor waits 10 minutes
    assert forecast_checks(3600.0)[1] == pd.Timedelta("50min")  # refitted before 1 h old
    assert forecast_checks(60.0) == (60.0, pd.Timedelta("54s"))  # a short period: as before
    with open_store(db_url, init=True) as store:
        backfill(store, "old", days=10, interval=pd.Timedelta("30min"))
        young = backfill(store, "young", days=0.05, interval=pd.Timedelta("30min"))
        first = forecasts_job(store, config, threading.Event())
        assert first.startswith("1 of 2 sensor(s) refitted") and "1 failed" in first
        assert young.rows > 0 and [v.row.sensor for v in list_stored(store)] == ["old"]
        backfill(store, "young", days=10, interval=pd.Timedelta("30min"))
        second = forecasts_job(store, config, threading.Event())
        assert second.startswith("1 of 2 sensor(s) refitted") and "1 not due" in second
        assert "failed" not in second
        assert sorted(v.row.sensor for v in list_stored(store)) == ["old", "young"]


def test_jobs_run_at_lower_priority_and_a_sigterm_stops_a_refit_between_sensors(db_url, tmp_path):
    """Twenty sensors' `auto` refits take far longer than serve's 10 s stop limit: SIGTERM
    ends the running refresh after the sensor it is on, keeping what it stored."""
    import pandas as pd

    from plantcast.ingest.backfill import backfill
    from plantcast.services.forecast_store import list_stored

    names = [f"tag{i:02d}" for i in range(20)]
    with open_store(db_url, init=True) as store:
        for name in names:
            backfill(store, name, days=20, interval=pd.Timedelta("30min"))
    path = tmp_path / "plant.toml"
    path.write_text(
        f'[database]\nurl = "{db_url}"\n[forecasting]\nmodel = "auto"\n'
        f'[jobs]\nnice = 7\nreports_dir = "{tmp_path / "reports"}"\n'
    )
    jobs = subprocess.Popen(
        [sys.executable, "-m", "plantcast", "jobs", "--config", str(path)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        with open_store(db_url) as store:
            _wait("a first stored forecast", lambda: list_stored(store))
            nice = int(Path(f"/proc/{jobs.pid}/stat").read_text().rsplit(")", 1)[1].split()[16])
            assert nice == 7
            jobs.send_signal(signal.SIGTERM)
            asked = time.monotonic()
            jobs.wait(timeout=30)
            assert time.monotonic() - asked < 10, "the refit ran on past the stop limit"
            assert jobs.returncode == 0, jobs.stderr.read() if jobs.stderr else ""
            made = len(list_stored(store))
            assert 0 < made < len(names)
            state = store.get_job("forecasts")
            assert state is not None and state.last_outcome == "ok"
            assert f"{len(names) - made} left for the next run (stopping)" in state.last_detail
    finally:
        if jobs.poll() is None:
            jobs.kill()
