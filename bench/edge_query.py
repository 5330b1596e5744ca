"""Benchmark (not a test): the edge's own speed on the paper's query, in process and over HTTP.

    .venv/bin/python bench/edge_query.py [--hours 24] [--repeat 30] [--cold-repeat 7]
                                         [--tiny] [--no-record]

Goals, for one equipment's 23 parameters over one day (1,987,200 readings): raw into numpy
arrays <= 10 ms warm and <= 60 ms cold; downsampled to 1,000 points per series with the JSON
body <= 10 ms. Measured two ways, on the store as a live line leaves it (bench/edge_store.py):

- in process: the calls the HTTP API makes (`Store.history`, `downsampled_json` + encoding);
  cold = the store file evicted from the page cache and a fresh read-only Store (new SQLite
  connection, empty decoded-block cache) in the same Python process;
- over HTTP: the real edge node (`edge-node run --role api`, FastAPI under uvicorn, login on)
  in its own process, an httpx client on loopback with a bearer token; the time to the last
  byte of the body. Cold = a freshly started process, the file evicted after it answered
  /api/health, its first history request.

Baselines from the same run: the in-process floor (concatenating the day's already decoded
arrays into one array per series: what any reader of this layout must at least do) and the
HTTP floor (GET /api/health on the same connection).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import httpx  # noqa: E402
import numpy as np  # noqa: E402
from bench_report import machine, now, record_section  # noqa: E402
from edge_store import cold_times, edge_store, evict, line_day, timed  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from edge_node import columns_json  # noqa: E402
from edge_node.api import downsampled_json  # noqa: E402
from edge_node.store import Store  # noqa: E402
from edge_node.store.model import HOUR_NS  # noqa: E402
from tests.support.edge_auth import TEST_PASSWORD, add_user  # noqa: E402
from tests.support.ports import free_port  # noqa: E402
from tests.support.processes import Child, console_script, wait_until  # noqa: E402

console = Console(width=None if sys.stdout.isatty() else 160)
MS = 1_000_000
GOALS = {"raw 23 -> numpy": (10, 60), "down 23 -> JSON": (10, None)}


def in_process(path: Path, store: Store, span: tuple[int, int], args: Any) -> dict[str, dict]:
    """Warm and cold times of the API's own calls, and the floor."""
    infos = store.series()
    start, end = span
    calls: dict[str, Callable[[Store], Any]] = {
        "raw 23 -> numpy": lambda s: s.history(infos, start, end),
        "down 23 -> JSON": lambda s: columns_json.encode(  # the series list of the API's body
            list(downsampled_json(s, infos, start, end, args.points).values())
        ),
        "raw 3 -> numpy": lambda s: s.history(infos[:3], start, end),
    }
    out = {}
    for name, call in calls.items():
        call(store)  # warm-up
        warm = timed(lambda c=call: c(store), args.repeat)
        out[name] = {"warm": warm, "cold": cold_times(path, call, args.cold_repeat)}
    parts = [(d.ts, np.asarray(d.values), d.quality) for d in store.history(infos, start, end)]
    hours = max(1, (end - start) // HOUR_NS)
    pieces = [[np.array_split(a, hours) for a in p] for p in parts]  # as the day's blocks

    def floor() -> None:
        for series in pieces:
            for arrays in series:
                np.concatenate(arrays)

    out["floor: concatenate decoded arrays (23)"] = {"warm": timed(floor, args.repeat), "cold": []}
    return out


class EdgeProcess:
    """`edge-node run --role api` on the store file, a user to log in as, a free port."""

    def __init__(self, data: Path) -> None:
        self.data = data
        self.port = free_port()
        add_user(data)
        self.config = data / "edge.yaml"
        self.config.write_text(
            "edge: {id: bench-edge}\n"
            "store: {path: edge.sqlite}\n"
            f"http: {{host: 127.0.0.1, port: {self.port}}}\n"
        )
        self.child: Child | None = None

    def start(self) -> httpx.Client:
        args = ["run", str(self.config), "--data-dir", str(self.data), "--role", "api"]
        # This checkout's code, not the one the venv's editable install points at.
        env = {"PYTHONPATH": str(ROOT)}
        self.child = Child("edge-api", console_script("edge-node", *args), self.data, env).start()
        client = httpx.Client(base_url=f"http://127.0.0.1:{self.port}", timeout=60)
        wait_until(lambda: _answers(client), 60, "edge api up", (self.child,))
        body = {"username": "tester", "password": TEST_PASSWORD, "client": "api"}
        token = client.post("/api/login", json=body).raise_for_status().json()["token"]
        client.headers["Authorization"] = f"Bearer {token}"
        return client

    def stop(self) -> None:
        if self.child is not None:
            self.child.stop()


def _answers(client: httpx.Client) -> bool:
    try:
        return client.get("/api/health").status_code == 200
    except httpx.TransportError:
        return False


def over_http(path: Path, names: list[str], span: tuple[int, int], args: Any) -> dict[str, dict]:
    start, end = span
    query = [("tag", n) for n in names] + [("start", start // MS), ("end", end // MS)]
    requests = {
        "down 23 -> JSON": [*query, ("points", args.points)],
        "raw 23 -> JSON": query,
    }
    edge = EdgeProcess(path.parent)
    out: dict[str, dict] = {name: {"cold": [], "warm": []} for name in requests}
    try:
        for name, params in requests.items():
            for _ in range(args.cold_repeat):  # a fresh process each: nothing decoded yet
                client = edge.start()
                evict(path)
                out[name]["cold"] += timed(lambda c=client, p=params: get(c, p), 1)
                client.close()
                edge.stop()
        client = edge.start()  # one process for the warm runs, as a running edge serves
        for name, params in requests.items():
            get(client, params)
            runs = args.repeat if name.startswith("down") else max(3, args.repeat // 5)
            out[name]["warm"] = timed(lambda c=client, p=params: get(c, p), runs)
        floor = timed(lambda c=client: c.get("/api/health").raise_for_status(), args.repeat)
        out["floor: GET /api/health"] = {"warm": floor, "cold": []}
        client.close()
    finally:
        edge.stop()
    return out


def get(client: httpx.Client, params: list[tuple[str, Any]]) -> int:
    response = client.get("/api/history", params=params)
    response.raise_for_status()
    return len(response.content)


def pct(values: list[float], q: float) -> str:
    return f"{float(np.percentile(values, q)):,.1f}" if values else "-"


def table(rows: dict[str, dict], title: str) -> str:
    cols = ["query", "warm p50", "warm p95", "cold p50", "cold p95", "goal (warm / cold)"]
    view = Table(title=title)
    for col in cols:
        view.add_column(col, justify="right")
    lines = ["| " + " | ".join(cols) + " |", "|---|" + "---:|" * (len(cols) - 1)]
    for name, t in rows.items():
        warm_goal, cold_goal = GOALS.get(name, (None, None))
        goal = " / ".join(f"<= {g}" if g else "-" for g in (warm_goal, cold_goal))
        cells = [name, pct(t["warm"], 50), pct(t["warm"], 95), pct(t["cold"], 50)]
        cells += [pct(t["cold"], 95), goal if warm_goal else "-"]
        view.add_row(*cells)
        lines.append("| " + " | ".join(cells) + " |")
    console.print(view)
    return "\n".join(lines)


def markdown(setup: dict, local: str, http: str) -> str:
    s = setup
    return f"""### The edge's own speed on the paper's query (`bench/edge_query.py`), {s["date"]}

Command: {s["command"]}

Machine: {s["machine"]}; load average {s["load"][0]:.2f} at the start, {s["load"][1]:.2f} at
the end (other work shares the machine: compare with the floors of the same run).
Store: {s["readings"]:,} readings (23 series x {s["hours"]} h at 1 Hz, the last hour still
in per-second chunks as a live line leaves it), file {s["file_mb"]:.1f} MB.
Milliseconds; warm: {s["repeat"]} runs after a warm-up (raw over HTTP: {max(3, s["repeat"] // 5)});
cold: {s["cold_repeat"]} runs. Downsampled: at most {s["points"]:,} buckets per series.

In process (the calls the API makes; cold = store file evicted from the page cache and a fresh
read-only Store with an empty decoded-block cache, same Python process):

{local}

Over HTTP (`edge-node run --role api`: FastAPI under uvicorn in its own process, login on,
bearer token; httpx on loopback, time to the body's last byte; cold = a freshly started
process, the store file evicted after it answered /api/health, its first history request):

{http}
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=int, default=24)
    parser.add_argument("--points", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--cold-repeat", type=int, default=7)
    parser.add_argument("--tiny", action="store_true", help="a minute-long smoke run")
    parser.add_argument("--edge-store", default="", help="copy this store instead of building")
    parser.add_argument("--no-record", action="store_true", help="do not write docs/benchmarks.md")
    args = parser.parse_args()
    if args.tiny:
        args.hours, args.points, args.repeat, args.cold_repeat = 2, 60, 5, 1
    command = "`.venv/bin/python bench/edge_query.py " + " ".join(sys.argv[1:]) + "`"
    load_start = os.getloadavg()[0]
    t0, ts, values, names = line_day(args.hours)
    span = (t0, t0 + args.hours * HOUR_NS)
    with tempfile.TemporaryDirectory(dir="/var/tmp", prefix="edge_query_") as tmp:
        path = Path(tmp) / "edge.sqlite"
        live = 120 if args.tiny else 3600
        store = edge_store(path, args.edge_store, ts, values, t0, console, live)
        file_mb = store.stats()["file_bytes"] / 1e6
        local = in_process(path, store, span, args)
        http = over_http(path, list(names.values()), span, args)
        store.close()
    setup = vars(args) | {
        "date": now(), "machine": machine(), "command": command, "readings": ts.size,
        "file_mb": file_mb, "load": (load_start, os.getloadavg()[0]),
    }  # fmt: skip
    text = markdown(setup, table(local, "in process (ms)"), table(http, "over HTTP (ms)"))
    if not args.no_record:
        record_section("edge_query", text)
        console.print("recorded in docs/benchmarks.md")


if __name__ == "__main__":
    main()
