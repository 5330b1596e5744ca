"""Benchmark (not a test): the paper's query at the edge against a central database.

    .venv/bin/python bench/paper_query.py [--hours 24] [--lines 40] [--others-rate 0.1]
                                          [--repeat 20] [--tiny] [--no-record]

The paper's query: one day of 3 and of 23 sensor parameters of one equipment, raw and
downsampled to 1,000 points per series. Both sides hold the same line-day (23 series at 1 Hz,
2-decimal values, sub-ms jitter: bench/line_data.py):

- central: MariaDB (127.0.0.1:3306, database `bench_central`), one row per reading in
  arrival order (AUTO_INCREMENT key) for the whole factory: `--lines` equipments of 23
  parameters, the queried one at 1 Hz and the others at `--others-rate` Hz (scaled to fit this
  machine; at 0.1 Hz the table holds 40 line-days of equipment but ~5x the rows of one line,
  so the central figures are, if anything, flattering). Indexed as an equipment engineering
  system would be: (equipment, parameter, time) and (time).
- edge: the edge node's store (edge_node/store) holding only the line.

Measured: raw into numpy arrays (central: pymysql rows -> numpy; also the server alone,
aggregating the same rows without sending them), downsampled min/max/mean per bucket
including the JSON body; warm (p50, p95 of --repeat runs) and cold for the edge (the store
file evicted from the page cache with posix_fadvise(DONTNEED) before each run, a fresh
connection each time). Results go to docs/benchmarks.md under "## Edge".
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import msgspec  # noqa: E402
import numpy as np  # noqa: E402
import pymysql  # noqa: E402
from bench_report import machine, now, record_section  # noqa: E402
from line_data import SECOND, batches, columns  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.progress import Progress  # noqa: E402
from rich.table import Table  # noqa: E402

from edge_node.api import downsampled_json  # noqa: E402
from edge_node.store import Store  # noqa: E402
from edge_node.store.model import HOUR_NS  # noqa: E402

console = Console(width=None if sys.stdout.isatty() else 160)
DB = "bench_central"
POINTS = 1000
_json = msgspec.json.Encoder()


def timed(
    fn: Callable[[], Any], runs: int, before: Callable[[], None] | None = None
) -> list[float]:
    """Milliseconds of each run; `before` (not timed) prepares each run, e.g. evicts caches."""
    out = []
    for _ in range(runs):
        if before:
            before()
        start = time.perf_counter()
        fn()
        out.append((time.perf_counter() - start) * 1000)
    return out


def p(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


# ---------------------------------------------------------------------------------- edge


def build_edge(path: Path, ts: np.ndarray, values: np.ndarray, t0: int) -> Store:
    """The store as a live line leaves it: all hours but the last packed into blocks, the
    last hour still in chunks, written one commit per second and merged every minute by
    the compaction task (what `edge-node run` does at line rate)."""
    store = Store(path)
    hours = ts.shape[1] // 3600
    live = 3600 if hours > 1 else 0  # seconds written at line rate
    past = ts.shape[1] - live
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("edge store: ingest (past hours)", total=ts[:, :past].size)
        pending = []
        for batch in batches(ts[:, :past], values[:, :past], 1000):
            pending.append(batch)
            if len(pending) == 16:  # what ingest commits at once (store.flush_messages)
                store.write(pending)
                progress.advance(task, sum(len(b.readings) for b in pending))
                pending = []
        if pending:
            store.write(pending)
            progress.advance(task, sum(len(b.readings) for b in pending))
        store.compact(t0 + (hours - (1 if live else 0)) * HOUR_NS)
        task = progress.add_task("edge store: the live hour", total=live)
        seconds = batches(ts[:, past:], values[:, past:], ts.shape[0], first_seq=ts[:, :past].size)
        for second, batch in enumerate(seconds, 1):
            store.write([batch])
            if second % 60 == 0:
                store.compact(t0 + (hours - 1) * HOUR_NS)  # merges the minute's chunks
            progress.advance(task)
    return store


def evict(path: Path) -> None:
    """Drop the store's pages from the OS page cache (no root needed, other files untouched)."""
    for name in (path, Path(f"{path}-wal")):
        if name.exists():
            fd = os.open(name, os.O_RDONLY)
            try:
                os.fsync(fd)
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)


