"""Soak `plantcast serve` on PostgreSQL: a simulated PLC over a local broker, faults injected.

Run: ``.venv/bin/python benchmarks/soak.py [--minutes 30] [--tags 1000] [--forecast-every 1h]
[--forecast-model auto] [--detect-every 2s] [--no-faults] [--restart-postgres CMD]
[--history 2h [--gap SECONDS]] [--pg-url URL] [--plot lag.html]``.

One run, on this machine: a Mosquitto of its own on a free port (persistence on, no queue
limits); a fresh PostgreSQL schema (dropped at the end); a webhook receiver counting what
`notify` delivers; `plantcast serve` with a config of one MQTT connector, detection, forecast
refits, notifications, the API and the page; and a publisher process playing a PLC: ``--tags``
tags at 1 s, QoS 1, each message JSON ``{"ts": <the tick>, "value": …}``, counting every
message the broker acknowledged (tag and tick). Faults, spread over the run: each component
SIGKILLed once, every PostgreSQL session of the soak terminated (the server may be shared, so
by default it is not restarted; ``--restart-postgres CMD`` restarts it instead with CMD, e.g.
``"pg_ctlcluster --skip-systemctl-redirect 15 main restart"``), and the broker stopped and
started again. At the end
the publisher stops, the store is given time to drain, and serve gets SIGTERM.

Printed: readings acknowledged by the broker vs stored (and which acknowledged ones are
missing), restarts per component as `plantcast status` shows them, each component's RSS at
start and end, detection lag (p50/p95/max over the samples), the oldest stored forecast's age,
webhook deliveries, stored vs on-demand forecast latency through the API, and the time serve
took to stop.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import psycopg
from psycopg import sql

from _common import DEFAULT_PG_URL, print_table, progress, rss_mb
from plantcast.testing.mosquitto import MISSING, MOSQUITTO, Mosquitto, free_port, wait_for

PREFIX = "soak"
APP_NAME = "plantcast-soak"  # the sessions the PostgreSQL fault terminates: ours only


# -- the PLC --------------------------------------------------------------------------------
def plc_value(tag, tick):
    """Tag ``tag``'s value at second ``tick`` (numbers, or numpy arrays of them): an hourly
    sine at the tag's own phase and offset."""
    return 50 + 10 * np.sin(2 * np.pi * (tick % 3600) / 3600 + tag) + (tag % 7) * 0.1


def backfill(url: str, tags: int, seconds: int) -> tuple[int, int]:
    """The tags' last ``seconds`` of readings before now, as the PLC would have published
    them (made as the MQTT connector makes its sensors): a plant with a history. How many,
    and the first tick after them (where the PLC takes over, so the history has no gap)."""
    from _common import write_sensors
    from plantcast.core.types import Source
    from plantcast.services.context import open_store

    end = int(time.time())
    ticks = np.arange(end - seconds, end, dtype=np.int64)
    with open_store(url) as store:
        ids = [
            store.ensure_sensor(f"tag{t:04d}", source=Source.MQTT, interval=pd.Timedelta("1s")).id
            for t in range(tags)
        ]
        tag_of = {sid: t for t, sid in enumerate(ids)}
        for lo in range(0, tags, 100):
            part = ids[lo : lo + 100]
            write_sensors(
                store,
                part,
                ticks * 1_000_000,
                lambda sid: np.round(plc_value(tag_of[sid], ticks), 4),
            )
            progress(f"history: {min(lo + 100, tags)} of {tags} tags")
    return tags * seconds, end


