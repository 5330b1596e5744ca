"""The spine end to end: device register -> gateway -> buffer -> MQTT -> edge store -> history API.

Real processes throughout: the line's Modbus simulator, `gateway run`, a private Mosquitto
and `edge-node run`.
"""

from __future__ import annotations

import itertools
import subprocess
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from pymodbus.client import ModbusTcpClient

from factory_common import wire
from tests.e2e.line import GATEWAY_ID, Line
from tests.support.broker import Mosquitto
from tests.support.processes import console_script, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

TEMPERATURE = f"{GATEWAY_ID}/bath1/bath_temperature"


def now_ms() -> int:
    return int(time.time() * 1000)


def test_a_register_written_on_the_device_reaches_edge_history(line: Line) -> None:
    wait_until(
        lambda: line.history(TEMPERATURE, now_ms() - 60_000)["t"],
        30,
        "first readings at the edge",
        line.children,
    )
    written_at = now_ms()
    with ModbusTcpClient("127.0.0.1", port=line.modbus_port) as plc:
        # cycle_time: holding register 3 of unit 1 (line_sim/README.md), 1234 s.
        assert not plc.write_register(3, 1234, device_id=1).isError()

    def arrived(tag: str, expected: float) -> tuple[int, float] | None:
        series = line.history(f"{GATEWAY_ID}/bath1/{tag}", written_at - 1000)
        hits = [
            (t, v)
            for t, v in zip(series["t"], series["v"], strict=True)
            if abs(v - expected) < 1e-6
        ]
        return hits[0] if hits else None

    raw = wait_until(lambda: arrived("cycle_time", 1234), 15, "cycle_time 1234", line.children)
    scaled = wait_until(
        lambda: arrived("cycle_time_min", 1234 / 60 + 0.5),
        15,
        "the scaled view of the same register",
        line.children,
    )
    for first_seen, _ in (raw, scaled):
        # Gateway clock at the read: after the write, within one poll plus scheduling slack.
        assert written_at - 50 <= first_seen <= written_at + 2000
    tags = {t["name"]: t for t in line.api("/api/tags")}
    assert tags[f"{GATEWAY_ID}/bath1/cycle_time_min"]["kind"] == "num"


def test_a_batch_published_twice_is_stored_once(
    line: Line, persistent_mosquitto: Mosquitto
) -> None:
    captured: list[bytes] = []
    spy = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="e2e-spy")
    spy.on_message = lambda _c, _u, msg: captured.append(msg.payload)
    spy.connect("127.0.0.1", persistent_mosquitto.port)
    spy.subscribe(wire.data_topic(GATEWAY_ID), qos=1)
    spy.loop_start()
    wait_until(lambda: captured, 20, "a batch from the gateway", line.children)
    batch = wire.decode(captured[0], wire.Batch)
    wait_until(lambda: _stored(line, batch), 10, "the batch stored at the edge", line.children)
    before = {r.tag: _count_at(line, batch, r.tag) for r in batch.readings}
    duplicates_before = line.api("/api/stats")["ingest"]["readings_duplicate"]

    info = spy.publish(wire.data_topic(GATEWAY_ID), captured[0], qos=1)
    info.wait_for_publish(5)
    wait_until(
        lambda: (
            line.api("/api/stats")["ingest"]["readings_duplicate"]
            >= duplicates_before + len(batch.readings)
        ),
        10,
        "the replay to be recognised",
        line.children,
    )
    spy.loop_stop()
    assert {r.tag: _count_at(line, batch, r.tag) for r in batch.readings} == before
    assert all(count == 1 for count in before.values())


def _stored(line: Line, batch: wire.Batch) -> bool:
    return any(lo <= batch.first_seq and batch.last_seq <= hi for lo, hi in line.received_ranges())


def _count_at(line: Line, batch: wire.Batch, tag: str) -> int:
    reading = next(r for r in batch.readings if r.tag == tag)
    t_ms = reading.ts // 1_000_000
    series = line.history(f"{GATEWAY_ID}/{reading.device}/{tag}", t_ms, t_ms + 1)
    return len(series["t"])


