"""The paper query benchmark's tables: times per side and design, and the ratios central/edge
warm to warm and cold to cold."""

from __future__ import annotations

from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

DESIGN_TITLES = {"arrival": "arrival order + indexes", "clustered": "clustered (eq, par, ts)"}
GIB = 2**30
WHY = """What the edge wins by: locality (one equipment's day is 24 hourly blocks per series,
where the arrival-order table spreads it over every page of the whole factory's day, so even
warm it walks an index and looks up a row per reading); compressed blocks (3.5 bytes a reading
decoded in bulk by numpy, against rows of ~50 bytes plus index entries); no network and no
wire protocol (arrays straight from the decoder, where central sends 2M rows through the
MariaDB protocol for pymysql to parse in Python, which the server-only column leaves out);
and in process (no connection, no parsing or planning of SQL). Where central narrows the gap:
the clustered table has the edge's locality (the day of one parameter is one key range), a
pool that holds the table takes the disk out of warm queries, the server-only column is what
the central costs before a row is sent (a floor no faster driver can beat), and the
downsampled queries send a few thousand rows, so
there the driver costs little and the gap is the server's aggregation over 2M rows against
the edge's minute rollups."""


def p50(values: list[float]) -> float:
    return float(np.percentile(values, 50)) if values else float("nan")


def _ms(values: list[float]) -> str:
    return f"{p50(values):,.1f}" if values else "-"


def _ratio(central: list[float], edge: list[float]) -> str:
    return f"{p50(central) / p50(edge):,.0f}x" if central and edge else "-"


def _markdown(cols: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(cols) + " |", "|---|" + "---:|" * (len(cols) - 1)]
    return "\n".join([*lines, *("| " + " | ".join(r) + " |" for r in rows)])


def _show(title: str, cols: list[str], rows: list[list[str]], console: Console) -> None:
    table = Table(title=title)
    for col in cols:
        table.add_column(col, justify="right")
    for row in rows:
        table.add_row(*row)
    console.print(table)


def report(
    edge: dict[str, dict[str, list[float]]],
    central: dict[str, dict[str, dict[str, list[float]]]],
    same: dict[str, dict[str, bool]],
    console: Console,
) -> str:
    """Two markdown tables (printed too): p50 milliseconds, then ratios."""
    designs = list(central)
    cols = ["query", "edge warm", "edge cold"]
    for d in designs:
        cols += [f"{d} warm", f"{d} cold", f"{d} server-only warm"]
    cols.append("same answer")
    rows, ratios = [], []
    for name, times in edge.items():
        row = [name, _ms(times["warm"]), _ms(times["cold"])]
        ratio = [name]
        for d in designs:
            c = central[d][name]
            row += [_ms(c["warm"]), _ms(c["cold"]), _ms(c["server"])]
            ratio += [_ratio(c["warm"], times["warm"]), _ratio(c["cold"], times["cold"])]
        row.append("yes" if all(same[d][name] for d in designs) else "NO")
        rows.append(row)
        ratios.append(ratio)
    ratio_cols = ["query"]
    for d in designs:
        ratio_cols += [f"{d}/edge warm", f"{d}/edge cold"]
    _show("the paper's query, p50 ms", cols, rows, console)
    _show("central / edge", ratio_cols, ratios, console)
    return (
        _markdown(cols, rows)
        + "\n\nCentral / edge, p50 to p50:\n\n"
        + _markdown(ratio_cols, ratios)
    )


def _sizes(setup: dict[str, Any]) -> str:
    rows = round(23 * 3600 * setup["hours"] * (1 + (setup["lines"] - 1) * setup["others_rate"]))
    per = "; ".join(
        f"{DESIGN_TITLES[d]} `{d}` {size / GIB:.2f} GiB" for d, size in setup["sizes"].items()
    )
    return f"{rows:,} rows in each design (data + indexes: {per})"


def markdown(setup: dict[str, Any], tables: str) -> str:
    s = setup
    server = (
        "an instance of its own that the benchmark starts (own datadir, loopback port)"
        if s["own_server"]
        else f"the existing server at {s['central_host']}:{s['central_port']} (no cold runs)"
    )
    loaded = (
        "reused from an earlier run of the same command (checked)"
        if s["reused"]
        else (f"loaded in {s['load_s']:.0f} s (LOAD DATA, hour by hour in arrival order)")
    )
    return f"""### The paper's query, edge against central (`bench/paper_query.py`), {s["date"]}

Command: {s["command"]}

Machine: {s["machine"]}.
Edge: {s["edge_readings"]:,} readings (23 series x {s["hours"]} h at 1 Hz; the last hour as a
live line leaves it: one commit per second, chunks merged each minute, not yet packed),
{s["edge_bytes_per_reading"]:.2f} bytes per reading in blocks, store file
{s["edge_file_mb"]:.1f} MB.
Central: MariaDB {s["mariadb"]}, {server}, {s["lines"]} equipments x 23 parameters (the line
at 1 Hz, the others at {s["others_rate"]} Hz), {loaded}. {_sizes(s)}.
InnoDB buffer pool {s["pool_gib"]:.0f} GiB: a DBA gives the pool the whole of the table it
serves, data and indexes (+10%, whole GiB), so warm queries never read the disk; capped at
half of this shared machine's RAM.

Warm: p50 of {s["repeat"]} edge runs and {s["central_repeat"]} central runs, each after a
warm-up run whose answer is compared. Cold, central: the server restarted before each of
{s["central_cold_repeat"]} runs (O_DIRECT, no pool reload at start-up, its files evicted
from the page cache). Cold, edge: {s["cold_repeat"]} runs, each after evicting the store file
from the page cache (posix_fadvise DONTNEED) with a fresh read-only Store (new SQLite
connection, empty decoded-block cache) in the same Python process. Raw = rows into numpy
arrays per series (central through pymysql); "server-only" reads and aggregates the same rows
on the server without sending them: the server's share, without the pure-Python driver.
Downsampled = at most {s["points"]:,} buckets per series on the edge's rollup grid (whole
minutes from the day's start: 2-minute buckets for a day), min/max/mean/count, JSON body
included. "Same answer": each side's raw arrays equal bit for bit, and the buckets' times,
min, max and counts equal, means to 1e-9 (the same sums in another order).

{tables}

{WHY}
"""
