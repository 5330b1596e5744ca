"""The real processes of a fault test: simulator, gateway, edge node on a private Mosquitto.

Each part runs as the product runs it (its console script, its YAML config), so kill -9 hits a
real process with real files. The checks read the files the processes leave behind: the
gateway's buffer (its meta table: the seqs committed) and the edge's store (the `received`
ranges and the readings themselves).
"""

from __future__ import annotations

import json
import sqlite3
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import yaml

from edge_node.store import Store
from factory_common import wire
from tests.support.broker import Mosquitto
from tests.support.edge_auth import TEST_PASSWORD, add_user
from tests.support.ports import free_port, wait_for_port
from tests.support.processes import Child, console_script, wait_until

ROOT = Path(__file__).resolve().parents[2]
GW = "fault-gw1"
EDGE_CLIENT = "edge-fault"


def read_only(path: Path) -> sqlite3.Connection:
    """Read a SQLite file another process writes (or a killed one left) without changing it."""
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None)


def buffer_meta(path: Path) -> dict[str, int]:
    """The gateway buffer's meta table: next_seq (committed), depth, bytes, dropped.*."""
    if not path.exists():
        return {}
    conn = read_only(path)
    try:
        return dict(conn.execute("SELECT key, value FROM meta").fetchall())
    except sqlite3.OperationalError:  # created, schema not committed yet
        return {}
    finally:
        conn.close()


def committed_last_seq(path: Path) -> int | None:
    """The highest seq the buffer has committed (fsync'd), or None before the first commit."""
    next_seq = buffer_meta(path).get("next_seq")
    return None if next_seq is None else next_seq - 1


@dataclass
class EdgeHoldings:
    """What the edge's store holds for one gateway."""

    ranges: list[tuple[int, int]]  # merged received seq ranges
    readings: int  # readings stored, over every series of the gateway
    repeated: int  # readings whose (series, ts) is stored more than once

    @property
    def seqs(self) -> int:
        return sum(hi - lo + 1 for lo, hi in self.ranges)


def edge_holdings(store_path: Path, gateway: str = GW) -> EdgeHoldings:
    store = Store(store_path, read_only=True)
    try:
        series = [s for s in store.series() if s.gateway == gateway]
        data = store.history(series, 0, 2**63 - 1)
    finally:
        store.close()
    readings = sum(len(d.ts) for d in data)
    repeated = sum(len(d.ts) - len(np.unique(d.ts)) for d in data)
    return EdgeHoldings(received_ranges(store_path, gateway), readings, repeated)


def gateway_yaml(
    mqtt_port: int, modbus_port: int, *, poll: float = 0.05, **sections: dict[str, Any]
) -> str:
    """The example anodizing gateway config (31 tags), polled fast, on this run's ports."""
    config = yaml.safe_load((ROOT / "examples" / "anodizing-gateway.yaml").read_text())
    config["gateway"]["id"] = GW
    config["mqtt"].update(port=mqtt_port, status_interval=1, batch_max_delay=0.05)
    config["buffer"].update(path="buffer.sqlite", sync_interval=0.05)
    for connector in config["connectors"]:
        connector.update(port=modbus_port, poll_interval=poll, timeout=0.5)
    for name, values in sections.items():
        config.setdefault(name, {}).update(values)
    return yaml.safe_dump(config, sort_keys=False)


@dataclass
class Rig:
    root: Path
    broker: Mosquitto
    modbus_port: int = field(default_factory=free_port)
    http_port: int = field(default_factory=free_port)
    children: list[Child] = field(default_factory=list)

    @property
    def gateway_dir(self) -> Path:
        return self.root / "gateway"

    @property
    def buffer_path(self) -> Path:
        return self.gateway_dir / "buffer.sqlite"

    @property
    def store_path(self) -> Path:
        return self.root / "edge" / "edge.sqlite"

    def _child(self, name: str, args: list[str]) -> Child:
        child = Child(name, args, self.root / "logs")
        (self.root / "logs").mkdir(parents=True, exist_ok=True)
        self.children.append(child)
        return child.start()

    def log(self, name: str) -> str:
        path = self.root / "logs" / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def simulator(self) -> Child:
        args = ["simulate", "--port", str(self.modbus_port), "--tick", "0.05", "--seed", "7"]
        child = self._child("simulator", console_script("factory-line", *args))
        # Generous start deadlines: a cold start under a loaded 2-core machine (load average
        # 15 with other suites running) has taken over 30 s.
        wait_for_port(self.modbus_port, timeout=180)
        return child

    def write_gateway_config(self, **kwargs: Any) -> Path:
        self.gateway_dir.mkdir(parents=True, exist_ok=True)
        path = self.gateway_dir / "gateway.yaml"
        path.write_text(gateway_yaml(self.broker.port, self.modbus_port, **kwargs))
        return path

    def gateway(self, config: Path | None = None) -> Child:
        config = config or self.gateway_dir / "gateway.yaml"
        args = console_script(
            "gateway", "run", str(config), "--data-dir", str(self.gateway_dir), "--log-json"
        )
        return self._child("gateway", args)

    def edge(self) -> Child:
        data = self.root / "edge"
        data.mkdir(parents=True, exist_ok=True)
        if not (data / "users.sqlite").exists():
            add_user(data)
        config = data / "edge.yaml"
        config.write_text(
            "edge: {id: fault-edge}\n"
            f"mqtt: {{port: {self.broker.port}, client_id: {EDGE_CLIENT},"
            " reconnect_min: 0.2, reconnect_max: 1}\n"
            "store: {path: edge.sqlite, flush_interval: 0.1}\n"
            f"http: {{host: 127.0.0.1, port: {self.http_port}}}\n"
        )
        args = console_script("edge-node", "run", str(config), "--data-dir", str(data))
        start = len(self.log("edge"))
        child = self._child("edge", [*args, "--json-logs"])
        wait_for_port(self.http_port, timeout=180)
        # Subscribed: from now on the broker queues for the edge's persistent session. (Before
        # its first connection a broker acknowledges and discards: docs/reliability.md.)
        self.wait(lambda: '"mqtt_connected"' in self.log("edge")[start:], 180, "edge subscribed")
        return child

    def api(self) -> httpx.Client:
        """A logged-in client of the edge's HTTP API."""
        client = httpx.Client(base_url=f"http://127.0.0.1:{self.http_port}", timeout=5)
        body = {"username": "tester", "password": TEST_PASSWORD, "client": "api"}
        token = client.post("/api/login", json=body).raise_for_status().json()["token"]
        client.headers["Authorization"] = f"Bearer {token}"
        return client

    def gateway_status(self, client: httpx.Client) -> dict[str, Any] | None:
        """The gateway's latest status as the edge shows it (/api/gateways)."""
        for entry in client.get("/api/gateways").raise_for_status().json():
            if entry["gateway"] == GW:
                return entry["status"]
        return None

    def wait(self, condition: Callable[[], object], timeout: float, what: str) -> Any:
        alive = tuple(c for c in self.children if c.alive)
        return wait_until(condition, timeout, what, alive)

    def stop_all(self) -> None:
        for child in reversed(self.children):
            child.stop()