def edge_queries(store: Store, start: int, end: int) -> dict[str, Callable[[Store], Any]]:
    infos = store.series()
    few = infos[:3]

    def raw(chosen: list) -> Callable[[Store], Any]:
        return lambda s: s.history(chosen, start, end)

    def down(chosen: list) -> Callable[[Store], Any]:
        return lambda s: _json.encode(downsampled_json(s, chosen, start, end, POINTS))

    return {"raw 23": raw(infos), "raw 3": raw(few), "down 23": down(infos), "down 3": down(few)}


def measure_edge(path: Path, store: Store, start: int, end: int, runs: int, cold_runs: int) -> dict:
    results: dict[str, dict[str, list[float]]] = {}
    for name, query in edge_queries(store, start, end).items():
        query(store)  # warm-up
        warm = timed(lambda q=query: q(store), runs)
        results[name] = {"warm": warm, "cold": cold_times(path, query, cold_runs)}
    return results


def cold_times(path: Path, query: Callable[[Store], Any], runs: int) -> list[float]:
    """Each run on a fresh read-only Store after evicting the file from the page cache."""
    out = []
    for _ in range(runs):
        evict(path)
        reader = Store(path, read_only=True)
        try:
            out.extend(timed(lambda r=reader: query(r), 1))
        finally:
            reader.close()
    return out


# ------------------------------------------------------------------------------- central


def central_conn(database: str | None = "") -> pymysql.Connection:
    """database "" means the benchmark's (DB), None no database."""
    conn = pymysql.connect(
        host="127.0.0.1",
        user="root",
        database=DB if database == "" else database,
        local_infile=True,
        autocommit=True,
    )
    with conn.cursor() as cur:
        cur.execute("SET time_zone = '+00:00'")
    return conn


def create_central() -> None:
    conn = central_conn(None)
    with conn.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS {DB}")
        cur.execute(f"CREATE DATABASE {DB}")
        cur.execute(f"USE {DB}")
        cur.execute(
            """CREATE TABLE readings (
                id BIGINT AUTO_INCREMENT PRIMARY KEY,
                equipment_id INT NOT NULL,
                parameter_id INT NOT NULL,
                ts DATETIME(6) NOT NULL,
                value DOUBLE,
                quality TINYINT NOT NULL DEFAULT 0,
                KEY by_equipment (equipment_id, parameter_id, ts),
                KEY by_time (ts)
            ) ENGINE=InnoDB"""
        )
    conn.close()


def _hour_rows(
    hour: int, line: tuple[np.ndarray, np.ndarray], lines: int, rate: float, seed: int
) -> tuple[np.ndarray, ...]:
    """(equipment, parameter, ts ns, value) of one hour for the whole factory, in arrival
    order. Equipment 1 is the line (the edge's data); the others report every 1/rate s."""
    ts, values = line
    n_series = ts.shape[0]
    lo, hi = hour * 3600, (hour + 1) * 3600
    eq = [np.ones(n_series * (hi - lo), np.int32)]
    par = [np.repeat(np.arange(1, n_series + 1, dtype=np.int32), hi - lo)]
    tss = [ts[:, lo:hi].reshape(-1)]
    vals = [values[:, lo:hi].reshape(-1)]
    step = max(1, round(1 / rate))
    rng = np.random.default_rng(seed + hour)
    t_start = int(ts[0, lo]) - int(ts[0, lo]) % SECOND
    for equipment in range(2, lines + 1):
        per = len(range(0, 3600, step))
        grid = t_start + np.arange(0, 3600, step, dtype=np.int64) * SECOND
        phase = rng.integers(0, step * SECOND, size=(n_series, 1))
        eq.append(np.full(n_series * per, equipment, np.int32))
        par.append(np.repeat(np.arange(1, n_series + 1, dtype=np.int32), per))
        tss.append((grid[None, :] + phase).reshape(-1))
        vals.append(np.round(rng.uniform(5, 500, size=n_series * per), 2))
    all_ts = np.concatenate(tss)
    order = np.argsort(all_ts, kind="stable")
    return tuple(np.concatenate(c)[order] for c in (eq, par, [all_ts], vals))


