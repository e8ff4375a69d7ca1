"""Benchmark the store: bulk write rate, bounded reads and streamer throughput, vs the reference.

Run: ``.venv/bin/python benchmarks/store.py [--quick | --full] [--pg-url URL | --no-pg]``.

Every figure is measured in the same run on the same engines: SQLite (a file in a temporary
folder) and PostgreSQL (a fresh schema ``bench_…`` in ``--pg-url``, dropped at the end).
The reference demo's way is one ``INSERT`` per row into a plain table
``(id serial, timestamp timestamptz, pressure float)`` and ``SELECT *`` of the whole table.
Tables go to stdout, progress to stderr; no generated data is left behind.
"""

from __future__ import annotations

import os
import platform
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, closing, contextmanager
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import psycopg

from _common import ScratchSchemas, parse_size_args, pg_version, print_table, progress, scratch
from plantcast.core.types import Source
from plantcast.ingest.stream import Streamer
from plantcast.signals import SignalModel, generate_readings
from plantcast.store import Store

STEP = pd.Timedelta("1min")
WRITE_START = pd.Timestamp("2020-01-01", tz="UTC")
READ_END = pd.Timestamp("2024-06-01", tz="UTC")  # histories grow backwards from here
WINDOW = pd.Timedelta(days=3)
BUCKETS = 2000
GROW_CHUNK = 500_000
REF_DDL = {
    "sqlite": "CREATE TABLE {t} (id INTEGER PRIMARY KEY, timestamp timestamptz, pressure float)",
    "postgresql": "CREATE TABLE {t} (id serial, timestamp timestamptz, pressure float)",
}


@dataclass(frozen=True)
class Plan:
    """Sizes for one mode."""

    write_sizes: tuple[int, ...] = (100_000, 1_000_000)
    ref_autocommit_rows: int = 5_000
    ref_tx_rows: int = 20_000
    histories: tuple[int, ...] = (10_000, 1_000_000)
    ref_select_max: int = 1_000_000  # the reference's SELECT * is measured up to this history
    read_runs: int = 30
    stream_count: int = 2_000
    write_rounds: int = 3  # best of, alternating plantcast and psql

    @classmethod
    def for_mode(cls, quick: bool, full: bool) -> Plan:
        if quick:
            return cls((10_000, 100_000), 1_000, 5_000, (10_000, 100_000), 100_000, 30, 500, 1)
        if full:
            return cls(histories=(10_000, 1_000_000, 10_000_000))
        return cls()


# -- output -------------------------------------------------------------------------------
def fmt_int(n: float) -> str:
    return f"{n:,.0f}"


def fmt_ms(seconds: float) -> str:
    return f"{seconds * 1e3:,.2f}"


# -- engines ------------------------------------------------------------------------------
@dataclass
class Target:
    """One engine: a plantcast URL plus a raw DB-API connection factory for the reference."""

    engine: str  # "sqlite" | "postgresql"
    url: str
    connect_raw: Callable[[], object]
    mark: str  # parameter placeholder of the raw driver

    def open(self) -> Store:
        store = Store.open(self.url)
        store.init()
        return store


@dataclass
class Workspace:
    """Temporary places for data: SQLite files in a temp folder, PostgreSQL schemas."""

    tmpdir: str
    schemas: ScratchSchemas | None

    def targets(self, tag: str) -> list[Target]:
        out = [self._sqlite(tag)]
        if self.schemas is not None:
            out.append(self._postgres(tag))
        return out

    def _sqlite(self, tag: str) -> Target:
        path = os.path.join(self.tmpdir, f"{tag}.db")

        def connect() -> sqlite3.Connection:
            # The same connection settings as plantcast's engine, so only the method differs.
            conn = sqlite3.connect(path, isolation_level=None, timeout=30)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            return conn

        return Target("sqlite", f"sqlite:///{path}", connect, "?")

    def _postgres(self, tag: str) -> Target:
        url = self.schemas.create(tag)
        return Target("postgresql", url, lambda: psycopg.connect(url), "%s")


