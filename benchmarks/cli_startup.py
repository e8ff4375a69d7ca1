"""CLI start-up: median wall time and peak RSS of `plantcast --help`, a real `plantcast alerts`
(200 alerts on a small SQLite file, the newest 50 printed), a real `plantcast inject` (an event
written on a simulated sensor) and `plantcast sensors`, each run N times in a fresh process.

Beside them, the floor they stand on: the interpreter alone and the libraries the store path
needs (`alerts` and `inject` read the store: SQLAlchemy, and pandas for its time values).

    python benchmarks/cli_startup.py [--runs 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import print_table, progress

GOAL_S = 0.3
ALERTS = 200


# GNU time reports the command's own peak RSS (a forked child's counter would start from
# this process's size); without it, the figure is an upper bound.
GNU_TIME = "/usr/bin/time" if Path("/usr/bin/time").exists() else None


def _run(argv: list[str], env: dict) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of one run in a fresh process."""
    wrapped = [GNU_TIME, "-f", "maxrss_kb=%M", *argv] if GNU_TIME else argv
    t0 = time.perf_counter()
    proc = subprocess.Popen(wrapped, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    err = proc.stderr.read().decode() if proc.stderr else ""
    proc.stderr.close()
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({proc.returncode}): {err.strip()}")
    rss_kb = usage.ru_maxrss  # Linux: kilobytes
    for line in err.splitlines():
        if line.startswith("maxrss_kb="):
            rss_kb = int(line.removeprefix("maxrss_kb="))
    return wall, rss_kb / 1024


def measure(name: str, argv: list[str], runs: int, env: dict, goal: bool) -> list:
    _run(argv, env)  # warm the file cache: the figures are start-up, not disk
    walls, rss = zip(*(_run(argv, env) for _ in range(runs)), strict=True)
    median = statistics.median(walls)
    verdict = ("ok" if median <= GOAL_S else "over") if goal else ""
    progress(f"{name}: median {median:.3f} s")
    return [
        name,
        f"{median:.3f}",
        f"{min(walls):.3f}",
        f"{max(walls):.3f}",
        f"{max(rss):.0f}",
        verdict,
    ]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="runs per command (default 5)")
    args = parser.parse_args(argv)
    exe = str(Path(sys.executable).with_name("plantcast"))
    py = sys.executable
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        env = {**os.environ, "PLANTCAST_DATABASE_URL": url}
        sensor = "reservoir_pressure"
        subprocess.run([exe, "backfill", "--sensor", sensor, "--days", "2"], env=env, check=True)
        _add_alerts(url, sensor, ALERTS)
        inject = [exe, "inject", "--sensor", sensor, "--kind", "spike", "--magnitude", "5"]
        commands = [
            ("plantcast --help", [exe, "--help"], True),
            (f"plantcast alerts ({ALERTS} stored)", [exe, "alerts"], True),
            ("plantcast inject --kind spike", inject, True),
            ("plantcast inject --help", [exe, "inject", "--help"], False),
            ("plantcast sensors", [exe, "sensors"], False),
            ("python -c pass", [py, "-c", "pass"], False),
            ("python: import click", [py, "-c", "import click"], False),
            ("python: import sqlalchemy", [py, "-c", "import sqlalchemy"], False),
            ("python: import pandas", [py, "-c", "import pandas"], False),
            ("python: import sqlalchemy, pandas", [py, "-c", "import sqlalchemy, pandas"], False),
            ("python: import pydantic_settings", [py, "-c", "import pydantic_settings"], False),
        ]
        rows = [measure(n, a, args.runs, env, g) for n, a, g in commands]
    print_table(
        f"CLI start-up, {args.runs} runs each (goal: median ≤ {GOAL_S} s), load {_load()}",
        ["command", "median s", "min s", "max s", "peak RSS MB", "goal"],
        rows,
        left=1,
    )


def _add_alerts(url: str, sensor: str, n: int) -> None:
    """``n`` closed alerts an hour apart on ``sensor``: what `alerts` lists."""
    import pandas as pd

    from plantcast.store import Store
    from plantcast.store import alerts as alert_rows

    start = pd.Timestamp("2026-01-01", tz="UTC")
    with Store.open(url) as store, store.write() as conn:
        sid = store.get_sensor(sensor).id
        for i in range(n):
            ts = start + pd.Timedelta(hours=i)
            alert_rows.insert_alert(
                conn, sid, detector="residual_z", ts=ts, ends_at=ts, score=6.0, value=1.0
            )


def _load() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "?"


if __name__ == "__main__":
    main()