def plc(port: int, tags: int, out_path: str, first: int = 0) -> None:
    """Child process: publish every tag once a second until SIGTERM; write the acknowledged
    (tag, tick) pairs to ``out_path`` as JSON {tag: [tick, ...]}. From tick ``first`` when
    given (the end of the history): the ticks since are published at once, as a PLC's buffer
    would forward them, then one a second."""
    import paho.mqtt.client as paho
    from paho.mqtt.enums import CallbackAPIVersion

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    # (tag, tick, info) not yet acknowledged: swept each tick, lock-free (paho marks the info
    # published when the PUBACK arrives; a callback taking a lock of ours could deadlock
    # against publish(), which holds paho's own lock).
    pending: list[tuple[int, int, Any]] = []
    acked: dict[int, list[int]] = {t: [] for t in range(tags)}

    def sweep() -> None:
        still = []
        for t, tick_, info in pending:
            if info._published:  # is_published() raises for one queued while disconnected
                acked[t].append(tick_)
            else:
                still.append((t, tick_, info))
        pending[:] = still

    client = paho.Client(
        CallbackAPIVersion.VERSION2, client_id=f"soak-plc-{os.getpid()}", clean_session=False
    )
    client.max_inflight_messages_set(0)
    client.max_queued_messages_set(0)
    client.reconnect_delay_set(0.2, 2)
    client.connect("127.0.0.1", port)
    client.loop_start()
    tick = first or int(time.time()) + 1
    while not stop.is_set():
        wait = tick - time.time()
        if wait > 0 and stop.wait(wait):
            break
        for t in range(tags):
            value = plc_value(t, tick)
            body = json.dumps({"ts": tick * 1_000_000, "value": round(value, 4)})
            pending.append((t, tick, client.publish(f"{PREFIX}/tag{t:04d}", body, qos=1)))
        sweep()
        tick += 1
    deadline = time.time() + 60  # the last acknowledgements
    while pending and time.time() < deadline:
        time.sleep(0.2)
        sweep()
    client.disconnect()
    client.loop_stop()
    with open(out_path, "w") as f:
        json.dump({str(t): v for t, v in acked.items()}, f)


# -- the webhook receiver -------------------------------------------------------------------
class Receiver:
    def __init__(self) -> None:
        self.count = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver.count += 1
                self.send_response(200)
                self.end_headers()

            def log_message(self, *_args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


# -- helpers ----------------------------------------------------------------------------------
def _plantcast(*args: str, url: str) -> str:
    env = {**os.environ, "PLANTCAST_DATABASE_URL": url}
    done = subprocess.run(
        [sys.executable, "-m", "plantcast", *args], env=env, capture_output=True, text=True
    )
    if done.returncode != 0:
        raise SystemExit(f"plantcast {' '.join(args)} failed: {done.stderr or done.stdout}")
    return done.stdout


def _components(url: str) -> dict:
    from plantcast.services.context import open_store

    with open_store(url) as store:
        return {c.name: c for c in store.list_components()}


def _get(url: str, key: str | None = None, timeout: float = 120) -> tuple[int, bytes]:
    req = urllib.request.Request(url, headers={"X-API-Key": key} if key else {})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return r.status, r.read()


def _config(args, url: str, broker: int, api: int, page: int, metrics: int) -> str:
    return f"""
[database]
url = "{url}"
[[connectors.mqtt]]
name = "plc"
broker = "mqtt://127.0.0.1:{broker}"
topics = ["{PREFIX}/#"]
template = "{PREFIX}/{{sensor}}"
interval = "1s"
[detection]
every = "{args.detect_every}"
[forecasting]
every = "{args.forecast_every}"
model = "{args.forecast_model}"
horizon = "10min"
[api]
port = {api}
[dashboard]
port = {page}
[serve]
metrics_port = {metrics}
status_every = "2s"
"""


# -- the run ----------------------------------------------------------------------------------
class Soak:
    def __init__(self, args) -> None:
        self.args = args
        self.lags: list[float] = []
        self.lag_p95: list[float] = []
        self.lag_at: list[float] = []  # seconds since the soak began, per sample
        self.faults: list[str] = []
        self.fault_at: list[float] = []
        # once a minute: each component's RSS (MB), alerts ongoing, forecasts stored
        self.minutes: list[tuple[float, dict[str, float], int, int]] = []
        self.t0 = time.monotonic()

    def sample(self, url: str) -> None:
        from plantcast.services.context import open_store

        with open_store(url) as store:
            lags = store.lags()
        if lags.detection_lag_s is not None:
            self.lags.append(lags.detection_lag_s)
            self.lag_p95.append(lags.detection_lag_p95_s)
            self.lag_at.append(time.monotonic() - self.t0)

    def sample_minute(self, url: str) -> None:
        """Each component's RSS, and what explains detect's and jobs' memory: the alerts still
        ongoing (their sensors' contexts are read whole, up to 10,080 readings of a 1 s tag)
        and the forecasts stored so far."""
        rss = {n: rss_mb(c.pid) for n, c in _components(url).items() if c.pid}
        with psycopg.connect(_plain(url)) as conn:
            ongoing = conn.execute(
                "SELECT count(DISTINCT sensor_id) FROM alerts WHERE ends_at IS NULL"
            ).fetchone()[0]
            stored = conn.execute("SELECT count(*) FROM forecasts").fetchone()[0]
        at = (time.monotonic() - self.t0) / 60
        self.minutes.append((at, {n: v for n, v in rss.items() if v is not None}, ongoing, stored))

    def note(self, what: str) -> None:
        self.faults.append(f"{time.strftime('%H:%M:%S', time.gmtime())} {what}")
        self.fault_at.append(time.monotonic() - self.t0)
        progress(self.faults[-1])

    def inject(self, kind: str, name: str | None, url: str, broker, started: list) -> None:
        """One fault: a component SIGKILLed, PostgreSQL restarted (or the soak's sessions
        ended), or the broker stopped and started again."""
        if kind == "kill" and name is not None:
            self.kill(url, name)
        elif kind == "sessions" and self.args.restart_postgres:
            self.restart_server(self.args.restart_postgres)
        elif kind == "sessions":
            self.kill_sessions(self.args.pg_url)
        else:
            broker.stop(timeout=30)
            time.sleep(3)
            broker.start()
            started.append(broker.proc)
            self.note("broker stopped (SIGTERM) and started again after 3 s")

    def kill(self, url: str, name: str) -> None:
        c = _components(url).get(name)
        if c is None or not c.pid:
            self.note(f"{name}: not running, not killed")
            return
        os.kill(c.pid, signal.SIGKILL)
        self.note(f"SIGKILL {name} (pid {c.pid})")

    def kill_sessions(self, base_url: str) -> None:
        with psycopg.connect(base_url, autocommit=True) as conn:
            n = conn.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE application_name = %s AND pid <> pg_backend_pid()",
                (APP_NAME,),
            ).fetchone()[0]
        self.note(f"PostgreSQL: {n} session(s) of the soak terminated")

    def restart_server(self, command: str) -> None:
        t0 = time.monotonic()
        done = subprocess.run(shlex.split(command), capture_output=True, text=True)
        if done.returncode:
            raise SystemExit(
                f"--restart-postgres {command!r} failed ({done.returncode}): "
                f"{(done.stderr or done.stdout).strip()}"
            )
        self.note(f"PostgreSQL server restarted ({command}, {time.monotonic() - t0:.1f} s)")


