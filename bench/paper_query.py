"""Benchmark (not a test): the paper's query at the edge against a central database.

    .venv/bin/python bench/paper_query.py [--hours 24] [--lines 40] [--others-rate 1]
        [--central-dir /var/tmp/bench_central] [--reuse-central] [--load-only]
        [--buffer-pool auto|GIB] [--central-host H --central-port P] [--tiny] [--no-record]

The paper's query: one day of 3 and of 23 sensor parameters of one equipment, raw and
downsampled to 1,000 points per series. Both sides hold the same line-day (23 series at 1 Hz,
2-decimal values, sub-ms jitter in whole microseconds as DATETIME(6) holds them:
bench/line_data.py), and must give the same answer (checked on every run):

- central: MariaDB, by default an instance of its own that this benchmark starts (its datadir
  in --central-dir, kept for --reuse-central; a free loopback port), holding the whole factory:
  `--lines` equipments of 23 parameters, the queried one at 1 Hz, the others at
  `--others-rate` Hz, in two designs side by side (bench/central_db.py): the paper's
  arrival-order table with indexes, and a table clustered on (equipment, parameter, ts).
  The buffer pool is sized as a DBA would: the larger design, data and indexes, fits.
- edge: the edge node's store (edge_node/store) holding only the line.

Measured: raw into numpy arrays (central: pymysql rows -> numpy; also the server alone,
aggregating the same rows without sending them), downsampled min/max/mean on the edge's
rollup grid including the JSON body. Warm: p50 of --repeat runs after a warm-up. Cold,
central: the server restarted before each run (O_DIRECT pool, no pool reload at start, its
files evicted from the page cache); cold, edge: the store file evicted from the page cache
(posix_fadvise DONTNEED) and a fresh read-only Store (new connection, empty decoded-block
cache) in the same Python process. Results go to docs/benchmarks.md under "## Edge".
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import central_load  # noqa: E402
import numpy as np  # noqa: E402
from answers import down_differences, edge_raw, raw_differences  # noqa: E402
from bench_report import machine, now, record_section  # noqa: E402
from central_db import (  # noqa: E402
    GIB,
    Central,
    analyze,
    dba_pool,
    own_server,
    ram_bytes,
    sizes,
)
from central_query import queries  # noqa: E402
from edge_store import cold_times, edge_store, line_day, timed  # noqa: E402
from paper_report import markdown, report  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.progress import Progress  # noqa: E402

from edge_node import columns_json  # noqa: E402
from edge_node.api import downsampled_json  # noqa: E402
from edge_node.store import Store  # noqa: E402
from edge_node.store.model import HOUR_NS  # noqa: E402

console = Console(width=None if sys.stdout.isatty() else 160)
QUERIES = ("raw 23", "raw 3", "down 23", "down 3")
Times = dict[str, list[float]]


# ---------------------------------------------------------------------------------- edge


def edge_queries(
    store: Store, names: list[str], span: tuple[int, int], points: int
) -> dict[str, Callable[[Store], Any]]:
    """The same series as central's parameters 1..23 and 1..3, in that order."""
    every, unknown = store.lookup(names)
    if unknown:
        raise SystemExit(f"edge store lacks {unknown}")
    few = every[:3]
    start, end = span

    def raw(chosen: list) -> Callable[[Store], Any]:
        return lambda s: s.history(chosen, start, end)

    def down(chosen: list) -> Callable[[Store], Any]:
        return lambda s: columns_json.encode(
            list(downsampled_json(s, chosen, start, end, points).values())
        )

    return {"raw 23": raw(every), "raw 3": raw(few), "down 23": down(every), "down 3": down(few)}


def measure_edge(
    path: Path, store: Store, queries_: dict[str, Callable[[Store], Any]], runs: int, cold: int
) -> tuple[dict[str, Times], dict[str, Any]]:
    """(times, answers) per query; the answer of the warm-up run is kept for comparison."""
    results: dict[str, Times] = {}
    answers: dict[str, Any] = {}
    for name, query in queries_.items():
        answer = query(store)  # warm-up
        answers[name] = edge_raw(answer) if name.startswith("raw") else answer
        warm = timed(lambda q=query: q(store), runs)
        results[name] = {"warm": warm, "cold": cold_times(path, query, cold)}
    return results, answers


