"""Benchmark the wide CSV import: rows/s, values/s and peak RSS of a historian-style file.

Run: ``.venv/bin/python benchmarks/import_wide.py [--quick | --full] [--pg-url URL | --no-pg]``
(``--columns N``).

The file is what a historian exports: ``;``-separated, decimal comma, one timestamp column and
one column per tag (10 by default), a reading a second, 5 % of the cells empty. Each import runs
``import_wide`` in a fresh process (as ``import_memory.py`` does; peak RSS is the child's
``VmHWM``) on SQLite and, when the server answers, on PostgreSQL (a scratch schema). Sizes:
1M and 5M cells (``--quick``: 200k and 1M; ``--full``: 1M and 10M); the ratio of the two
peaks shows whether memory grows with the file. Files and schemas are deleted at the end.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from _common import parse_size_args, pg_version, print_table, progress, scratch
from import_memory import run_child

_CHILD = """
import json, sys, time
from pathlib import Path
from plantcast.ingest.csv_wide import import_wide
from plantcast.store import Store
url, path = sys.argv[1], sys.argv[2]
store = Store.open(url)
store.init()
t0 = time.perf_counter()
rows = cells = 0
if path != "-":
    result = import_wide(store, Path(path))
    cells = sum(r.rows for r in result.sensors)
store.close()
status = Path("/proc/self/status").read_text()
hwm = [ln.split()[1] for ln in status.splitlines() if ln.startswith("VmHWM:")]
print(json.dumps({"cells": cells, "seconds": time.perf_counter() - t0, "hwm_kb": int(hwm[0])}))
"""


def write_wide(path: Path, rows: int, columns: int, chunk: int = 50_000) -> int:
    """A ';' file with decimal commas, 5 % of its cells empty; returns the values written."""
    rng = np.random.default_rng(0)
    start = pd.Timestamp("2026-01-01", tz="UTC")
    written = 0
    with path.open("w") as f:
        f.write(";".join(["Zeitstempel", *(f"TI-{100 + j}" for j in range(columns))]) + "\n")
        for lo in range(0, rows, chunk):
            n = min(chunk, rows - lo)
            idx = start + pd.to_timedelta(np.arange(lo, lo + n), "s")
            phase = np.arange(lo, lo + n)[:, None] / 86_400 * 2 * np.pi
            values = 50 + 10 * np.sin(phase + np.arange(columns)) + rng.normal(0, 1, (n, columns))
            values[rng.random((n, columns)) < 0.05] = np.nan
            written += int(np.isfinite(values).sum())
            frame = pd.DataFrame(values, index=idx.strftime("%Y-%m-%dT%H:%M:%SZ"))
            frame.to_csv(f, sep=";", decimal=",", header=False, float_format="%.2f")
    return written


def main(argv: list[str] | None = None) -> int:
    def extra(parser):
        parser.add_argument("--columns", type=int, default=10, help="tags (value columns)")

    args = parse_size_args(__doc__, argv, "200k and 1M cells (< 1 min)", extra)
    sizes = (200_000, 1_000_000) if args.quick else (1_000_000, 5_000_000)
    if args.full:
        sizes = (1_000_000, 10_000_000)
    server = None if args.no_pg else pg_version(args.pg_url)
    table = []
    with scratch(args.pg_url if server else None) as (tmpdir, schemas):
        files = {}
        for cells in sizes:
            rows = cells // args.columns
            path = Path(tmpdir) / f"wide-{cells}.csv"
            progress(f"writing {rows:,} rows × {args.columns} columns to {path.name}")
            files[cells] = (path, rows, write_wide(path, rows, args.columns))
        engines = [("SQLite", lambda tag: f"sqlite:///{Path(tmpdir) / f'{tag}.db'}")]
        if schemas is not None:
            engines.append((f"PostgreSQL {server}", schemas.create))
        for engine, make_url in engines:
            peaks = {}
            for cells, (path, rows, values) in files.items():
                progress(f"{engine}: importing {cells:,} cells")
                t0 = time.perf_counter()
                report, peak_mb, _ = run_child(make_url(f"w{cells}"), path, _CHILD)
                assert report["cells"] == values, (report, values)
                secs = report["seconds"]
                peaks[cells] = peak_mb
                table.append(
                    [
                        engine,
                        f"{rows:,} × {args.columns}",
                        f"{path.stat().st_size / 1e6:.0f}",
                        f"{secs:.1f}",
                        f"{time.perf_counter() - t0:.1f}",
                        f"{rows / secs:,.0f}",
                        f"{values / secs:,.0f}",
                        f"{peak_mb:.0f}",
                    ]
                )
            small, large = sizes
            table.append(
                [engine, "peak ratio", "", "", "", "", "", f"{peaks[large] / peaks[small]:.2f}"]
            )
    print_table(
        "Wide CSV import (';', decimal comma, 5 % empty cells): import_wide in a fresh process",
        ["engine", "rows × cols", "MB", "import s", "process s", "rows/s", "values/s", "peak MB"],
        table,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