def load_central(
    line: tuple[np.ndarray, np.ndarray], lines: int, rate: float, workdir: Path
) -> int:
    create_central()
    conn = central_conn()
    hours = line[0].shape[1] // 3600
    total = 0
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task(f"central: {lines} equipments, load by hour", total=hours)
        for hour in range(hours):
            eq, par, ts, vals = _hour_rows(hour, line, lines, rate, seed=7)
            stamps = np.char.replace(
                np.datetime_as_string(ts.astype("datetime64[ns]"), unit="us"), "T", " "
            )
            text = "\n".join(
                f"{e}\t{q}\t{t}\t{v:.2f}"
                for e, q, t, v in zip(
                    eq.tolist(), par.tolist(), stamps.tolist(), vals.tolist(), strict=True
                )
            )
            tsv = workdir / "central.tsv"
            tsv.write_text(text + "\n")
            with conn.cursor() as cur:
                cur.execute(
                    f"LOAD DATA LOCAL INFILE '{tsv}' INTO TABLE readings"
                    " (equipment_id, parameter_id, ts, value)"
                )
            total += len(eq)
            progress.advance(task)
        check_central(conn, line)
        task = progress.add_task("central: ANALYZE TABLE", total=1)
        with conn.cursor() as cur:
            cur.execute("ANALYZE TABLE readings")
            cur.fetchall()
        progress.advance(task)
    conn.close()
    return total


def check_central(conn: pymysql.Connection, line: tuple[np.ndarray, np.ndarray]) -> None:
    """LOAD DATA LOCAL turns bad values into warnings: make sure the line arrived intact."""
    ts, values = line
    with conn.cursor() as cur:
        cur.execute(
            "SELECT count(*), sum(value) FROM readings WHERE equipment_id = 1 AND ts >= %s",
            (_dt(int(ts.min()) - SECOND),),
        )
        count, total = cur.fetchone()
    if count != ts.size or abs(float(total) - float(values.sum())) > 1e-6 * ts.size:
        raise SystemExit(f"central load is wrong: {count} rows of the line, {ts.size} expected")


def existing_central(line: tuple[np.ndarray, np.ndarray]) -> int | None:
    """Rows of a central table an earlier run loaded with this line, or None to load anew."""
    conn = central_conn()
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM readings")
            (rows,) = cur.fetchone()
        check_central(conn, line)
    except (pymysql.MySQLError, SystemExit):
        return None
    finally:
        conn.close()
    return int(rows)


def _dt(ns: int) -> str:
    return str(np.datetime64(ns, "ns").astype("datetime64[us]")).replace("T", " ")


def central_queries(conn: pymysql.Connection, start: int, end: int) -> dict[str, Callable[[], Any]]:
    where = "equipment_id = 1 AND parameter_id IN ({}) AND ts >= %s AND ts < %s"
    width_s = (end - start) / POINTS / SECOND
    start_s = start / SECOND

    def raw(params: str) -> Callable[[], Any]:
        sql = (
            "SELECT parameter_id, CAST(UNIX_TIMESTAMP(ts) * 1000000 AS SIGNED), value"
            f" FROM readings WHERE {where.format(params)} ORDER BY parameter_id, ts"
        )

        def run() -> list[tuple[np.ndarray, np.ndarray]]:
            with conn.cursor() as cur:
                cur.execute(sql, (_dt(start), _dt(end)))
                rows = cur.fetchall()
            if not rows:
                return []
            par, ts, vals = (np.array(c) for c in zip(*rows, strict=True))
            cuts = np.flatnonzero(np.diff(par)) + 1
            return list(
                zip(np.split(ts * 1000, cuts), np.split(vals.astype(float), cuts), strict=True)
            )

        return run

    def server(params: str) -> Callable[[], Any]:
        sql = f"SELECT COUNT(*), SUM(value), MAX(ts) FROM readings WHERE {where.format(params)}"

        def run() -> Any:
            with conn.cursor() as cur:
                cur.execute(sql, (_dt(start), _dt(end)))
                return cur.fetchall()

        return run

    def down(params: str) -> Callable[[], Any]:
        sql = (
            f"SELECT parameter_id, FLOOR((UNIX_TIMESTAMP(ts) - {start_s}) / {width_s}) AS b,"
            " MIN(value), MAX(value), AVG(value), COUNT(*)"
            f" FROM readings WHERE {where.format(params)} GROUP BY parameter_id, b"
            " ORDER BY parameter_id, b"
        )

        def run() -> bytes:
            with conn.cursor() as cur:
                cur.execute(sql, (_dt(start), _dt(end)))
                rows = cur.fetchall()
            series: dict[int, dict[str, list]] = {}
            for par, b, lo, hi, mean, n in rows:
                s = series.setdefault(par, {"t": [], "min": [], "max": [], "mean": [], "count": []})
                s["t"].append(int((start_s + float(b) * width_s) * 1000))
                s["min"].append(lo)
                s["max"].append(hi)
                s["mean"].append(float(mean))
                s["count"].append(n)
            return _json.encode(list(series.values()))

        return run

    all23 = ",".join(str(i) for i in range(1, 24))
    return {
        "raw 23": raw(all23),
        "raw 3": raw("1,2,3"),
        "down 23": down(all23),
        "down 3": down("1,2,3"),
        "server 23": server(all23),
        "server 3": server("1,2,3"),
    }


