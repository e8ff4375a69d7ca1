"""Benchmark one live-dashboard refresh: plantcast's bounded, cached path vs the reference demo's.

Run: ``.venv/bin/python benchmarks/dashboard.py [--quick | --full] [--pg-url URL | --no-pg]``.

A refresh is what the page's live fragment does on the server: ``services.live.refresh`` (window
read, forecasts of fourier_linear, svr and random_forest, events, alerts) + ``live_figure`` +
``fig.to_json()`` (what Streamlit serialises), over a 3-day window with a 1-day horizon.
It is timed two ways: *warm* (nothing changed since the last refresh: cached fits) and *new
reading each refresh* (one reading written before each refresh, untimed, as the streamer does in
the live demo). As on the page (``Forecasting(background=True)``), a new reading's refits and
interval calibrations run on a background thread while the refresh forecasts from the latest
reading with the previous fit; back-to-back refreshes here compete with that thread for the CPU.

The sensor is the demo's signal at the demo's 30-minute interval; histories grow backwards from
2250-01-01, so 10M readings span 1679–2250 (within pandas' timestamp range). SQLite is a file in
a temporary folder, PostgreSQL a fresh schema ``bench_…`` dropped at the end.

The reference demo's way, at 1k / 4,320 / 10k rows: ``SELECT *`` of a plain table into pandas, a
rolling mean, SVR(RBF), RandomForest (100 trees) and LinearRegression refitted on Fourier
features of the row id (period 24 rows, K=3, plus the raw id), 48 steps predicted, a Plotly
figure of every point.

Memory: 720 refreshes, a new reading written before each, in this process on SQLite at the
largest history; growth of VmRSS from /proc/self/status. Tables to stdout, progress to stderr.
"""

from __future__ import annotations

import gc
import os
import sqlite3
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import psycopg
from sklearn.ensemble import RandomForestRegressor
from sklearn.linear_model import LinearRegression
from sklearn.svm import SVR

from _common import ScratchSchemas, parse_size_args, pg_version, print_table, progress, scratch
from plantcast.core.types import Sensor, Source
from plantcast.dashboard.charts import live_figure
from plantcast.forecast import get_model
from plantcast.services.forecasting import Forecasting, ForecastSpec
from plantcast.services.live import LiveRequest, refresh
from plantcast.signals import SignalModel, generate_readings
from plantcast.store import Store

STEP = pd.Timedelta("30min")
END = pd.Timestamp("2250-01-01", tz="UTC")  # last backfilled reading; histories grow backwards
WINDOW = pd.Timedelta("3d")
HORIZON = 48  # one day at 30 min
MODELS = ("fourier_linear", "svr", "random_forest")
CHUNK = 500_000
GOAL_P95_S = 0.200
GOAL_RSS_MB = 50.0
MODEL = SignalModel()


@dataclass(frozen=True)
class Plan:
    histories: tuple[int, ...] = (10_000, 1_000_000)
    runs: int = 30
    warmups: int = 3
    ref_rows: tuple[int, ...] = (1_000, 4_320, 10_000)
    ref_runs: int = 5
    memory_refreshes: int = 720

    @classmethod
    def for_mode(cls, quick: bool, full: bool) -> Plan:
        if quick:
            return cls(histories=(10_000, 100_000), ref_runs=3)
        if full:
            return cls(histories=(10_000, 1_000_000, 10_000_000))
        return cls()


# -- output -------------------------------------------------------------------------------
def ms(seconds: float) -> str:
    return f"{seconds * 1e3:,.1f}"


@dataclass(frozen=True)
class Stats:
    median: float
    p95: float
    n: int

    @classmethod
    def of(cls, samples: list[float]) -> Stats:
        a = np.asarray(samples)
        return cls(float(np.median(a)), float(np.percentile(a, 95)), len(a))


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


# -- engines ------------------------------------------------------------------------------
@dataclass
class Target:
    engine: str  # "sqlite" | "postgresql"
    url: str
    connect_raw: Callable[[], object]  # a DB-API connection for the reference demo's queries
    mark: str  # the raw driver's parameter placeholder


