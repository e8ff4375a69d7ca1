"""The streamer: pace and resume, exactly-once through PostgreSQL outages, SQLite concurrency."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid

import pandas as pd
import psycopg
import pytest

from plantcast.ingest.backfill import backfill
from plantcast.ingest.stream import Streamer
from plantcast.store import Store

STEP = pd.Timedelta("30min")


def _plantcast(url: str, *args: str, **kw) -> subprocess.Popen:
    env = {**os.environ, "PLANTCAST_DATABASE_URL": url}
    return subprocess.Popen(
        [sys.executable, "-m", "plantcast", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kw,
    )


def test_stream_resumes_after_the_last_reading(store):
    r = backfill(store, "reservoir_pressure", days=1, interval=STEP, end="2026-01-02")
    assert r.rows == 49
    stats = Streamer(store, ["reservoir_pressure"], tick=0, step=STEP, count=10).run()
    assert stats.written == 10
    s = store.get_sensor("reservoir_pressure")
    got = store.read_series(s.id, "2026-01-01", "2026-01-03")
    expected = pd.date_range("2026-01-01", periods=59, freq=STEP, tz="UTC")
    assert list(got.index) == list(expected)
    # Run again: it continues, never rewrites or skips.
    Streamer(store, ["reservoir_pressure"], tick=0, step=STEP, count=3).run()
    assert store.last_timestamp(s.id) == expected[-1] + 3 * STEP
    assert store.count_readings(s.id) == 62


def test_stream_paces_by_tick(store):
    t0 = time.monotonic()
    Streamer(store, ["reservoir_pressure"], tick=0.2, step=STEP, count=5).run()
    assert 0.8 <= time.monotonic() - t0 < 3.0


def test_backfill_is_idempotent(store):
    a = backfill(store, "reservoir_pressure", days=3, interval=STEP, end="2026-01-04")
    b = backfill(store, "reservoir_pressure", days=3, interval=STEP, end="2026-01-04")
    assert a.rows == b.rows == 145
    assert store.count_readings(store.get_sensor("reservoir_pressure").id) == 145


@pytest.mark.postgres
@pytest.mark.timeout(180)
def test_stream_survives_killed_connections_exactly_once(pg_url):
    store = Store.open(pg_url)
    store.init()
    backfill(store, "reservoir_pressure", days=1, interval=STEP, end="2026-01-02")
    sensor = store.get_sensor("reservoir_pressure")
    app = f"pc_fault_{uuid.uuid4().hex[:8]}"  # kill this streamer's connections, no one else's
    # Unbounded, stopped by SIGTERM after the kills (a fixed count took a minute to write).
    proc = _plantcast(f"{pg_url}&application_name={app}", "stream", "--tick", "0")
    kills = 0
    admin = psycopg.connect(pg_url.split("?")[0].replace("+psycopg", ""), autocommit=True)
    deadline = time.monotonic() + 120
    # Kills start once it streams (a database down at start-up: the test below).
    while proc.poll() is None and store.count_readings(sensor.id) <= 49:
        assert time.monotonic() < deadline, "the streamer wrote nothing in 120 s"
        time.sleep(0.05)
    while proc.poll() is None and kills < 6 and time.monotonic() < deadline:
        time.sleep(0.4)
        n = admin.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE application_name = %s AND pid <> pg_backend_pid()",
            (app,),
        ).fetchone()[0]
        kills += 1 if n else 0
    time.sleep(0.5)  # a few writes after the last kill
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    admin.close()
    assert proc.returncode == 0, err
    assert kills == 6, f"only {kills} kills hit the streamer's connections"
    written = int(out.split("wrote ")[1].split(";")[0].replace(",", ""))
    assert written > 0, out
    got = store.read_series(sensor.id, "2026-01-01", "2030-01-01")
    expected = pd.date_range("2026-01-01", periods=49 + written, freq=STEP, tz="UTC")
    assert got.index.is_unique
    assert list(got.index) == list(expected)
    store.close()


@pytest.mark.timeout(120)
def test_sqlite_streamer_and_reader_coexist(sqlite_url, tmp_path):
    store = Store.open(sqlite_url)
    store.init()
    backfill(store, "reservoir_pressure", days=30, interval=STEP, end="2026-02-01")
    store.close()
    streamer = _plantcast(sqlite_url, "stream", "--tick", "0")
    reader_code = textwrap.dedent(
        f"""
        import time, pandas as pd
        from plantcast.store import Store
        s = Store.open({sqlite_url!r}); sid = s.get_sensor("reservoir_pressure").id
        n, seen, t0 = 0, set(), time.monotonic()
        while time.monotonic() - t0 < 10:
            last = s.last_timestamp(sid); seen.add(last)
            s.read_buckets(sid, last - pd.Timedelta("30d"), last, 500); n += 1
        print("reads", n, "saw", len(seen))
        """
    )
    reader = subprocess.run(
        [sys.executable, "-c", reader_code], capture_output=True, text=True, timeout=60
    )
    streamer.send_signal(signal.SIGTERM)
    out, err = streamer.communicate(timeout=60)
    assert reader.returncode == 0, reader.stderr
    assert "locked" not in reader.stderr + err
    _, reads, _, saw = reader.stdout.split()
    # Coexistence, not speed: the reader kept reading while it watched the streamer's writes
    # land (the counts depend on how busy the machine is, so only their floor is asserted).
    assert int(reads) >= int(saw) >= 3
    assert streamer.returncode == 0, err
    assert "0 failed write attempt(s)" in out
    written = int(out.split("wrote ")[1].split(";")[0].replace(",", ""))
    assert written >= int(saw) - 1
    check = Store.open(sqlite_url)
    assert check.count_readings(check.get_sensor("reservoir_pressure").id) == 1441 + written
    check.close()


class _Forwarder:
    """A TCP port that forwards to the PostgreSQL server once opened: a database that comes
    up after the streamer started (nothing listens on the port before ``open``)."""

    def __init__(self, target: tuple[str, int]) -> None:
        import socket

        self.target = target
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        self.port = probe.getsockname()[1]
        probe.close()  # free until open(): connections to it are refused
        self.server: socket.socket | None = None

    def open(self) -> None:
        import socket
        import threading

        self.server = socket.create_server(("127.0.0.1", self.port))
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        import socket
        import threading

        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src, dst) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(2)

    def close(self) -> None:
        if self.server is not None:
            self.server.close()


@pytest.mark.postgres
@pytest.mark.timeout(120)
def test_stream_waits_for_a_database_that_is_not_up_yet(pg_url):
    """Unreachable at start-up (init, the sensor list): it says so, retries, and streams once
    the server answers; SIGTERM then stops it cleanly."""
    from urllib.parse import urlsplit

    parts = urlsplit(pg_url)
    fwd = _Forwarder((parts.hostname or "127.0.0.1", parts.port or 5432))
    late_url = pg_url.replace(f"{parts.hostname}:{parts.port or 5432}", f"127.0.0.1:{fwd.port}")
    assert late_url != pg_url
    proc = _plantcast(late_url, "stream", "--tick", "50ms", "--sensor", "reservoir_pressure")
    try:
        seen = ""
        deadline = time.monotonic() + 30
        while "database unavailable at start" not in seen:
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "no retry message in 30 s"
            seen += _read_some(proc)
        fwd.open()  # the server "comes up"
        store = Store.open(pg_url)
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "nothing streamed 60 s after the server came up"
            try:
                if store.count_readings(store.get_sensor("reservoir_pressure").id) >= 3:
                    break
            except Exception:
                pass  # the streamer has not created its tables or sensor yet
            time.sleep(0.2)
        store.close()
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        assert "wrote" in out
    finally:
        if proc.poll() is None:
            proc.kill()
        fwd.close()


def _read_some(proc: subprocess.Popen) -> str:
    """What the process printed so far on either stream (non-blocking)."""
    import select

    got = ""
    ready, _, _ = select.select([proc.stdout, proc.stderr], [], [], 0.5)
    for stream in ready:
        got += os.read(stream.fileno(), 4096).decode(errors="replace")
    return got
