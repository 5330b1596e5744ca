"""A real `edge-node` process on a test broker, with a user to log in: for hostile-input tests."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.support.edge_auth import TEST_PASSWORD, add_user
from tests.support.ports import free_port, wait_for_port
from tests.support.processes import Child, console_script, wait_until


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