@dataclass
class Workspace:
    tmpdir: str
    schemas: ScratchSchemas | None

    def targets(self) -> list[Target]:
        path = os.path.join(self.tmpdir, "bench.db")
        out = [Target("sqlite", f"sqlite:///{path}", lambda: sqlite3.connect(path), "?")]
        if self.schemas is not None:
            url = self.schemas.create()
            out.append(Target("postgresql", url, lambda: psycopg.connect(url), "%s"))
        return out


@contextmanager
def workspace(pg_url: str | None) -> Iterator[Workspace]:
    with scratch(pg_url) as (tmpdir, schemas):
        yield Workspace(tmpdir, schemas)


# -- plantcast's refresh ------------------------------------------------------------------
def grow(store: Store, sensor: Sensor, n: int) -> None:
    """Extend the sensor's history backwards from END until it holds ``n`` readings."""
    first = store.first_timestamp(sensor.id)
    # Integer nanoseconds: 10M steps of 30 min (570 years) overflow a pandas Timedelta.
    start_ns = END.value - (n - 1) * STEP.value
    stop_ns = (END if first is None else first - STEP).value
    missing = (stop_ns - start_ns) // STEP.value + 1
    for lo in range(0, missing, CHUNK):
        size = min(CHUNK, missing - lo)
        chunk_start = pd.Timestamp(start_ns + lo * STEP.value, tz="UTC")
        store.write_readings(
            sensor.id, generate_readings(MODEL, chunk_start, periods=size, interval=STEP)
        )
        progress(f"  {store.dialect}: wrote {lo + size:,}/{missing:,} readings")


def request(sensor: Sensor) -> LiveRequest:
    spec = ForecastSpec(horizon=HORIZON, periods=("24h",), harmonics=3, intervals=True)
    return LiveRequest(sensor=sensor, window=WINDOW, smoothing=5, models=MODELS, spec=spec)


def one_refresh(store: Store, forecasting: Forecasting, req: LiveRequest) -> tuple[float, int]:
    """Seconds for one refresh as the page does it, and the size of the figure JSON."""
    t0 = time.perf_counter()
    live = refresh(store, forecasting, req)
    payload = live_figure(live, 80).to_json()
    elapsed = time.perf_counter() - t0
    assert len(live.forecasts) == len(MODELS), live.problems
    return elapsed, len(payload)


def write_next(store: Store, sensor: Sensor) -> None:
    """What the streamer does between two refreshes: the next reading, one step later."""
    ts = store.last_timestamp(sensor.id) + STEP
    store.write_readings(sensor.id, generate_readings(MODEL, ts, periods=1, interval=STEP))


def time_refreshes(store: Store, sensor: Sensor, plan: Plan) -> tuple[Stats, Stats, int]:
    """(warm, new reading each refresh, figure JSON bytes), with a fresh cache per history."""
    forecasting = Forecasting(background=True)
    req = request(sensor)
    for _ in range(plan.warmups):
        one_refresh(store, forecasting, req)
    forecasting.wait()  # bands calibrated, as after the first seconds on the page
    _, size = one_refresh(store, forecasting, req)
    warm = [one_refresh(store, forecasting, req)[0] for _ in range(plan.runs)]
    fresh = []
    for _ in range(plan.runs):
        write_next(store, sensor)
        fresh.append(one_refresh(store, forecasting, req)[0])
    forecasting.wait()
    return Stats.of(warm), Stats.of(fresh), size


def fit_costs(store: Store, sensor: Sensor, runs: int = 5) -> dict[str, tuple[Stats, int]]:
    """Where a new reading's refresh goes: one fit of each model on the training window."""
    spec = request(sensor).spec
    history = store.read_tail(sensor.id, spec.history_points())
    out = {}
    for name in MODELS:
        times = []
        for _ in range(runs):
            model = get_model(name, **spec.model_params(name))
            t0 = time.perf_counter()
            model.fit(history)
            model.predict(spec.horizon)
            times.append(time.perf_counter() - t0)
        out[name] = (Stats.of(times), model.n_train_)
    return out