def main(argv: list[str] | None = None) -> None:
    args = _args(argv)
    if args.publish:
        port, tags, out, first = args.publish
        plc(int(port), int(tags), out, int(first))
        return
    if MOSQUITTO is None:
        raise SystemExit(MISSING)
    schema = f"soak_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(args.pg_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    sep = "&" if "?" in args.pg_url else "?"
    url = f"{args.pg_url}{sep}options=-csearch_path%3D{schema}&application_name={APP_NAME}"
    try:
        with tempfile.TemporaryDirectory(prefix="plantcast-soak-") as tmp:
            run(args, url, tmp)
    finally:
        with psycopg.connect(args.pg_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))
        progress(f"dropped schema {schema}")


def run(args, url: str, tmp: str) -> None:
    """The scenario; whatever it started is stopped even when it fails."""
    started: list[subprocess.Popen] = []
    try:
        scenario(args, url, tmp, started)
    finally:
        for proc in reversed(started):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(20)
                except subprocess.TimeoutExpired:
                    proc.kill()


def scenario(args, url: str, tmp: str, started: list) -> None:  # read top to bottom
    soak = Soak(args)
    broker = Mosquitto(Path(tmp), autosave_interval=10)
    broker.start()
    broker_port = broker.port
    started.append(broker.proc)
    receiver = Receiver()
    _plantcast("init", url=url)
    _plantcast("notify", "add", "soak", "--webhook", receiver.url, url=url)
    key = _plantcast("apikey", "create", "--name", "soak", "--scopes", "read", url=url)
    token = [line for line in key.splitlines() if line.strip()][-1].strip()
    history, first = 0, 0
    if args.history:
        seconds = int(pd.Timedelta(args.history).total_seconds())
        history, first = backfill(url, args.tags, seconds)
        first += args.gap
        progress(f"history: {history:,} readings ({args.history} a tag) before serve starts")
    api, page, metrics = free_port(), free_port(), free_port()
    config = os.path.join(tmp, "plant.toml")
    with open(config, "w") as f:
        f.write(_config(args, url, broker_port, api, page, metrics))
    log = open(os.path.join(tmp, "serve.log"), "wb")  # noqa: SIM115
    serve = subprocess.Popen(
        [sys.executable, "-m", "plantcast", "serve", "--config", config],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    started.append(serve)
    names = {"mqtt:plc", "detect", "notify", "api", "dashboard", "jobs"}
    wait_for(
        lambda: (
            (c := _components(url)).keys() == names
            and all(x.state == "running" for x in c.values())
        ),
        180,
        "every component running",
        every=1,
    )
    # The connector's first session is made when it subscribes: what is published before that
    # has no subscriber to be kept for (later restarts resume the session on the broker).
    serve_log = Path(tmp) / "serve.log"
    wait_for(
        lambda: b"subscribed to" in serve_log.read_bytes(), 120, "the connector's subscription", 1
    )
    since = f", first the ticks since the history ended (after a gap of {args.gap} s)"
    progress("serve is up; the PLC starts publishing" + (since if first else ""))
    acked_path = os.path.join(tmp, "acked.json")
    publish = [str(broker_port), str(args.tags), acked_path, str(first)]
    publisher = subprocess.Popen([sys.executable, __file__, "--publish", *publish])
    started.append(publisher)
    time.sleep(min(60, args.minutes * 6))  # a tenth of the run: past start-up
    if history:  # and past detection's first fits of every tag's history
        wait_for(lambda: _scored_tags(url) >= args.tags, 1800, "every tag scored once", every=5)
        progress("detection has scored every tag once: the soak's clock starts")
    rss_start = {n: (rss_mb(c.pid) if c.pid else None) for n, c in _components(url).items()}
    total = args.minutes * 60
    t0 = time.monotonic()
    faults = (
        []
        if args.no_faults
        else [
            ("kill", "mqtt:plc"),
            ("kill", "detect"),
            ("kill", "notify"),
            ("kill", "api"),
            ("kill", "dashboard"),
            ("kill", "jobs"),
            ("sessions", None),
            ("broker", None),
        ]
    )
    at = [0.15 + 0.6 * i / max(len(faults) - 1, 1) for i in range(len(faults))]
    next_minute = 0.0
    while (elapsed := time.monotonic() - t0) < total:
        if elapsed >= next_minute:
            next_minute += 60
            try:
                soak.sample_minute(url)
            except Exception as exc:  # a sample during the database fault
                progress(f"minute sample failed: {exc}")
        if faults and elapsed >= at[0] * total:
            at.pop(0)
            soak.inject(*faults.pop(0), url, broker, started)
        try:
            soak.sample(url)
        except Exception as exc:  # a sample during the database fault
            progress(f"sample failed: {exc}")
        time.sleep(5)
    rss_end = {n: (rss_mb(c.pid) if c.pid else None) for n, c in _components(url).items()}
    progress("stopping the PLC")
    publisher.send_signal(signal.SIGTERM)
    publisher.wait(120)
    with open(acked_path) as f:
        acked = {int(t): set(v) for t, v in json.load(f).items()}
    sent = sum(len(v) for v in acked.values())

    def stored_count() -> int:
        with psycopg.connect(_plain(url)) as conn:
            return conn.execute("SELECT count(*) FROM readings").fetchone()[0]

    last, still = -1, 0
    while still < 3:  # the connector drains what the broker holds
        now = stored_count()
        still = still + 1 if now == last else 0
        last = now
        time.sleep(3)
    missing = _missing(url, acked)
    # stored vs on-demand forecast through the API
    sensor = f"tag{0:04d}"
    stored_ms, demand_ms = _api_latency(api, token, sensor, args)
    oldest = _oldest_forecast(url)
    comps = _components(url)
    report = json.loads(_plantcast("status", "--format", "json", url=url))
    t_stop = time.monotonic()
    serve.send_signal(signal.SIGTERM)
    code = serve.wait(60)
    stop_s = time.monotonic() - t_stop
    broker.stop(timeout=30)
    log.close()

    print_table(
        f"soak: {args.minutes:g} min, {args.tags} tags at 1 s over MQTT, PostgreSQL",
        ["figure", "value"],
        [
            ["readings acknowledged by the broker", f"{sent:,}"],
            [
                "readings stored",
                f"{last - history:,}" + (f" (+ {history:,} of history)" if history else ""),
            ],
            ["acknowledged but not stored", f"{missing:,}"],
            ["detection lag p50 / p95 / max (samples of the most-behind sensor)", _pcts(soak.lags)],
            [
                "detection lag, per-sensor p95 (last sample)",
                f"{soak.lag_p95[-1]:.1f} s" if soak.lag_p95 else "-",
            ],
            ["oldest stored forecast at the end", oldest],
            ["webhook deliveries", str(receiver.count)],
            ["stored forecast via API p50 / p95 (200 GETs)", stored_ms],
            ["on-demand forecast via API (3 GETs, model fourier_linear)", demand_ms],
            ["serve stop on SIGTERM", f"{stop_s:.1f} s (exit {code})"],
        ],
        left=1,
    )
    print_table(
        "components",
        ["component", "restarts", "last error", "RSS start MB", "RSS end MB"],
        [
            [n, c.restarts, (c.last_error or "-")[:40], _mb(rss_start.get(n)), _mb(rss_end.get(n))]
            for n, c in sorted(comps.items())
        ],
        left=1,
    )
    _print_minutes(soak)
    print("\nfaults injected:", *soak.faults, sep="\n  ")
    if args.plot:
        _plot_lag(soak, args.plot)
        print(f"detection lag over time: {args.plot}")
    print(
        "jobs:",
        *(
            f"{j['name']}: {j['runs']} run(s), last {j['last_outcome']}: {j['last_detail']}"
            for j in report["jobs"]
        ),
        sep="\n  ",
    )


def _plot_lag(soak: Soak, path: str) -> None:
    """The detection lag samples over the run, each fault a dashed line: where the lag grew."""
    import plotly.graph_objects as go

    minutes = [t / 60 for t in soak.lag_at]
    fig = go.Figure()
    fig.add_scatter(x=minutes, y=soak.lags, mode="lines+markers", name="most-behind sensor")
    fig.add_scatter(x=minutes, y=soak.lag_p95, mode="lines", name="per-sensor p95")
    for at, what in zip(soak.fault_at, soak.faults, strict=True):
        fig.add_vline(x=at / 60, line_dash="dash", line_color="grey")
        fig.add_annotation(
            x=at / 60,
            y=1,
            yref="paper",
            text=what.split(" ", 1)[1][:24],
            textangle=-90,
            showarrow=False,
            xanchor="right",
            yanchor="top",
        )
    fig.add_hline(y=10, line_color="red", annotation_text="goal: p95 <= 10 s")
    fig.update_layout(
        title=f"soak: detection lag, {soak.args.tags} tags at 1 s",
        xaxis_title="minutes since the soak began",
        yaxis_title="detection lag, s",
    )
    memory = go.Figure()
    at = [m[0] for m in soak.minutes]
    for name in sorted({n for m in soak.minutes for n in m[1]}):
        memory.add_scatter(x=at, y=[m[1].get(name) for m in soak.minutes], name=f"{name} RSS")
    memory.add_scatter(
        x=at, y=[m[2] for m in soak.minutes], name="sensors with an alert ongoing", yaxis="y2"
    )
    memory.update_layout(
        title="RSS of each component, and the sensors whose contexts an ongoing alert widens",
        xaxis_title="minutes since the soak began",
        yaxis={"title": "RSS, MB"},
        yaxis2={"title": "sensors", "overlaying": "y", "side": "right"},
    )
    with open(path, "w") as f:
        f.write(fig.to_html(include_plotlyjs=True, full_html=True))
        f.write(memory.to_html(include_plotlyjs=False, full_html=False))


def _print_minutes(soak: Soak) -> None:
    """detect's and jobs' RSS each few minutes, beside the alerts ongoing and forecasts stored."""
    every = max(1, len(soak.minutes) // 12)
    print_table(
        "over the run",
        ["minute", "detect RSS MB", "jobs RSS MB", "sensors with an alert ongoing", "forecasts"],
        [
            [f"{at:.0f}", _mb(rss.get("detect")), _mb(rss.get("jobs")), f"{ongoing:,}", f"{n:,}"]
            for at, rss, ongoing, n in _every_and_last(soak.minutes, every)
        ],
        left=1,
    )


def _every_and_last(items: list, every: int) -> list:
    """Every ``every``-th item, and the last one once."""
    picked = items[::every]
    return picked + items[-1:] if items and (len(items) - 1) % every else picked


def _mb(v: float | None) -> str:
    return "-" if v is None else f"{v:.0f}"


def _pcts(values: list[float]) -> str:
    if not values:
        return "- (detection scored nothing)"
    q = [values[0]] * 19
    if len(values) > 1:
        q = statistics.quantiles(values, n=20, method="inclusive")
    return f"{statistics.median(values):.1f} / {q[18]:.1f} / {max(values):.1f} s ({len(values)})"


def _plain(url: str) -> str:
    """The soak's URL without its application name (a session the fault does not end)."""
    return url.replace(f"&application_name={APP_NAME}", "")


def _scored_tags(url: str) -> int:
    with psycopg.connect(_plain(url)) as conn:
        return conn.execute("SELECT count(DISTINCT sensor_id) FROM detector_state").fetchone()[0]


def _missing(url: str, acked: dict[int, set[int]]) -> int:
    plain = _plain(url)
    missing: dict[int, int] = {}  # tick -> tags missing it
    with psycopg.connect(plain) as conn:
        for t, ticks in acked.items():
            rows = conn.execute(
                "SELECT (extract(epoch from r.ts))::bigint FROM readings r "
                "JOIN sensors s ON s.id = r.sensor_id WHERE s.name = %s",
                (f"tag{t:04d}",),
            ).fetchall()
            for tick in ticks - {r[0] for r in rows}:
                missing[tick] = missing.get(tick, 0) + 1
        letters = conn.execute("SELECT count(*) FROM dead_letters").fetchone()[0]
    if missing:
        when = ", ".join(
            f"{time.strftime('%H:%M:%S', time.gmtime(t))} ({n})" for t, n in sorted(missing.items())
        )
        progress(f"acknowledged readings not stored, by tick (tags): {when}")
    progress(f"dead letters: {letters}")
    return sum(missing.values())


def _api_latency(port: int, key: str, sensor: str, args) -> tuple[str, str]:
    base = f"http://127.0.0.1:{port}/v1/sensors/{sensor}"
    try:
        _get(f"{base}/forecast/stored", key)
    except Exception as exc:
        return f"- ({exc})", "-"
    times = []
    for _ in range(200):
        t = time.perf_counter()
        _get(f"{base}/forecast/stored", key)
        times.append((time.perf_counter() - t) * 1000)
    q = statistics.quantiles(times, n=20, method="inclusive")
    stored = f"{statistics.median(times):.1f} / {q[18]:.1f} ms"
    demand = []
    for _ in range(3):
        t = time.perf_counter()
        try:
            _get(f"{base}/forecast?model=fourier_linear&horizon=10min", key)
        except Exception as exc:
            return stored, f"- ({exc})"
        demand.append((time.perf_counter() - t) * 1000)
    return stored, " / ".join(f"{d:.0f}" for d in demand) + " ms"


def _oldest_forecast(url: str) -> str:
    with psycopg.connect(_plain(url)) as conn:
        row = conn.execute(
            "SELECT count(*), extract(epoch from now() - min(made_at)) FROM forecasts"
        ).fetchone()
        sensors = conn.execute("SELECT count(*) FROM sensors").fetchone()[0]
    if not row[0]:
        return f"none stored (of {sensors} sensors)"
    return f"{row[1]:.0f} s ({row[0]} of {sensors} sensors have one)"


def _args(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--minutes", type=float, default=30.0)
    p.add_argument("--tags", type=int, default=1000)
    p.add_argument("--forecast-every", default="1h")
    p.add_argument("--forecast-model", default="auto")
    p.add_argument(
        "--detect-every",
        default="2s",
        help="detection's pace (a pass starts at most this often; the lag is about this plus a"
        " pass)",
    )
    p.add_argument("--no-faults", action="store_true")
    p.add_argument(
        "--history",
        metavar="DURATION",
        help="give each tag this much history before serve starts (e.g. 2h): a plant that has"
        " been running, whose detection contexts and fits are grown; the soak's clock starts"
        " once detection has scored every tag",
    )
    p.add_argument(
        "--gap",
        type=int,
        default=0,
        metavar="SECONDS",
        help="with --history: the PLC takes over this many seconds after the history ends, a"
        " plant-wide dropout (every tag's alert ongoing for resolve_after, 2 h)",
    )
    p.add_argument(
        "--restart-postgres",
        metavar="CMD",
        help="restart the server with this command instead of terminating the soak's sessions",
    )
    p.add_argument("--pg-url", default=DEFAULT_PG_URL)
    p.add_argument(
        "--plot", metavar="HTML", help="write the detection lag over the run, faults marked"
    )
    p.add_argument("--publish", nargs=4, help=argparse.SUPPRESS)
    return p.parse_args(argv)


if __name__ == "__main__":
    main()