def measure_central(start: int, end: int, runs: int) -> dict[str, dict[str, list[float]]]:
    conn = central_conn()
    results = {}
    with Progress(console=console, transient=True) as progress:
        queries = central_queries(conn, start, end)
        task = progress.add_task("central: queries", total=len(queries) * (runs + 1))
        for name, query in queries.items():
            first = timed(query, 1)  # after the load: partly in the buffer pool, partly not
            progress.advance(task)
            # --central-repeat 0: at full factory scale one query takes minutes; report the one.
            warm = timed(query, runs) if runs else first
            progress.advance(task, runs)
            results[name] = {"first": first, "warm": warm}
    conn.close()
    return results


# ------------------------------------------------------------------------------- report

GOALS = {"raw 23": (100, 300), "raw 3": (20, None), "down 23": (50, None), "down 3": (50, None)}


def report(edge: dict, central: dict, setup: dict) -> str:
    table = Table(title="the paper's query: one day of one equipment (ms)")
    cols = ["query", "edge warm p50", "p95", "edge cold p50", "p95", "central first",
            "central warm p50", "central server p50", "central/edge (p50)", "goal"]  # fmt: skip
    for col in cols:
        table.add_column(col, justify="right")
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for name, times in edge.items():
        c = central[name]
        server = central.get(f"server {name.split()[1]}", {}).get("warm", [])
        ratio = p(c["warm"], 50) / p(times["warm"], 50)
        warm_goal, cold_goal = GOALS[name]
        goal = f"warm <= {warm_goal}" + (f", cold <= {cold_goal}" if cold_goal else "")
        cells = [name, *(f"{p(times[k], q):,.1f}" for k in ("warm", "cold") for q in (50, 95)),
                 f"{c['first'][0]:,.0f}", f"{p(c['warm'], 50):,.0f}",
                 f"{p(server, 50):,.0f}" if name.startswith("raw") else "-",
                 f"{ratio:,.0f}x", goal]  # fmt: skip
        table.add_row(*cells)
        lines.append("| " + " | ".join(cells) + " |")
    console.print(table)
    return "\n".join(lines)


def markdown(setup: dict, rows: str) -> str:
    return f"""### The paper's query, edge against central (`bench/paper_query.py`), {setup["date"]}

Machine: {setup["machine"]}. Edge: {setup["edge_readings"]:,} readings (23 series x
{setup["hours"]} h at 1 Hz; the last hour as a live line leaves it: one commit per second,
chunks merged each minute, not yet packed), {setup["edge_bytes_per_reading"]:.2f} bytes per
reading in blocks, store file {setup["edge_file_mb"]:.1f} MB.
Central (MariaDB {setup["mariadb"]}, shared server, buffer pool
{setup["buffer_pool_mb"]:.0f} MB): {setup["central_rows"]:,} rows for
{setup["lines"]} equipments (the line at 1 Hz, the others at {setup["others_rate"]} Hz),
{"reused from an earlier run (checked" if setup["central_reused"] else "loaded"}
in {setup["central_load_s"]:.0f} s{")" if setup["central_reused"] else ""}. Warm: p50/p95
of {setup["repeat"]} runs for the edge, {setup["central_repeat"]} for central (0: only the
first query, whose time then stands in both central columns); edge cold:
{setup["cold_repeat"]} runs, each after evicting the store file from the page cache
(posix_fadvise DONTNEED) and opening a fresh connection; central "first" is the first query
after loading (central cold needs a server restart, not done on the shared server). Central
raw = pymysql rows into numpy; "server-only" aggregates the same rows on the server without
sending them, to show the gap is not just the Python driver. Downsampled = 1,000 buckets per
series (min, max, mean) including the JSON body.

{rows}
"""


