"""A real edge-node process fed over a real Mosquitto; headless Chromium driven by playwright."""

from __future__ import annotations

import contextlib
import math
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from edge_node.auth import Role
from edge_node.config import EdgeConfig
from factory_common.wire import (
    WIRE_VERSION,
    Batch,
    ConnectorHealth,
    GatewayStatus,
    Reading,
    TagCatalogue,
    TagInfo,
    TagType,
    data_topic,
    encode,
    now_ns,
    status_topic,
    tags_topic,
)
from tests.support.broker import Mosquitto
from tests.support.edge_auth import add_user
from tests.support.requirements import require_binary

OUTPUT = Path(__file__).resolve().parents[2] / "test-output"
GATEWAY = "gw1"
TEMP = f"{GATEWAY}/bath/temp"
# Limits for the bath temperature: given in the edge config when monitoring is present.
LIMITS = {"mean": 20.0, "sigma": 1.5, "lcl": 15.5, "ucl": 24.5, "lsl": 12.0, "usl": 28.0}
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@dataclass
class Publisher:
    """Publishes wire batches for one gateway like its uplink does (QoS 1, sequence numbers)."""

    broker: Mosquitto
    seq: int = 0
    client: mqtt.Client = field(init=False)

    def __post_init__(self) -> None:
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="browser-test-gw")
        self.client.connect("127.0.0.1", self.broker.port)
        self.client.loop_start()

    def readings(self, readings: list[Reading]) -> None:
        batch = Batch(
            v=WIRE_VERSION,
            gateway=GATEWAY,
            boot="boot-1",
            first_seq=self.seq,
            last_seq=self.seq + len(readings) - 1,
            readings=readings,
        )
        self.seq += len(readings)
        self.client.publish(data_topic(GATEWAY), encode(batch), qos=1).wait_for_publish(5)

    def status(self) -> None:
        connectors = [
            ConnectorHealth(name="bath-plc", type="modbus_tcp", state="up", polls=600,
                            readings=1800, latency_ms=4.2, last_success=now_ns()),
            ConnectorHealth(name="colour", type="serial_line", state="degraded", polls=40,
                            errors=3, last_error="checksum mismatch"),
        ]  # fmt: skip
        status = GatewayStatus(
            v=WIRE_VERSION, gateway=GATEWAY, online=True, ts=now_ns(), version="0.1.0",
            boot="boot-1", uptime_s=5400.0, buffer_depth=12, buffer_bytes=4096,
            last_seq=self.seq, dropped={"disk_budget": 0}, connectors=connectors,
        )  # fmt: skip
        self.client.publish(status_topic(GATEWAY), encode(status), qos=1, retain=True)

    def catalogue(self) -> None:
        """The gateway's retained tag catalogue: units, a label, a writable setpoint."""
        tags = [
            TagInfo("bath", "temp", TagType.FLOAT, unit="°C", label="Bath temperature"),
            TagInfo("bath", "current", TagType.FLOAT, unit="A"),
            TagInfo("bath", "running", TagType.BOOL),
            TagInfo("bath", "sp", TagType.FLOAT, unit="°C", label="Setpoint", writable=True,
                    min=10, max=30, precision=1),
            TagInfo("line", "product", TagType.STR),
        ]  # fmt: skip
        catalogue = TagCatalogue(v=WIRE_VERSION, gateway=GATEWAY, ts=now_ns(), tags=tags)
        self.client.publish(tags_topic(GATEWAY), encode(catalogue), qos=1, retain=True)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def history_readings(minutes: int = 20) -> list[Reading]:
    """The line's last minutes at 1 Hz: bath temperature within limits, running, a product."""
    end = now_ns() - 2 * 10**9
    start = end - minutes * 60 * 10**9
    out: list[Reading] = []
    for i in range(minutes * 60):
        ts = start + i * 10**9
        out.append(Reading(device="bath", tag="temp", ts=ts, value=20 + 2.5 * math.sin(i / 90)))
        out.append(Reading(device="bath", tag="current", ts=ts, value=120 + (i % 60) / 10))
    out.append(Reading(device="bath", tag="running", ts=end, value=True))
    out.append(Reading(device="line", tag="product", ts=end, value="P-1042"))
    return out