@contextmanager
def workspace(pg_url: str | None) -> Iterator[Workspace]:
    with scratch(pg_url) as (tmpdir, schemas):
        yield Workspace(tmpdir, schemas)


# -- reference demo -----------------------------------------------------------------------
def ref_create(conn, engine: str, table: str) -> None:
    conn.execute(REF_DDL[engine].format(t=table))  # fixed benchmark-owned table name
    if engine == "postgresql":
        conn.commit()


def ref_rows(series: pd.Series, engine: str) -> list[tuple]:
    """The series as (timestamp, pressure) rows in the raw driver's types."""
    stamps = series.index.to_pydatetime()
    if engine == "sqlite":
        stamps = [t.isoformat() for t in stamps]
    return list(zip(stamps, series.to_numpy().tolist(), strict=True))


def ref_insert_sql(table: str, mark: str) -> str:
    return f"INSERT INTO {table} (timestamp, pressure) VALUES ({mark}, {mark})"


def ref_write_autocommit(target: Target, rows: list[tuple]) -> float:
    """Generator style: one INSERT per row, each its own transaction (autocommit)."""
    with closing(target.connect_raw()) as conn:
        ref_create(conn, target.engine, "ref_autocommit")
        if target.engine == "postgresql":
            conn.autocommit = True
        stmt = ref_insert_sql("ref_autocommit", target.mark)
        t0 = time.perf_counter()
        for row in rows:
            conn.execute(stmt, row)
        return time.perf_counter() - t0


def ref_write_one_tx(target: Target, rows: list[tuple]) -> float:
    """Backfill style: one INSERT per row (execute per row) inside one transaction."""
    with closing(target.connect_raw()) as conn:
        ref_create(conn, target.engine, "ref_one_tx")
        stmt = ref_insert_sql("ref_one_tx", target.mark)
        t0 = time.perf_counter()
        if target.engine == "sqlite":
            conn.execute("BEGIN")
        for row in rows:
            conn.execute(stmt, row)
        conn.execute("COMMIT") if target.engine == "sqlite" else conn.commit()
        return time.perf_counter() - t0


def ref_fill(conn, target: Target, rows: list[tuple]) -> None:
    """Load rows into the read benchmark's reference table quickly (setup, not measured)."""
    if target.engine == "postgresql":
        with conn.cursor() as cur, cur.copy("COPY ref_read (timestamp, pressure) FROM STDIN") as cp:
            for row in rows:
                cp.write_row(row)
        conn.commit()
    else:
        conn.execute("BEGIN")
        conn.executemany(ref_insert_sql("ref_read", "?"), rows)
        conn.execute("COMMIT")


def ref_select_all(conn) -> int:
    """The reference demo's read: the whole table, every time."""
    cur = conn.execute("SELECT * FROM ref_read")
    n = len(cur.fetchall())
    if isinstance(conn, psycopg.Connection):
        conn.commit()
    return n