def memory_run(store: Store, sensor: Sensor, refreshes: int) -> dict:
    """RSS growth over ``refreshes`` refreshes, each after a new reading (as in the live demo)."""
    forecasting = Forecasting(background=True)
    req = request(sensor)
    for _ in range(3):
        write_next(store, sensor)
        one_refresh(store, forecasting, req)
    forecasting.wait()
    gc.collect()
    before = rss_mb()
    times = []
    for i in range(refreshes):
        write_next(store, sensor)
        times.append(one_refresh(store, forecasting, req)[0])
        if (i + 1) % 120 == 0:
            progress(f"  memory: {i + 1}/{refreshes} refreshes, VmRSS {rss_mb():,.1f} MB")
    forecasting.wait()
    gc.collect()
    after = rss_mb()
    return {
        "before": before,
        "after": after,
        "stats": Stats.of(times),
        "cached_fits": len(forecasting.cache),
    }


# -- the reference demo -------------------------------------------------------------------
def ref_table(target: Target, rows: int) -> None:
    """A plain table (id, timestamp, pressure) holding ``rows`` readings (setup, untimed)."""
    series = generate_readings(MODEL, END - (rows - 1) * STEP, periods=rows, interval=STEP)
    stamps = series.index.to_pydatetime()
    if target.engine == "sqlite":
        stamps = [t.isoformat() for t in stamps]
    data = list(zip(stamps, series.to_numpy().tolist(), strict=True))
    pk = "INTEGER PRIMARY KEY" if target.engine == "sqlite" else "serial"
    with closing(target.connect_raw()) as conn:
        conn.execute("DROP TABLE IF EXISTS ref_pressure")
        conn.execute(f"CREATE TABLE ref_pressure (id {pk}, timestamp timestamptz, pressure float)")
        m = target.mark
        stmt = f"INSERT INTO ref_pressure (timestamp, pressure) VALUES ({m}, {m})"
        if target.engine == "sqlite":
            conn.executemany(stmt, data)
        else:
            with conn.cursor() as cur:
                cur.executemany(stmt, data)
        conn.commit()


def ref_features(ids: np.ndarray, period: int = 24, harmonics: int = 3) -> np.ndarray:
    cols = [ids.astype(float)]
    for k in range(1, harmonics + 1):
        cols += [np.sin(2 * np.pi * k * ids / period), np.cos(2 * np.pi * k * ids / period)]
    return np.column_stack(cols)


def ref_refresh(target: Target) -> float:
    """The reference demo's refresh: everything read, everything refitted, every point drawn."""
    t0 = time.perf_counter()
    with closing(target.connect_raw()) as conn:
        cur = conn.execute("SELECT * FROM ref_pressure")
        df = pd.DataFrame(cur.fetchall(), columns=["id", "timestamp", "pressure"])
    df["timestamp"] = pd.to_datetime(df["timestamp"], utc=True)
    df["smoothed"] = df["pressure"].rolling(5, min_periods=1).mean()
    ids = df["id"].to_numpy()
    future = np.arange(ids[-1] + 1, ids[-1] + 1 + HORIZON)
    x, y, xf = ref_features(ids), df["pressure"].to_numpy(), ref_features(future)
    future_ts = df["timestamp"].iloc[-1] + STEP * np.arange(1, HORIZON + 1)
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=df["timestamp"], y=df["pressure"], name="raw"))
    fig.add_trace(go.Scatter(x=df["timestamp"], y=df["smoothed"], name="smoothed"))
    for name, model in (
        ("svr", SVR(kernel="rbf")),
        ("random_forest", RandomForestRegressor()),
        ("linear", LinearRegression()),
    ):
        pred = model.fit(x, y).predict(xf)
        fig.add_trace(go.Scatter(x=future_ts, y=pred, name=name))
    fig.to_json()
    return time.perf_counter() - t0


def time_reference(target: Target, plan: Plan) -> dict[int, Stats]:
    out = {}
    for i, rows in enumerate(plan.ref_rows):
        ref_table(target, rows)
        if i == 0:
            ref_refresh(target)  # warm-up (imports, first connection)
        out[rows] = Stats.of([ref_refresh(target) for _ in range(plan.ref_runs)])
        progress(f"  {target.engine}: reference at {rows:,} rows, p95 {ms(out[rows].p95)} ms")
    return out