# ------------------------------------------------------------------------------- central


def measure_design(
    central: Central,
    design: str,
    ask: Callable[[], tuple[Any, dict[str, Callable[[], Any]]]],
    runs: int,
    cold_runs: int,
) -> tuple[dict[str, Times], dict[str, Any]]:
    """Per query: cold runs (a restart before each, when the server is ours), then a
    warm-up whose answer is kept, then `runs` warm runs (and the server-only variant)."""
    results: dict[str, Times] = {}
    answers: dict[str, Any] = {}
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task(f"central ({design}): queries", total=len(QUERIES))
        for name in QUERIES:
            cold = []
            for _ in range(cold_runs if central.server is not None else 0):
                central.restart()
                conn, qs = ask()
                cold += timed(qs[name], 1)
                conn.close()
            conn, qs = ask()
            answers[name] = qs[name]()
            warm = timed(qs[name], runs)
            server: list[float] = []
            if name.startswith("raw"):
                server_query = qs[f"server {name.split()[1]}"]
                server_query()
                server = timed(server_query, runs)
            conn.close()
            results[name] = {"warm": warm, "cold": cold, "server": server}
            progress.advance(task)
    return results, answers


def check_same(edge: dict[str, Any], central: dict[str, Any], design: str) -> dict[str, bool]:
    """Stops the benchmark when an answer differs: timing different answers means nothing."""
    out = {}
    for name in QUERIES:
        if name.startswith("raw"):
            problems = raw_differences(edge[name], central[name])
        else:
            problems = down_differences(edge[name], central[name])
        if problems:
            raise SystemExit(f"{design} {name}: not the edge's answer: {problems[:5]}")
        out[name] = True
    return out


@contextmanager
def central_server(args: argparse.Namespace, pool: int) -> Iterator[Central]:
    if args.central_host:
        yield Central(args.central_host, args.central_port, args.database)
        return
    redo = int(args.redo_log * GIB)
    with own_server(Path(args.central_dir), pool, args.database, redo) as central:
        yield central


def prepare_central(
    central: Central, args: argparse.Namespace, line: tuple[np.ndarray, np.ndarray]
) -> tuple[float, bool]:
    """Load (or reuse) both designs; returns (seconds, reused)."""
    started = time.perf_counter()
    reused = args.reuse_central and central_load.reusable(central, line)
    if reused:
        console.print("central: reusing the tables already loaded")
    else:
        with tempfile.TemporaryDirectory(dir="/var/tmp", prefix="paper_query_") as tmp:
            central_load.load(central, line, args.lines, args.others_rate, Path(tmp), console)
    analyze(central)  # cheap (sampled pages); a load cut short after its last file lacks it
    return time.perf_counter() - started, reused