@dataclass
class EdgeProcess:
    url: str
    data_dir: Path
    process: subprocess.Popen[str]
    log: Path


# The paper's case, small: a defect-level colour records the product and prints its label.
DEFECT_RULE = """
rules:
  - id: colour-defect
    trigger: {reading: {series: "*/meter1/delta_e"}}
    when: ["value > 3.0"]
    once_per: "latest('product_id')"
    actions:
      - cloud_event:
          kind: defect
          key: "=gateway + '/' + latest('product_id')"
          payload: {ts: "=ts", product_id: "=latest('product_id')", recipe_id: "=latest('recipe')",
                    series: "=series", value: "=value", limit: 3.0}
      - command:
          gateway: "=gateway"
          writes: [{device: bath, tag: print_label, value: true}]
          timeout: 5
"""


def edge_yaml(broker: Mosquitto) -> str:
    text = (
        "edge: {id: line1-edge}\n"
        f"mqtt: {{host: 127.0.0.1, port: {broker.port}, client_id: edge-browser-test}}\n"
        "store: {path: edge.sqlite, flush_interval: 0.1}\n"
        "http: {host: 127.0.0.1, port: 0}\n"
    )
    if "monitoring" in EdgeConfig.model_fields:  # alarms: limits for the bath temperature
        entries = ", ".join(f"{k}: {v}" for k, v in LIMITS.items())
        text += f"monitoring: {{limits: {{{TEMP}: {{{entries}}}}}}}\n"
    if "rules" in EdgeConfig.model_fields:  # the rules engine
        text += "rules: {path: rules.yaml}\n"
    return text


@pytest.fixture
def edge(mosquitto: Mosquitto, tmp_path: Path) -> Iterator[EdgeProcess]:
    """`edge-node run` as its own process, with a viewer, an operator and an engineer."""
    data_dir = tmp_path / "edge"
    data_dir.mkdir()
    for name, role in (("vic", Role.VIEWER), ("otto", Role.OPERATOR), ("erin", Role.ENGINEER)):
        add_user(data_dir, name, role)
    (data_dir / "rules.yaml").write_text(DEFECT_RULE)
    config = tmp_path / "edge.yaml"
    config.write_text(edge_yaml(mosquitto))
    process = subprocess.Popen(
        [sys.executable, "-m", "edge_node.cli", "run", str(config), "--data-dir", str(data_dir),
         "--json-logs"],
        stdout=subprocess.PIPE, stderr=open(tmp_path / "edge.log", "w"), text=True,  # noqa: SIM115
        env=os.environ | {"PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    assert process.stdout is not None
    line = process.stdout.readline()
    if "http://" not in line:
        process.kill()
        pytest.fail(f"edge node did not start: {line}\n{(tmp_path / 'edge.log').read_text()}")
    url = line[line.index("http://") :].split()[0]
    try:
        yield EdgeProcess(url, data_dir, process, tmp_path / "edge.log")
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture
def publisher(mosquitto: Mosquitto) -> Iterator[Publisher]:
    pub = Publisher(mosquitto)
    yield pub
    pub.close()


class TopicWatcher:
    """Records every message on a topic filter, from a paho network thread."""

    def __init__(self, broker: Mosquitto, topic: str) -> None:
        self.messages: list[tuple[str, bytes]] = []
        self._subscribed = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"watch-{time.time_ns()}")
        self.client.on_message = lambda _c, _u, m: self.messages.append((m.topic, m.payload))
        self.client.on_subscribe = lambda *_a: self._subscribed.set()
        self.client.connect("127.0.0.1", broker.port)
        self.client.subscribe(topic, qos=1)
        self.client.loop_start()
        assert self._subscribed.wait(5), "subscription not confirmed"

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@contextlib.contextmanager
def launch_chromium() -> Iterator[Any]:
    """The system Chromium, headless, driven by playwright (skips, or fails in CI, without)."""
    chromium = require_binary("chromium", "sudo apt-get install chromium (scripts/bootstrap.sh)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright (dev)")
    with sync_api.sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        yield instance
        instance.close()


@pytest.fixture
def browser() -> Iterator[object]:
    with launch_chromium() as instance:
        yield instance
