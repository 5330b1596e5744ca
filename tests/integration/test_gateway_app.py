"""The whole gateway process: a real Modbus server -> runner -> buffer -> uplink -> Mosquitto."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import textwrap
from pathlib import Path

import pytest

from factory_common import wire
from gateway_image.firmware.app import Gateway, GatewaySetupError
from gateway_image.firmware.config import GatewayConfig, parse_gateway_config
from tests.integration.test_uplink import Listener
from tests.support.broker import Mosquitto
from tests.support.modbus_server import ModbusTestServer, UnitData
from tests.support.processes import console_script

GW = "app-gw1"


def config_text(mqtt_port: int, modbus_port: int) -> str:
    return textwrap.dedent(
        f"""
        gateway: {{id: {GW}}}
        mqtt: {{port: {mqtt_port}, status_interval: 0.3, batch_max_delay: 0.05}}
        buffer: {{path: buf/buffer.sqlite, sync_interval: 0.02}}
        connectors:
          - type: modbus_tcp
            name: bath-plc
            host: 127.0.0.1
            port: {modbus_port}
            poll_interval: 0.1
            devices:
              - name: bath1
                unit: 1
                tags:
                  - {{name: temperature, table: holding, address: 0, type: int16, scale: 0.1}}
        """
    )


def make_config(mqtt_port: int, modbus_port: int) -> GatewayConfig:
    return parse_gateway_config(config_text(mqtt_port, modbus_port))


async def next_on(listener: Listener, topic: str, kind: type[wire.M]) -> wire.M:
    while True:
        msg = await asyncio.to_thread(listener.get, 10)
        if msg.topic == topic:
            return wire.decode(msg.payload, kind)


async def test_gateway_forwards_polled_values_and_says_goodbye(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    plc = ModbusTestServer({1: UnitData(holding={0: [215]})})
    await plc.start()
    listener = Listener(mosquitto.port, [wire.data_topic(GW), wire.status_topic(GW)])
    gateway = Gateway(make_config(mosquitto.port, plc.port), tmp_path)
    stop = asyncio.Event()
    task = asyncio.create_task(gateway.run(stop))
    try:
        batch = await next_on(listener, wire.data_topic(GW), wire.Batch)
        first = batch.readings[0]
        assert (first.device, first.tag, first.value) == ("bath1", "temperature", 21.5)
        assert batch.boot == gateway.boot
        status = await next_on(listener, wire.status_topic(GW), wire.GatewayStatus)
        while not status.connectors or status.connectors[0].state != "up":
            status = await next_on(listener, wire.status_topic(GW), wire.GatewayStatus)
        assert status.online and status.connectors[0].name == "bath-plc"
        stop.set()
        async with asyncio.timeout(10):
            await task
        status = await next_on(listener, wire.status_topic(GW), wire.GatewayStatus)
        while status.online:
            status = await next_on(listener, wire.status_topic(GW), wire.GatewayStatus)
        assert status.boot == gateway.boot and status.last_seq >= batch.last_seq
        assert (tmp_path / "buf" / "buffer.sqlite").exists()
    finally:
        stop.set()
        listener.close()
        await plc.stop()


def test_only_runs_a_group_under_its_own_identity(tmp_path: Path) -> None:
    config = make_config(1883, 5020)
    gateway = Gateway(config, tmp_path, only=["bath-plc"])
    assert gateway.wire_id == f"{GW}.bath-plc"
    assert gateway.buffer_path == tmp_path / "buf" / "buffer.bath-plc.sqlite"
    assert [c.name for c in gateway.connectors] == ["bath-plc"]
    assert Gateway(config, tmp_path, only=["bath-plc"], group="g1").wire_id == f"{GW}.g1"
    with pytest.raises(GatewaySetupError, match=r"'nope'.*'bath-plc'"):
        Gateway(config, tmp_path, only=["nope"])


def test_cli_run_stops_cleanly_on_sigterm(tmp_path: Path, mosquitto: Mosquitto) -> None:
    config = tmp_path / "gw.yaml"
    config.write_text(config_text(mosquitto.port, 1))  # nothing listens on port 1: degraded
    args = console_script("gateway", "run", str(config), "--data-dir", str(tmp_path))
    listener = Listener(mosquitto.port, [wire.status_topic(GW)])
    proc = subprocess.Popen([*args, "--log-json"], stderr=subprocess.PIPE, cwd=Path.cwd())
    try:
        status = wire.decode(listener.get(15).payload, wire.GatewayStatus)
        assert status.online
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0
        while status.online:
            status = wire.decode(listener.get(5).payload, wire.GatewayStatus)
    finally:
        listener.close()
        if proc.poll() is None:
            proc.kill()
    bad = subprocess.run([*args[:2], str(tmp_path / "missing.yaml")], capture_output=True)
    assert bad.returncode == 2 and b"missing.yaml: no such file" in bad.stderr
