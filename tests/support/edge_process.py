"""A real `edge-node` process on a test broker, with a user to log in: for hostile-input tests."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from factory_common import wire
from tests.support.broker import Mosquitto
from tests.support.edge_auth import TEST_PASSWORD, add_user
from tests.support.ports import free_port, wait_for_port
from tests.support.processes import Child, console_script, wait_until
from tests.support.requirements import require_binary


@dataclass
class EdgeProcess:
    child: Child
    http_port: int
    data_dir: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def api(self, timeout: float = 30) -> httpx.Client:
        """An httpx client logged in as an engineer (bearer token)."""
        client = httpx.Client(base_url=self.url, timeout=timeout)
        body = {"username": "tester", "password": TEST_PASSWORD, "client": "api"}
        token = client.post("/api/login", json=body).raise_for_status().json()["token"]
        client.headers["Authorization"] = f"Bearer {token}"
        return client


def start_edge(
    root: Path,
    broker_port: int,
    client_id: str,
    extra_yaml: str = "",
    tls: dict[str, str] | None = None,
) -> EdgeProcess:
    """Start `edge-node run` (JSON logs in root/edge.log) and wait until it has subscribed.

    `tls`: the mqtt section's tls mapping (ca, cert, key) for a broker that requires it."""
    data = root / "edge"
    data.mkdir(parents=True, exist_ok=True)
    add_user(data)
    http_port = free_port()
    config = data / "edge.yaml"
    tls_yaml = "" if tls is None else f", tls: {json.dumps(tls)}"
    config.write_text(
        f"edge: {{id: {client_id}}}\n"
        f"mqtt: {{port: {broker_port}, client_id: {client_id},"
        f" reconnect_min: 0.2, reconnect_max: 1{tls_yaml}}}\n"
        "store: {path: edge.sqlite, flush_interval: 0.05}\n"
        f"http: {{host: 127.0.0.1, port: {http_port}}}\n" + extra_yaml
    )
    args = console_script("edge-node", "run", str(config), "--data-dir", str(data), "--json-logs")
    child = Child("edge", args, root).start()
    # Generous: on a loaded 2-core machine a cold start of edge-node has taken over 30 s.
    wait_until(lambda: _listening(http_port), 180, "edge-node listening", (child,))
    wait_until(lambda: '"mqtt_connected"' in child.log(), 180, "edge subscribed", (child,))
    return EdgeProcess(child, http_port, data)


def _listening(port: int) -> bool:
    try:
        wait_for_port(port, timeout=0.5)
    except TimeoutError:
        return False
    return True


@dataclass
class Receipts:
    """One gateway's receipts as the edge publishes them: the seq ranges it holds."""

    stored: set[tuple[int, int]] = field(default_factory=set)
    changed: threading.Condition = field(default_factory=threading.Condition)

    def on_message(self, _c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        ranges = wire.decode(msg.payload, wire.Stored).ranges
        with self.changed:
            self.stored = set(ranges)
            self.changed.notify_all()

    def covers(self, first: int, last: int) -> bool:
        return any(lo <= first and last <= hi for lo, hi in self.stored)

    def wait_covered(self, edge: EdgeProcess, first: int, last: int) -> None:
        with self.changed:
            ok = self.changed.wait_for(
                lambda: self.covers(first, last) or not edge.child.alive, timeout=60
            )
        assert edge.child.alive, f"edge-node exited:\n{edge.child.log()[-3000:]}"
        assert ok, (
            f"never stored {first}..{last}; receipt {self.stored}:\n{edge.child.log()[-3000:]}"
        )


@dataclass
class EdgeOnBroker:
    edge: EdgeProcess
    publisher: mqtt.Client
    receipts: Receipts


def _client(broker: Mosquitto, client_id: str) -> mqtt.Client:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id)
    client.connect("127.0.0.1", broker.port)
    client.loop_start()
    return client


@contextmanager
def edge_on_broker(root: Path, edge_id: str, gateway: str) -> Iterator[EdgeOnBroker]:
    """A private Mosquitto, a real `edge-node`, a publisher posing as gateways, and `gateway`'s
    receipts as the edge publishes them."""
    binary = require_binary("mosquitto", "run `sudo apt-get install mosquitto` (or `make deps`)")
    broker = Mosquitto(binary, root / "mosquitto")
    broker.start()
    receipts = Receipts()
    watcher = _client(broker, f"{edge_id}-watcher")
    watcher.on_message = receipts.on_message
    watcher.subscribe(wire.stored_topic(gateway), qos=1)
    publisher = _client(broker, f"{edge_id}-publisher")
    edge = None
    try:
        edge = start_edge(root, broker.port, edge_id)
        yield EdgeOnBroker(edge, publisher, receipts)
    finally:
        for client in (publisher, watcher):
            client.disconnect()
            client.loop_stop()
        if edge is not None:
            edge.child.stop()
        broker.stop()
