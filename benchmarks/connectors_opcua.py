"""OPC UA connector: 1,000 monitored items at a 1 s sampling interval, held without backlog?

A simulated PLC (``plantcast simulate-plc opcua``, its own process) serves N Double variables
that all change every second; ``OpcuaConnector`` (this process) subscribes to them and writes
to PostgreSQL (a scratch schema) or SQLite. After a warm-up, over the measured window it prints
the updates received per second beside those expected (N / interval), the lag from a value's
source timestamp to the commit of its batch (p50, p95, max; first half against second half:
a growing lag is a backlog), and the values still waiting to be written at the end.

    .venv/bin/python benchmarks/connectors_opcua.py            # 1,000 items, 30 s measured
    .venv/bin/python benchmarks/connectors_opcua.py --quick    # 15 s measured
    .venv/bin/python benchmarks/connectors_opcua.py --items 2000 --no-pg
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import numpy as np
import pandas as pd

from _common import DEFAULT_PG_URL, pg_version, print_table, progress, scratch
from plantcast.ingest.connectors.opcua import OpcuaConnector
from plantcast.ingest.connectors.opcua_nodes import parse_spec
from plantcast.store import Store


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_plc(port: int, names: list[str], interval: str) -> subprocess.Popen:
    env = {
        k: v for k, v in os.environ.items() if k not in ("PLANTCAST_DATABASE_URL", "DATABASE_URL")
    }
    sensors = [a for n in names for a in ("--sensor", n)]
    cmd = [sys.executable, "-m", "plantcast", "simulate-plc", "opcua"]
    args = ["--endpoint", f"opc.tcp://127.0.0.1:{port}", "--interval", interval, *sensors]
    return subprocess.Popen([*cmd, *args], env=env, stdout=subprocess.DEVNULL)


class Recorder:
    """Commit-time lags of every committed reading, and the connector's queue over time."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.measuring_since: float | None = None
        self.lags: list[np.ndarray] = []
        self.commit_times: list[float] = []

    def on_commit(self, ts_us: np.ndarray, committed_at: float) -> None:
        if self.measuring_since is None or committed_at < self.measuring_since:
            return
        with self.lock:
            self.lags.append(committed_at - ts_us / 1e6)
            self.commit_times.append(committed_at)


def run(url: str, engine: str, items: int, interval: str, warmup: float, seconds: float) -> list:
    names = [f"bench_{i:04d}" for i in range(items)]
    port = _free_port()
    plc = _start_plc(port, names, interval)
    store = Store.open(url)
    store.init()
    recorder = Recorder()
    connector = OpcuaConnector(
        store,
        f"opc.tcp://127.0.0.1:{port}",
        [parse_spec(f"ns=2;s={n}") for n in names],
        sampling_interval=pd.Timedelta(interval),
        on_commit=recorder.on_commit,
        start_timeout=120,
    )
    thread = threading.Thread(target=connector.run)
    thread.start()
    try:
        deadline = time.monotonic() + 180
        while not connector.connected.is_set():
            if time.monotonic() > deadline or plc.poll() is not None:
                raise SystemExit("the simulated PLC or the subscription did not come up")
            time.sleep(0.2)
        progress(f"{engine}: subscribed to {items:,} items; warming up {warmup:g} s")
        time.sleep(warmup)
        received0, stored0 = connector.stats.received, connector.stats.stored
        recorder.measuring_since = time.time()
        t0 = time.monotonic()
        max_queue = 0
        while time.monotonic() - t0 < seconds:
            time.sleep(0.1)
            max_queue = max(max_queue, len(connector._pending))
        elapsed = time.monotonic() - t0
        received = connector.stats.received - received0
        stored = connector.stats.stored - stored0
        queue_end = len(connector._pending)
    finally:
        connector.stop()
        thread.join(60)
        plc.send_signal(signal.SIGTERM)
        plc.wait(30)
        store.close()
    with recorder.lock:
        lags = np.concatenate(recorder.lags) if recorder.lags else np.array([np.nan])
        half = len(recorder.lags) // 2
        first = np.concatenate(recorder.lags[:half]) if half else lags
        second = np.concatenate(recorder.lags[half:]) if half else lags
    expected = items / pd.Timedelta(interval).total_seconds()
    return [
        engine,
        f"{items:,}",
        interval,
        f"{elapsed:.0f} s",
        f"{received / elapsed:,.0f}",
        f"{expected:,.0f}",
        f"{stored / elapsed:,.0f}",
        f"{np.percentile(lags, 50):.3f}",
        f"{np.percentile(lags, 95):.3f}",
        f"{np.max(lags):.3f}",
        f"{np.percentile(first, 95):.3f} / {np.percentile(second, 95):.3f}",
        f"{max_queue:,} / {queue_end:,}",
        f"{connector.stats.bad:,}",
    ]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=1000, help="monitored items (1,000)")
    parser.add_argument("--interval", default="1s", help="sampling interval (1s)")
    parser.add_argument("--seconds", type=float, default=30.0, help="measured window (30)")
    parser.add_argument("--warmup", type=float, default=5.0, help="seconds before measuring")
    parser.add_argument("--quick", action="store_true", help="a 15 s window")
    pg = parser.add_mutually_exclusive_group()
    pg.add_argument("--pg-url", default=DEFAULT_PG_URL, help="PostgreSQL server to use")
    pg.add_argument("--no-pg", action="store_true", help="SQLite only")
    args = parser.parse_args(argv)
    seconds = 15.0 if args.quick else args.seconds
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("asyncua").setLevel(logging.ERROR)
    rows = []
    pg_url = None if args.no_pg else args.pg_url
    if pg_url and pg_version(pg_url) is None:
        pg_url = None
    with scratch(pg_url) as (tmpdir, schemas):
        targets = [("sqlite", f"sqlite:///{tmpdir}/opcua.db")]
        if schemas is not None:
            targets.insert(0, ("postgresql", schemas.create("opcua")))
        for engine, url in targets:
            rows.append(run(url, engine, args.items, args.interval, args.warmup, seconds))
    print_table(
        "OPC UA connector: monitored items held at their sampling interval "
        "(lag = commit time − source timestamp, seconds)",
        [
            "engine",
            "items",
            "interval",
            "window",
            "updates/s",
            "expected/s",
            "stored/s",
            "lag p50",
            "lag p95",
            "lag max",
            "p95 1st/2nd half",
            "queue max/end",
            "dead letters",
        ],
        rows,
        left=1,
    )


if __name__ == "__main__":
    main()