def size_pool(central: Central, args: argparse.Namespace) -> int:
    """The pool for the timed part: given, or the DBA's rule; the server restarts with it."""
    largest = max(sizes(central).values())
    pool = int(float(args.buffer_pool) * GIB) if args.buffer_pool != "auto" else 0
    pool = pool or dba_pool(largest, ram_bytes())
    if central.server is not None:
        central.set_pool(pool)
    return pool


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add = parser.add_argument
    add("--hours", type=int, default=24)
    add("--lines", type=int, default=40, help="equipments in the central table")
    add("--others-rate", type=float, default=1.0, help="Hz of the other equipments")
    add("--points", type=int, default=1000, help="downsampled points per series")
    add("--repeat", type=int, default=20, help="edge warm runs")
    add("--cold-repeat", type=int, default=5, help="edge cold runs")
    add("--central-repeat", type=int, default=3, help="central warm runs (p50 of these)")
    add("--central-cold-repeat", type=int, default=3, help="central runs after a restart")
    add("--central-dir", default="", help="the own server's files [/var/tmp/bench_central]")
    add("--central-host", default="", help="use this existing server instead (no cold runs)")
    add("--central-port", type=int, default=3306)
    add("--database", default="bench_central", help="MariaDB database (dropped, recreated)")
    add("--buffer-pool", default="auto", help="GiB, or auto: the larger design fits")
    add("--load-pool", type=float, default=4.0, help="GiB of buffer pool while loading")
    add("--redo-log", type=float, default=2.0, help="GiB of InnoDB redo log (load speed)")
    add("--reuse-central", action="store_true", help="keep tables an earlier run loaded")
    add("--load-only", action="store_true", help="load the central tables, measure nothing")
    add("--drop", action="store_true", help="drop the database at the end")
    add("--edge-store", default="", help="copy this store of the same line instead of building")
    add("--tiny", action="store_true", help="a minute-long smoke run")
    add("--no-record", action="store_true", help="do not write docs/benchmarks.md")
    add("--section", default="paper_query", help="docs/benchmarks.md block to write")
    args = parser.parse_args()
    if args.tiny:
        args.hours, args.lines, args.points = 1, 3, 50  # 72 s, rounded up to 2 min as for a day
        args.repeat, args.cold_repeat, args.central_repeat, args.central_cold_repeat = 2, 1, 1, 1
        args.load_pool, args.redo_log = 0.25, 0.0625
    # Never the full-scale run's datadir: a second server on it would not start.
    args.central_dir = args.central_dir or f"/var/tmp/bench_central{'_tiny' if args.tiny else ''}"
    return args


def main() -> None:
    args = parse_args()
    command = "`.venv/bin/python bench/paper_query.py " + " ".join(sys.argv[1:]) + "`"
    t0, ts, values, names = line_day(args.hours)
    span, line = (t0, t0 + args.hours * HOUR_NS), (ts, values)
    with central_server(args, int(args.load_pool * GIB)) as central:
        load_s, reused = prepare_central(central, args, line)
        if args.load_only:
            console.print(f"central loaded in {load_s:.0f} s: {sizes(central)}")
            return
        pool = size_pool(central, args)
        table_sizes = sizes(central)
        with tempfile.TemporaryDirectory(dir="/var/tmp", prefix="paper_query_") as tmp:
            path = Path(tmp) / "edge.sqlite"
            store = edge_store(path, args.edge_store, ts, values, t0, console)
            asked = edge_queries(store, list(names.values()), span, args.points)
            edge, edge_answers = measure_edge(path, store, asked, args.repeat, args.cold_repeat)
            edge_setup = edge_stats(store)
            store.close()
        central_times, same = {}, {}
        for design in ("arrival", "clustered"):
            ask = lambda d=design: queries(central, d, names, span, args.points)  # noqa: E731
            times, answers = measure_design(
                central, design, ask, args.central_repeat, args.central_cold_repeat
            )
            central_times[design] = times
            same[design] = check_same(edge_answers, answers, design)
        version, pool = server_facts(central, pool, args.drop)
    setup = vars(args) | edge_setup | {
        "date": now(), "machine": machine(), "command": command, "edge_readings": ts.size,
        "mariadb": version, "pool_gib": pool / GIB, "sizes": table_sizes,
        "own_server": not args.central_host, "load_s": load_s, "reused": reused,
    }  # fmt: skip
    rows = report(edge, central_times, same, console)
    if not args.no_record:
        record_section(args.section, markdown(setup, rows))
        console.print("recorded in docs/benchmarks.md")


def edge_stats(store: Store) -> dict[str, float]:
    stats = store.stats()
    blob_bytes, packed = (
        store._reader().execute("SELECT sum(length(data)), sum(n) FROM blocks").fetchone()
    )
    return {
        "edge_bytes_per_reading": blob_bytes / packed,
        "edge_file_mb": stats["file_bytes"] / 1e6,
    }


def server_facts(central: Central, pool: int, drop: bool) -> tuple[str, int]:
    """(MariaDB version, buffer pool bytes in force); drops the database when asked."""
    with central.connect() as conn, conn.cursor() as cur:
        cur.execute("SELECT version(), @@innodb_buffer_pool_size")
        version, in_force = cur.fetchone()
        if drop:
            cur.execute(f"DROP DATABASE `{central.database}`")
    return version.split("-")[0], int(in_force or pool)


if __name__ == "__main__":
    main()