# -- main ---------------------------------------------------------------------------------
def bench_target(target: Target, plan: Plan, results: list, refs: dict) -> Store:
    store = Store.open(target.url)
    store.init()
    sensor = store.ensure_sensor("bench_pressure", source=Source.SIMULATED, interval=STEP)
    for n in plan.histories:
        progress(f"{target.engine}: filling to {n:,} readings")
        grow(store, sensor, n)
        progress(f"{target.engine}: timing refreshes at {n:,} readings")
        warm, fresh, size = time_refreshes(store, sensor, plan)
        results.append((target.engine, n, warm, fresh, size))
    progress(f"{target.engine}: reference demo")
    refs[target.engine] = time_reference(target, plan)
    return store


def report(results: list, refs: dict, plan: Plan) -> None:
    rows = [
        [e, f"{n:,}", ms(w.median), ms(w.p95), ms(f.median), ms(f.p95), f"{size / 1024:,.0f}"]
        for e, n, w, f, size in results
    ]
    print_table(
        f"plantcast refresh (3 models, 3-day window, 1-day horizon; {plan.runs} refreshes each)",
        ["engine", "readings", "warm med ms", "warm p95 ms", "new-reading med ms",
         "new-reading p95 ms", "figure KiB"],
        rows,
    )  # fmt: skip
    ref_rows = [
        [e, f"{n:,}", ms(s.median), ms(s.p95), str(s.n)]
        for e, by_rows in refs.items()
        for n, s in by_rows.items()
    ]
    print_table(
        "reference demo's refresh (SELECT * + refit SVR, RF(100), linear + figure of all points)",
        ["engine", "rows", "median ms", "p95 ms", "runs"],
        ref_rows,
    )
    print("\nscaling and goal (p95 ≤ 200 ms):")
    for engine in dict.fromkeys(e for e, *_ in results):
        mine = [r for r in results if r[0] == engine]
        (_, n0, w0, f0, _), (_, n1, w1, f1, _) = mine[0], mine[-1]
        for label, a, b in (("warm", w0, w1), ("new reading", f0, f1)):
            ok = "holds" if b.p95 <= GOAL_P95_S else "MISSED"
            print(
                f"  {engine:10} {label:11}: p95 {n1:,} / {n0:,} = {b.p95 / a.p95:.2f}x; "
                f"p95 at {n1:,} = {ms(b.p95)} ms → goal {ok}"
            )


def report_memory(mem: dict, n: int, refreshes: int) -> None:
    growth = mem["after"] - mem["before"]
    s = mem["stats"]
    print(
        f"\nmemory (SQLite, {n:,} readings, {refreshes} refreshes, a new reading before each): "
        f"VmRSS {mem['before']:,.1f} → {mem['after']:,.1f} MB, growth {growth:+,.1f} MB "
        f"(goal ≤ {GOAL_RSS_MB:.0f} MB: {'holds' if growth <= GOAL_RSS_MB else 'MISSED'}); "
        f"refresh median {ms(s.median)} ms, p95 {ms(s.p95)} ms over the run "
        f"(background recalibration every 48 readings included); "
        f"{mem['cached_fits']} fitted models cached"
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_size_args(__doc__, argv, "10k and 100k readings")
    plan = Plan.for_mode(args.quick, args.full)
    pg_url = None if args.no_pg else args.pg_url
    version = pg_version(pg_url) if pg_url else None
    print(
        f"plantcast dashboard benchmark; python {sys.version.split()[0]}, "
        f"PostgreSQL {version or 'not used'}, {os.cpu_count()} CPUs; "
        f"sensor interval 30min, histories {', '.join(f'{n:,}' for n in plan.histories)}"
    )
    results: list = []
    refs: dict = {}
    with workspace(pg_url if version else None) as ws:
        stores = {t.engine: bench_target(t, plan, results, refs) for t in ws.targets()}
        report(results, refs, plan)
        sqlite = stores["sqlite"]
        progress(f"memory: {plan.memory_refreshes} refreshes on SQLite")
        sensor = sqlite.get_sensor("bench_pressure")
        mem = memory_run(sqlite, sensor, plan.memory_refreshes)
        report_memory(mem, plan.histories[-1], plan.memory_refreshes)
        fits = fit_costs(sqlite, sensor)
        print_table(
            "one fit + predict per model on the training window (what a new reading costs)",
            ["model", "train points", "median ms", "p95 ms"],
            [[m, f"{n:,}", ms(s.median), ms(s.p95)] for m, (s, n) in fits.items()],
            left=1,
        )
        for store in stores.values():
            store.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
