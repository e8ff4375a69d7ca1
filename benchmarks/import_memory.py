"""Benchmark CSV import memory: peak RSS of a 1M- and a 10M-row import, and their ratio.

Run: ``.venv/bin/python benchmarks/import_memory.py [--quick | --full] [--pg-url URL | --no-pg]``.

Each import runs ``import_csv`` in a fresh subprocess on SQLite (a file in a temporary folder)
and on
PostgreSQL (a fresh schema ``bench_…``, dropped at the end) when the server answers. A
"baseline" child imports the same modules and opens the store without importing anything: the
memory every import pays before reading a byte. The CSV files are generated into the temporary
folder and deleted with it. ``--quick`` uses 100k and 1M rows.

Peak RSS is the child's own high-water mark, ``VmHWM`` of ``/proc/self/status`` read at its end:
exec resets it. The child's ``ru_maxrss`` (from ``wait4``) is printed beside it, but on Linux it
keeps the pre-exec peak of the forked copy of this parent, so it is never below the parent's RSS.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from _common import parse_size_args, pg_version, print_table, progress, scratch

GOAL_MB = 250
GOAL_RATIO = 1.2

_CHILD = """
import json, sys, time
from pathlib import Path
from plantcast.ingest.csv_import import CsvSpec, import_csv
from plantcast.store import Store
url, path = sys.argv[1], sys.argv[2]
store = Store.open(url)
store.init()
t0 = time.perf_counter()
rows = 0
if path != "-":
    rows = import_csv(store, CsvSpec(Path(path)), "imported_flow").rows
store.close()
status = Path("/proc/self/status").read_text()
hwm = [ln.split()[1] for ln in status.splitlines() if ln.startswith("VmHWM:")]
print(json.dumps({"rows": rows, "seconds": time.perf_counter() - t0, "hwm_kb": int(hwm[0])}))
"""


def write_csv(path: Path, rows: int, chunk: int = 200_000) -> None:
    """A regular 1-second series with noise (10M rows: 4 months), written in chunks."""
    rng = np.random.default_rng(0)
    start = np.datetime64("2026-01-01T00:00:00", "s")
    with path.open("w") as f:
        f.write("ts,value\n")
        for lo in range(0, rows, chunk):
            n = min(chunk, rows - lo)
            ts = start + np.arange(lo, lo + n, dtype=np.int64) * np.timedelta64(1, "s")
            frame = pd.DataFrame(
                {
                    "ts": np.char.add(np.datetime_as_string(ts, unit="s"), "Z"),
                    "value": 100
                    + 10 * np.sin(np.arange(lo, lo + n) / 86_400 * 2 * np.pi)
                    + rng.uniform(-2, 2, n),
                }
            )
            frame.to_csv(f, header=False, index=False, float_format="%.4f")


def run_child(url: str, path: Path | str, child: str = _CHILD) -> tuple[dict, float, float]:
    """Run one import (``child``'s) in a fresh process; return its report, VmHWM and
    ru_maxrss in MB."""
    proc = subprocess.Popen(
        [sys.executable, "-c", child, url, str(path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    # wait4 gives this child's own rusage (RUSAGE_CHILDREN would be the max over all children)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    out, err = proc.stdout.read(), proc.stderr.read()
    proc.stdout.close()
    proc.stderr.close()
    if proc.returncode != 0:
        raise RuntimeError(f"import child failed ({proc.returncode}): {err[-2000:]}")
    report = json.loads(out.strip().splitlines()[-1])
    return report, report["hwm_kb"] / 1024, usage.ru_maxrss / 1024  # KB on Linux


def main(argv: list[str] | None = None) -> int:
    args = parse_size_args(__doc__, argv, "100k and 1M rows (< 1 min)")
    small, large = (100_000, 1_000_000) if args.quick else (1_000_000, 10_000_000)
    server = None if args.no_pg else pg_version(args.pg_url)
    table, ratios = [], []
    with scratch(args.pg_url if server else None) as (tmpdir, schemas):
        files = {}
        for rows in (small, large):
            path = Path(tmpdir) / f"import-{rows}.csv"
            progress(f"writing {rows:,} rows to {path.name}")
            write_csv(path, rows)
            files[rows] = path
        engines = [("SQLite", lambda tag: f"sqlite:///{Path(tmpdir) / f'{tag}.db'}")]
        if schemas is not None:
            engines.append((f"PostgreSQL {server}", schemas.create))
        for engine, make_url in engines:
            _, base_mb, base_ru = run_child(make_url("base"), "-")
            table.append(
                [engine, "baseline (no import)", "-", "-", "-", f"{base_mb:.0f}", f"{base_ru:.0f}"]
            )
            peaks = {}
            for rows, path in files.items():
                progress(f"{engine}: importing {rows:,} rows")
                t0 = time.perf_counter()
                report, peak_mb, ru_mb = run_child(make_url(f"r{rows}"), path)
                assert report["rows"] == rows, report
                peaks[rows] = peak_mb
                progress(
                    f"{engine}: {rows:,} rows in {report['seconds']:.1f} s, peak {peak_mb:.0f} MB"
                )
                table.append(
                    [
                        engine,
                        f"{rows:,} rows",
                        f"{path.stat().st_size / 1e6:.0f}",
                        f"{report['seconds']:.1f}",
                        f"{time.perf_counter() - t0:.1f}",
                        f"{peak_mb:.0f}",
                        f"{ru_mb:.0f}",
                    ]
                )
            ratio = peaks[large] / peaks[small]
            ratios.append(ratio)
            table.append([engine, f"ratio {large:,} / {small:,}", "", "", "", f"{ratio:.2f}", ""])
    print_table(
        "CSV import: peak RSS of the importing process (VmHWM; ru_maxrss includes the fork)",
        ["engine", "file", "MB on disk", "import s", "process s", "peak RSS MB", "ru_maxrss MB"],
        table,
    )
    worst = max(float(r[5]) for r in table if r[1].endswith(" rows"))
    print(
        f"\ngoal: peak ≤ {GOAL_MB} MB at {large:,} rows and ratio ≤ {GOAL_RATIO}: "
        f"worst peak {worst:.0f} MB, worst ratio {max(ratios):.2f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