# -- 1. bulk writes -----------------------------------------------------------------------
def _timed(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def bench_writes(target: Target, plan: Plan) -> list[dict]:
    out = []
    with closing(target.open()) as store:
        for n in plan.write_sizes:
            series = generate_readings(SignalModel(), WRITE_START, periods=n, interval=STEP)
            # Rounds alternate plantcast and psql on fresh sensors and tables; each method's
            # best round is kept, so a burst of load elsewhere on the machine hits neither.
            best: dict[str, float] = {}
            for rnd in range(plan.write_rounds):
                name = f"bench_write_{n}_{rnd}"
                sensor = store.ensure_sensor(name, source=Source.SIMULATED, interval=STEP)
                for kind in ("first write", "replay"):
                    progress(f"{target.engine}: write_readings {n:,} rows ({kind}), round {rnd}")
                    secs = _timed(lambda s=series, i=sensor.id: store.write_readings(i, s))
                    _keep_best(best, f"plantcast {kind}", secs)
                stored = store.count_readings(sensor.id)
                if stored != n:
                    raise RuntimeError(f"{target.engine}: {stored} rows after replay, want {n}")
                psql = psql_copy(target, sensor.id, series, f"ref_copy_{n}_{rnd}")
                if psql is not None:
                    _keep_best(best, "psql \\copy (same rows, same schema)", psql)
            out += [{"how": how, "rows": n, "secs": secs} for how, secs in best.items()]
            out += bench_batch(store, target, n)
    base = generate_readings(SignalModel(), WRITE_START, periods=plan.ref_tx_rows, interval=STEP)
    cases = (
        ("reference INSERT/row, autocommit", plan.ref_autocommit_rows, ref_write_autocommit),
        ("reference INSERT/row, one tx", plan.ref_tx_rows, ref_write_one_tx),
    )
    for how, n, fn in cases:
        progress(f"{target.engine}: {how}, {n:,} rows")
        out.append(
            {"how": how, "rows": n, "secs": fn(target, ref_rows(base.iloc[:n], target.engine))}
        )
    for row in out:
        row["engine"] = target.engine
        row["rate"] = row["rows"] / row["secs"]
    return out


def _keep_best(best: dict[str, float], how: str, secs: float) -> None:
    best[how] = min(secs, best.get(how, secs))


def bench_batch(store: Store, target: Target, n: int, sensors: int = 100) -> list[dict]:
    """The same number of rows spread over ``sensors`` sensors, one Store.write_batch call."""
    ids = [
        store.ensure_sensor(f"bench_batch_{n}_{i}", source=Source.SIMULATED, interval=STEP).id
        for i in range(sensors)
    ]
    per = n // sensors
    one = generate_readings(SignalModel(), WRITE_START, periods=per, interval=STEP)
    batch = pd.DataFrame(
        {
            "sensor_id": np.repeat(ids, per),
            "ts": np.tile(one.index.as_unit("us").asi8, sensors),
            "value": np.tile(one.to_numpy(), sensors),
        }
    )
    out = []
    for kind in ("first write", "replay"):
        progress(f"{target.engine}: write_batch {len(batch):,} rows of {sensors} sensors ({kind})")
        secs = _timed(lambda: store.write_batch(batch))
        out.append(
            {
                "how": f"plantcast write_batch {sensors} sensors, {kind}",
                "rows": len(batch),
                "secs": secs,
            }
        )
    return out


def psql_copy(target: Target, sensor_id: int, series: pd.Series, table: str) -> float | None:
    """``psql \\copy`` of the same rows (CSV) into a fresh table of readings' schema, timed
    from launching psql to its exit; None on SQLite or without psql."""
    if target.engine != "postgresql" or shutil.which("psql") is None:
        return None
    with closing(target.connect_raw()) as conn:
        conn.execute(f"CREATE TABLE {table} (LIKE readings INCLUDING ALL)")
        conn.execute(f"ALTER TABLE {table} ADD FOREIGN KEY (sensor_id) REFERENCES sensors (id)")
        conn.commit()
    frame = pd.DataFrame({"sensor_id": sensor_id, "ts": series.index, "value": series.to_numpy()})
    with tempfile.NamedTemporaryFile("w", suffix=".csv") as f:
        frame.to_csv(f, index=False, header=False, float_format="%.17g")
        f.flush()
        progress(f"{target.engine}: psql \\copy {len(series):,} rows")
        command = f"\\copy {table} (sensor_id, ts, value) FROM '{f.name}' (FORMAT csv)"
        t0 = time.perf_counter()
        subprocess.run(
            ["psql", target.url, "-q", "-v", "ON_ERROR_STOP=1", "-c", command], check=True
        )
        return time.perf_counter() - t0


def report_writes(results: list[dict]) -> None:
    rows = []
    for r in results:
        refs = [x for x in results if x["engine"] == r["engine"] and x["how"].startswith("ref")]
        ratios = [f"{r['rate'] / x['rate']:,.1f}×" for x in refs]
        psql = [
            x
            for x in results
            if x["engine"] == r["engine"] and x["how"].startswith("psql") and x["rows"] == r["rows"]
        ]
        vs_psql = f"{r['rate'] / psql[0]['rate']:.2f}×" if psql else "-"
        rows.append(
            [
                r["engine"],
                r["how"],
                fmt_int(r["rows"]),
                f"{r['secs']:.3f}",
                fmt_int(r["rate"]),
                *ratios,
                vs_psql,
            ]
        )
    print_table(
        "1. Bulk write rate — Store.write_readings / write_batch (one transaction; binary COPY on"
        " PostgreSQL, straight in\n   or staged + merged on a replay; executemany on SQLite)"
        " vs the reference demo's INSERT per row into a keyless\n   table (ratio = this row's"
        " rate / the reference's on the same engine) and vs `psql \\copy` of the same rows\n"
        "   into a table of the same schema (PK + FK), in the same run; best of alternating rounds"
        "\n   (goals: ≥ 0.6× first write, ≥ 0.3× replay)",
        [
            "engine",
            "method",
            "rows",
            "seconds",
            "rows/s",
            "/ref autocommit",
            "/ref one tx",
            "/psql \\copy",
        ],
        rows,
    )


# -- 2. bounded reads ---------------------------------------------------------------------
@dataclass
class ReadCase:
    """One timed read; cases are run round-robin so background load hits them all alike."""

    engine: str
    history: int
    query: str
    fn: Callable[[], int]
    times: list[float] = field(default_factory=list)
    rows: int = 0

    def done(self, runs: int, budget: float) -> bool:
        return len(self.times) >= runs or (len(self.times) >= 5 and sum(self.times) > budget)

    def result(self) -> dict:
        arr = np.array(self.times)
        return {
            "engine": self.engine,
            "history": self.history,
            "query": self.query,
            "rows": self.rows,
            "runs": len(arr),
            "median": float(np.median(arr)),
            "p95": float(np.percentile(arr, 95)),
        }


def run_cases(cases: list[ReadCase], runs: int, budget: float = 10.0) -> None:
    """Up to ``runs`` timed runs per case (≥ 5; fewer once a case has spent ``budget`` s)."""
    for case in cases:
        case.fn()  # warm-up
    for n in range(runs):
        active = [c for c in cases if not c.done(runs, budget)]
        if not active:
            break
        if n % 10 == 0:
            progress(f"reads: round {n + 1}/{runs}, {len(active)} cases")
        for case in active:
            t0 = time.perf_counter()
            case.rows = case.fn()
            case.times.append(time.perf_counter() - t0)


def fill_history(store: Store, sid: int, history: int, on_chunk) -> None:
    """Write ``history`` readings at 1 min ending at READ_END, in chunks (setup)."""
    first = READ_END - (history - 1) * STEP
    for lo in range(0, history, GROW_CHUNK):
        n = min(GROW_CHUNK, history - lo)
        chunk = generate_readings(SignalModel(), first + lo * STEP, periods=n, interval=STEP)
        store.write_readings(sid, chunk)
        on_chunk(chunk)
        if history > GROW_CHUNK:
            progress(f"  {lo + n:,} / {history:,}")


def read_cases(target: Target, plan: Plan, history: int, stack: ExitStack) -> list[ReadCase]:
    """A database holding exactly ``history`` readings of one sensor, and its timed reads."""
    progress(f"{target.engine}: storing {history:,} readings (plantcast and reference tables)")
    store = stack.enter_context(closing(target.open()))
    ref = stack.enter_context(closing(target.connect_raw()))
    ref_create(ref, target.engine, "ref_read")
    with_ref = history <= plan.ref_select_max
    sid = store.ensure_sensor("bench_read", source=Source.SIMULATED, interval=STEP).id
    fill_history(store, sid, history, lambda c: _mirror(ref, target, c, with_ref))
    last = store.last_timestamp(sid)
    start = last - WINDOW
    queries = [
        (f"read_buckets 3d/{BUCKETS}", lambda: len(store.read_buckets(sid, start, last, BUCKETS))),
        ("read_series 3d", lambda: len(store.read_series(sid, start, last))),
    ]
    if with_ref:
        queries.append(("reference SELECT * (whole table)", lambda: ref_select_all(ref)))
    return [ReadCase(target.engine, history, name, fn) for name, fn in queries]


def bench_reads(ws: Workspace, plan: Plan) -> list[dict]:
    with ExitStack() as stack:
        cases = [
            case
            for history in plan.histories
            for target in ws.targets(f"r{history}")
            for case in read_cases(target, plan, history, stack)
        ]
        run_cases(cases, plan.read_runs)
    order = {"sqlite": 0, "postgresql": 1}
    cases.sort(key=lambda c: (order[c.engine], c.history))
    return [c.result() for c in cases]


def _mirror(ref, target: Target, chunk: pd.Series, enabled: bool) -> None:
    """Put the same readings in the reference demo's plain table."""
    if enabled:
        ref_fill(ref, target, ref_rows(chunk, target.engine))


def report_reads(results: list[dict]) -> None:
    rows = [
        [
            r["engine"],
            r["query"],
            fmt_int(r["history"]),
            fmt_int(r["rows"]),
            r["runs"],
            fmt_ms(r["median"]),
            fmt_ms(r["p95"]),
        ]
        for r in results
    ]
    print_table(
        "2. Bounded reads — the last 3 days of one sensor (1-min readings); one database per"
        " history length,\n   holding exactly that many readings; cases timed round-robin."
        " The reference fetches its whole table\n   (raw driver rows, no DataFrame: a lower"
        " bound for it)",
        ["engine", "query", "history", "rows out", "runs", "median ms", "p95 ms"],
        rows,
    )
    histories = sorted({r["history"] for r in results})
    flat = []
    for engine in dict.fromkeys(r["engine"] for r in results):
        for query in dict.fromkeys(r["query"] for r in results):
            by_h = {
                r["history"]: r["median"]
                for r in results
                if r["engine"] == engine and r["query"] == query
            }
            if len(by_h) < 2:
                continue
            cells = [fmt_ms(by_h[h]) if h in by_h else "-" for h in histories]
            growth = by_h[max(by_h)] / by_h[min(by_h)]
            flat.append([engine, query, *cells, f"{growth:,.2f}×"])
    print_table(
        "   median ms by history length (flat = ratio near 1×)",
        ["engine", "query", *[fmt_int(h) for h in histories], "largest/smallest"],
        flat,
    )


# -- 3. streamer --------------------------------------------------------------------------
def bench_stream(target: Target, plan: Plan) -> dict:
    progress(f"{target.engine}: Streamer tick=0, count={plan.stream_count:,}")
    with closing(target.open()) as store:
        streamer = Streamer(
            store, ["reservoir_pressure"], tick=0, step=STEP, count=plan.stream_count
        )
        t0 = time.perf_counter()
        stats = streamer.run()
        secs = time.perf_counter() - t0
    return {"engine": target.engine, "written": stats.written, "secs": secs}


def report_stream(results: list[dict]) -> None:
    rows = [
        [
            r["engine"],
            fmt_int(r["written"]),
            f"{r['secs']:.2f}",
            fmt_int(r["written"] / r["secs"]),
            fmt_ms(r["secs"] / max(1, r["written"])),
        ]
        for r in results
    ]
    print_table(
        "3. Streamer throughput — Streamer(tick=0), one sensor, one transaction per reading"
        " (like `plantcast stream --tick 0`)",
        ["engine", "readings", "seconds", "readings/s", "ms/reading"],
        rows,
        left=1,
    )


# -- main ---------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    args = parse_size_args(__doc__, argv, "small sizes (< 60 s)")
    plan = Plan.for_mode(args.quick, args.full)
    mode = "quick" if args.quick else "full" if args.full else "default"
    server = None if args.no_pg else pg_version(args.pg_url)
    print(
        f"plantcast store benchmark ({mode}): Python {platform.python_version()},"
        f" SQLite {sqlite3.sqlite_version}, PostgreSQL {server or 'not used'},"
        f" {os.cpu_count()} CPU(s), load average {os.getloadavg()[0]:.2f} at start"
    )
    with workspace(args.pg_url if server else None) as ws:
        writes = [r for t in ws.targets("w") for r in bench_writes(t, plan)]
        report_writes(writes)
        reads = bench_reads(ws, plan)
        report_reads(reads)
        report_stream([bench_stream(t, plan) for t in ws.targets("s")])
    progress("done; temporary SQLite files removed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
