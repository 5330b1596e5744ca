"""A small simulated line for end-to-end tests: simulator, gateway and edge node as real processes.

The broker is the test's own Mosquitto (a fixture), so a test may stop and restart it.
"""

from __future__ import annotations

import sqlite3
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import yaml

from tests.support.ports import free_port, wait_for_port
from tests.support.processes import Child, console_script, wait_until

ROOT = Path(__file__).resolve().parents[2]
GATEWAY_ID = "anodizing-gw1"
PASSWORD = "e2e-correct-horse-battery"


def gateway_config(mqtt_port: int, modbus_port: int, poll_interval: float) -> dict[str, Any]:
    """The shipped example, pointed at this test's ports, polling faster, plus a scaled view."""
    config = yaml.safe_load((ROOT / "examples" / "anodizing-gateway.yaml").read_text())
    config["mqtt"].update(port=mqtt_port, status_interval=1, batch_max_delay=0.1)
    plc = config["connectors"][0]
    plc.update(port=modbus_port, poll_interval=poll_interval)
    bath = next(d for d in plc["devices"] if d["name"] == "bath1")
    # The same holding register as cycle_time, read in minutes: proves scale and offset.
    bath["tags"].append(
        {
            "name": "cycle_time_min",
            "table": "holding",
            "address": 3,
            "type": "uint16",
            "scale": 1 / 60,
            "offset": 0.5,
            "unit": "min",
        }
    )
    return config


def edge_config(mqtt_port: int, http_port: int) -> dict[str, Any]:
    config = yaml.safe_load((ROOT / "examples" / "anodizing-edge.yaml").read_text())
    config["mqtt"]["port"] = mqtt_port
    config["http"]["port"] = http_port
    return config


class Line:
    """Simulator + gateway + edge node around a broker the caller runs."""

    def __init__(
        self,
        workdir: Path,
        mqtt_port: int,
        poll_interval: float = 0.2,
        simulator_args: tuple[str, ...] = (),
        edge_extra: dict[str, Any] | None = None,
    ) -> None:
        self.workdir = workdir
        self.logs = workdir / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.modbus_port = free_port()
        self.http_port = free_port()
        self.gateway_yaml = workdir / "gateway.yaml"
        self.gateway_yaml.write_text(
            yaml.safe_dump(gateway_config(mqtt_port, self.modbus_port, poll_interval))
        )
        self.edge_yaml = workdir / "edge.yaml"
        edge = edge_config(mqtt_port, self.http_port) | (edge_extra or {})
        self.edge_yaml.write_text(yaml.safe_dump(edge, allow_unicode=True))
        self.edge_dir = workdir / "edge"
        self.simulator = Child(
            "simulator",
            console_script(
                "factory-line",
                "simulate",
                "--port",
                str(self.modbus_port),
                "--seed",
                "7",
                "--tick",
                "0.1",
                *simulator_args,
            ),
            self.logs,
        )
        self.edge = Child(
            "edge",
            console_script(
                "edge-node", "run", str(self.edge_yaml), "--data-dir", str(self.edge_dir)
            ),
            self.logs,
        )
        self.gateway = Child(
            "gateway",
            console_script(
                "gateway", "run", str(self.gateway_yaml), "--data-dir", str(workdir / "gateway")
            ),
            self.logs,
        )
        self.url = f"http://127.0.0.1:{self.http_port}"
        self.token = ""

    @property
    def children(self) -> tuple[Child, ...]:
        return (self.simulator, self.edge, self.gateway)

    def start(self) -> Line:
        self.simulator.start()
        wait_for_port(self.modbus_port)
        self._add_user()
        self.edge.start()
        wait_until(self._edge_answers, 20, "the edge API", (self.edge,))
        self.token = self._login()
        self.gateway.start()
        return self

    def stop(self) -> None:
        for child in (self.gateway, self.edge, self.simulator):
            child.stop()

    def _add_user(self) -> None:
        secret = self.workdir / "password.txt"
        secret.write_text(PASSWORD + "\n")
        subprocess.run(
            console_script(
                "edge-node",
                "user",
                "add",
                "e2e",
                "--role",
                "engineer",
                "--data-dir",
                str(self.edge_dir),
                "--config",
                str(self.edge_yaml),
                "--password-file",
                str(secret),
            ),
            check=True,
            capture_output=True,
            timeout=60,
        )

    def _edge_answers(self) -> bool:
        try:
            return httpx.get(f"{self.url}/api/health", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def _login(self) -> str:
        response = httpx.post(
            f"{self.url}/api/login",
            json={"username": "e2e", "password": PASSWORD, "client": "api"},
            timeout=10,
        )
        response.raise_for_status()
        return response.json()["token"]

    def api(self, path: str, **params: Any) -> Any:
        response = httpx.get(
            f"{self.url}{path}",
            params=params,
            timeout=10,
            headers={"Authorization": f"Bearer {self.token}"},
        )
        response.raise_for_status()
        return response.json()

    def history(self, tag: str, start_ms: int, end_ms: int | None = None) -> dict[str, Any]:
        """Raw history of one tag; empty while the edge has not seen the tag yet (404)."""
        end_ms = end_ms or int(time.time() * 1000) + 1000
        try:
            body = self.api("/api/history", tag=tag, start=start_ms, end=end_ms)
        except httpx.HTTPStatusError as exc:
            if exc.response.status_code == 404:
                return {"t": [], "v": []}
            raise
        (series,) = body["series"]
        return series

    def received_ranges(self) -> list[tuple[int, int]]:
        """The edge's own record of which sequence numbers it stored (its dedup ledger)."""
        db = sqlite3.connect(f"file:{self.edge_dir / 'history.sqlite'}?mode=ro", uri=True)
        try:
            rows = db.execute(
                "SELECT lo, hi FROM received WHERE gateway = ? ORDER BY lo", (GATEWAY_ID,)
            ).fetchall()
        finally:
            db.close()
        return [(lo, hi) for lo, hi in rows]