def test_malformed_payload_is_counted_and_ingest_goes_on(
    line: Line, persistent_mosquitto: Mosquitto
) -> None:
    wait_until(
        lambda: line.history(TEMPERATURE, now_ms() - 60_000)["t"],
        30,
        "first readings",
        line.children,
    )
    rejected_before = line.api("/api/stats")["ingest"]["rejected_total"]
    vandal = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="e2e-vandal")
    vandal.connect("127.0.0.1", persistent_mosquitto.port)
    vandal.loop_start()
    for payload in (b"\x00garbage{", b'{"v":99}', b'{"v":1,"gateway":"anodizing-gw1"}'):
        vandal.publish(wire.data_topic(GATEWAY_ID), payload, qos=1).wait_for_publish(5)
    vandal.loop_stop()
    wait_until(
        lambda: line.api("/api/stats")["ingest"]["rejected_total"] >= rejected_before + 3,
        10,
        "the rejects to be counted",
        line.children,
    )
    rejected = line.api("/api/stats")["ingest"]["rejected"][GATEWAY_ID]
    assert rejected.get("malformed", 0) >= 2 and rejected.get("wrong_version", 0) >= 1
    after = now_ms()
    wait_until(
        lambda: line.history(TEMPERATURE, after)["t"],
        10,
        "readings after the garbage",
        line.children,
    )
    assert line.edge.alive and line.gateway.alive


def test_thirty_second_broker_outage_loses_and_duplicates_nothing(
    line: Line, persistent_mosquitto: Mosquitto
) -> None:
    start = now_ms()
    wait_until(
        lambda: line.history(TEMPERATURE, start - 60_000)["t"], 30, "first readings", line.children
    )
    persistent_mosquitto.stop()
    outage_start = now_ms()
    time.sleep(30)  # the gateway keeps polling into its buffer meanwhile
    outage_end = now_ms()
    persistent_mosquitto.start()
    assert line.gateway.alive and line.edge.alive

    # Live readings go first after the reconnect and the backlog is replayed behind them, so
    # "caught up" is the edge's ledger of stored sequence numbers closing its hole again.
    # Data and ledger commit in one transaction: read the data first, the ledger second, so a
    # single range seen afterwards covers everything up to that newest reading.
    def caught_up() -> bool:
        newest = line.history(TEMPERATURE, outage_end, now_ms() + 1000)["t"]
        return bool(newest) and len(line.received_ranges()) == 1

    wait_until(caught_up, 90, "the backlog to reach the edge", line.children)

    series = line.history(TEMPERATURE, outage_start, outage_end)
    stamps = series["t"]
    assert stamps == sorted(set(stamps)), "readings out of order or stored twice"
    # Polled every 0.2 s: about 150 readings in 30 s; no hole longer than a few polls.
    assert len(stamps) >= 120
    gaps = [b - a for a, b in itertools.pairwise(stamps)]
    assert max(gaps) < 1500, f"a hole of {max(gaps)} ms in the outage window"


def test_malformed_configs_fail_clearly_and_touch_nothing(tmp_path: Path) -> None:
    bad_gateway = tmp_path / "gateway.yaml"
    bad_gateway.write_text(
        "gateway:\n  id: gw1\nconnectors:\n  - type: modbus_tcp\n    name: plc\n"
        "    host: 127.0.0.1\n    port: 70000\n    devices: []\n"
    )
    result = subprocess.run(
        console_script("gateway", "run", str(bad_gateway), "--data-dir", str(tmp_path / "gw")),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert f"{bad_gateway}:7: connectors[0].port" in output
    assert "Traceback" not in output
    assert not (tmp_path / "gw" / "buffer.sqlite").exists()

    bad_edge = tmp_path / "edge.yaml"
    bad_edge.write_text("edge:\n  id: e1\nhttp:\n  port: eighty\n")
    result = subprocess.run(
        console_script("edge-node", "run", str(bad_edge), "--data-dir", str(tmp_path / "edge")),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert f"{bad_edge}:4: http.port" in output
    assert "Traceback" not in output