def first_seq_from_log(log: str) -> int:
    """The first seq a fresh gateway issues: last_seq + 1 of its first `gateway_starting`."""
    for line in log.splitlines():
        if '"gateway_starting"' in line:
            return json.loads(line[line.index("{") :])["last_seq"] + 1
    raise AssertionError(f"no gateway_starting line in the gateway log:\n{log[-2000:]}")


def note(message: str) -> None:
    """A figure the test measured: shown with `pytest -s` and in the CI log on failure."""
    print(f"[fault] {message}", file=sys.stderr)


def received_ranges(store_path: Path, gateway: str = GW) -> list[tuple[int, int]]:
    if not store_path.exists():
        return []
    conn = read_only(store_path)
    try:
        rows = conn.execute(
            "SELECT lo, hi FROM received WHERE gateway = ? ORDER BY lo", (gateway,)
        ).fetchall()
    except sqlite3.OperationalError:  # the edge has not created its tables yet
        return []
    finally:
        conn.close()
    return [(lo, hi) for lo, hi in rows]


def down_readings_arrived(store_path: Path, gateway: str = GW) -> bool:
    """Whether the edge shows a gateway's "connector down" reading as every series' last.

    With its device gone a gateway sends one such reading per tag, the last it will send:
    only after the edge holds them is there nothing more to come from that gateway."""
    if not store_path.exists():
        return False
    conn = read_only(store_path)
    try:
        rows = conn.execute("SELECT last_reason FROM series WHERE gateway = ?", (gateway,))
        reasons = [reason for (reason,) in rows.fetchall()]
    except sqlite3.OperationalError:  # the edge has not created its tables yet
        return False
    finally:
        conn.close()
    return bool(reasons) and all((r or "").startswith("connector down") for r in reasons)


def settle(rig: Rig, simulator: Child, timeout: float = 90.0) -> int:
    """Stop producing (the simulator goes away), let the buffer drain into the edge, and return
    the gateway's last committed seq once the edge holds up to it and the buffer is empty.

    An empty buffer means the edge has committed everything only because rows leave it on the
    edge's receipts (`mqtt.confirm: edge`, the default); with `confirm: broker` a replayed
    batch published after the last live one could still be on its way here."""
    simulator.stop()

    def drained() -> bool:
        meta = buffer_meta(rig.buffer_path)
        ranges = received_ranges(rig.store_path)
        last = meta.get("next_seq", 0) - 1
        finished = down_readings_arrived(rig.store_path)
        return finished and meta.get("depth") == 0 and bool(ranges) and ranges[-1][1] == last

    rig.wait(drained, timeout, "the buffer to drain into the edge")
    last = committed_last_seq(rig.buffer_path)
    assert last is not None
    return last


class Tap:
    """A second subscriber with a persistent session: which batches passed the broker, to tell
    a gateway-side loss from an edge-side one when a check fails."""

    def __init__(self, broker: Mosquitto) -> None:
        from tests.integration.test_uplink import Listener  # paho subscriber, thread -> queue

        self.listener = Listener(broker.port, [wire.data_topic(GW)], session="fault-tap")

    def batches(self) -> list[tuple[int, int, bool]]:
        found = []
        while not self.listener.messages.empty():
            batch = wire.decode(self.listener.messages.get_nowait().payload, wire.Batch)
            found.append((batch.first_seq, batch.last_seq, batch.replay))
        return found

    def around(self, ranges: list[tuple[int, int]]) -> str:
        """The batches seen next to the first gap in `ranges`."""
        if len(ranges) < 2:
            return ""
        gap = ranges[0][1]
        near = [b for b in sorted(self.batches()) if abs(b[0] - gap) < 2000]
        return f"; batches through the broker near seq {gap}: {near}"


def assert_exactly_once(rig: Rig, first: int, last: int, tap: Tap | None = None) -> EdgeHoldings:
    """The edge holds every seq first..last, each reading once, and nothing else of GW."""
    held = edge_holdings(rig.store_path)
    extra = tap.around(held.ranges) if tap else ""
    assert held.ranges == [(first, last)], (
        f"gaps or strays: {held.ranges[:10]} vs {first}..{last}{extra}"
    )
    assert held.readings == last - first + 1, (held.readings, last - first + 1)
    assert held.repeated == 0
    return held