def main() -> None:
    global DB  # one setting for the whole script
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=int, default=24)
    parser.add_argument("--lines", type=int, default=40, help="equipments in the central table")
    parser.add_argument("--others-rate", type=float, default=0.1, help="Hz of the other lines")
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--cold-repeat", type=int, default=5)
    parser.add_argument("--central-repeat", type=int, default=3)
    parser.add_argument("--tiny", action="store_true", help="a minute-long smoke run")
    parser.add_argument("--no-record", action="store_true", help="do not write docs/benchmarks.md")
    parser.add_argument("--database", default=DB, help="MariaDB database (dropped, recreated)")
    parser.add_argument("--drop", action="store_true", help="drop the database at the end")
    parser.add_argument(
        "--section",
        default="paper_query",
        help="docs/benchmarks.md block to write (keep runs at other scales side by side)",
    )
    parser.add_argument(
        "--reuse-central",
        action="store_true",
        help="keep a central table an earlier run loaded (loading 80M rows takes ~17 min)",
    )
    args = parser.parse_args()
    DB = args.database
    if args.tiny:
        args.hours, args.lines, args.repeat, args.cold_repeat, args.central_repeat = 1, 3, 2, 1, 1
    t0 = 1_764_000_000 * SECOND - (1_764_000_000 * SECOND) % (24 * HOUR_NS)
    ts, values = columns(args.hours * 3600, t0)
    start, end = t0, t0 + args.hours * HOUR_NS
    with tempfile.TemporaryDirectory(dir="/var/tmp", prefix="paper_query_") as tmp:
        path = Path(tmp) / "edge.sqlite"
        store = build_edge(path, ts, values, t0)
        stats = store.stats()
        started = time.perf_counter()
        reused = existing_central((ts, values)) if args.reuse_central else None
        if reused is None:
            central_rows = load_central((ts, values), args.lines, args.others_rate, Path(tmp))
        else:
            central_rows = reused
            console.print(f"central: reusing {reused:,} rows already loaded")
        load_s = time.perf_counter() - started
        edge = measure_edge(path, store, start, end, args.repeat, args.cold_repeat)
        central = measure_central(start, end, args.central_repeat)
        blob_bytes, packed = (
            store._reader().execute("SELECT sum(length(data)), sum(n) FROM blocks").fetchone()
        )
        store.close()
    conn = central_conn()
    with conn.cursor() as cur:
        cur.execute("SELECT version(), @@innodb_buffer_pool_size")
        version, pool = cur.fetchone()
        if args.drop:
            cur.execute(f"DROP DATABASE {DB}")
    conn.close()
    setup = {
        "date": now(),
        "machine": machine(),
        "hours": args.hours,
        "edge_readings": ts.size,
        "edge_bytes_per_reading": blob_bytes / packed,
        "edge_file_mb": stats["file_bytes"] / 1e6,
        "mariadb": version.split("-")[0],
        "buffer_pool_mb": pool / 2**20,
        "central_rows": central_rows,
        "lines": args.lines,
        "others_rate": args.others_rate,
        "central_load_s": load_s,
        "repeat": args.repeat,
        "cold_repeat": args.cold_repeat,
        "central_repeat": args.central_repeat,
        "central_reused": reused is not None,
    }
    rows = report(edge, central, setup)
    if not args.no_record:
        record_section(args.section, markdown(setup, rows))
        console.print("recorded in docs/benchmarks.md")


if __name__ == "__main__":
    main()
