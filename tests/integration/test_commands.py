"""Write commands against a real pymodbus server: verified, rejected, once only, expired, failed.

Writes are counted at the server (function codes 5, 6, 15, 16), so "not written" is proven.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from structlog.testing import capture_logs

from factory_common import wire
from factory_common.wire import AckStatus, Command, CommandAck, Reading, Write
from gateway_image.firmware.buffer import DurableBuffer
from gateway_image.firmware.commands import CommandExecutor, ExecutedStore
from gateway_image.firmware.config import parse_gateway_config
from gateway_image.firmware.config.gateway import GatewayConfig
from gateway_image.firmware.runner import ConnectorRunner, runner_for
from gateway_image.firmware.uplink import Uplink
from tests.support.broker import Mosquitto
from tests.support.modbus_server import ModbusTestServer, UnitData

WRITE_CODES = {5, 6, 15, 16}
CLAMP_ADDRESS, CLAMP_LIMIT = 4, 500  # the device silently limits this register to 500


async def clamp(fc: int, start: int, address: int, count: int, regs: list, values: list | None):  # type: ignore[no-untyped-def]
    """A device that accepts a setpoint but holds its own, lower limit (read-back differs)."""
    if values and fc in (6, 16) and address == CLAMP_ADDRESS:
        values[0] = min(values[0], CLAMP_LIMIT)
    return None


CONFIG = """
gateway: {{id: gw1}}
mqtt: {{port: {mqtt_port}, batch_max_delay: 0.01, status_interval: 60}}
connectors:
  - type: modbus_tcp
    name: plc
    host: 127.0.0.1
    port: {port}
    poll_interval: 0.05
    devices:
      - name: bath1
        unit: 1
        tags:
          - {{name: setpoint, table: holding, address: 0, type: float32, writable: true,
             min: 0, max: 100, unit: "°C"}}
          - {{name: level, table: holding, address: 2, type: int16, scale: 0.1, writable: true}}
          - {{name: recipe, table: holding, address: 3, type: uint16}}
          - {{name: limited, table: holding, address: 4, type: uint16, writable: true}}
          - {{name: pump, table: coil, address: 0, writable: true}}
"""


@dataclass
class Rig:
    server: ModbusTestServer
    config: GatewayConfig
    runner: ConnectorRunner
    executor: CommandExecutor
    readings: list[Reading]

    def writes(self) -> int:
        return sum(1 for pdu in self.server.requests if pdu.function_code in WRITE_CODES)

    async def holding(self, address: int, count: int = 1) -> list[int]:
        return await self.server.get(1, 3, address, count)


def command(id_: str, *writes: Write, expires_in: float = 30.0, gateway: str = "gw1") -> Command:
    now = wire.now_ns()
    return Command(
        v=wire.WIRE_VERSION,
        id=id_,
        gateway=gateway,
        writes=list(writes),
        issued_at=now,
        expires_at=now + int(expires_in * 1e9),
        issued_by="test@edge",
    )


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    unit = UnitData(holding={0: [0] * 6}, coils={0: [False] * 8}, action=clamp)
    server = ModbusTestServer({1: unit})
    await server.start()
    config = parse_gateway_config(CONFIG.format(port=server.port, mqtt_port=1883))
    readings: list[Reading] = []
    polled = asyncio.Event()

    async def sink(batch: list[Reading]) -> None:
        readings.extend(batch)
        polled.set()

    runner = runner_for(config.connectors[0], sink, "gw1")
    task = asyncio.create_task(runner.run())
    store = ExecutedStore(tmp_path / "commands.sqlite")
    executor = CommandExecutor("gw1", config.connectors, lambda: [runner], store)
    try:
        await asyncio.wait_for(polled.wait(), 5)
        assert runner.state == "up"
        yield Rig(server, config, runner, executor, readings)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        executor.close()
        await server.stop()


async def test_verified_write_is_done_with_readback_and_logged(rig: Rig) -> None:
    cmd = command("c1", Write("bath1", "setpoint", 42.5), Write("bath1", "level", 12.3))
    with capture_logs() as logs:
        ack = await rig.executor(cmd)
    assert ack.status is AckStatus.DONE, ack.detail
    assert [(r.tag, r.ok, r.readback) for r in ack.results] == [
        ("setpoint", True, 42.5),
        ("level", True, 12.3),
    ]
    assert await rig.holding(2) == [123]  # 12.3 / scale 0.1, written as an int16
    assert rig.writes() == 2
    writes = [e for e in logs if e["event"] == "command_write"]
    assert [(e["command"], e["issued_by"], e["tag"], e["value"], e["result"]) for e in writes] == [
        ("c1", "test@edge", "setpoint", 42.5, "ok"),
        ("c1", "test@edge", "level", 12.3, "ok"),
    ]
    assert writes[0]["readback"] == 42.5


async def test_coil_write_and_polling_keep_running(rig: Rig) -> None:
    ack = await rig.executor(command("c-coil", Write("bath1", "pump", True)))
    assert ack.status is AckStatus.DONE and ack.results[0].readback is True
    before = len(rig.readings)
    await asyncio.sleep(0.3)
    pump = [r for r in rig.readings[before:] if r.tag == "pump"]
    assert pump and pump[-1].value is True  # the poller sees the written value


@pytest.mark.parametrize(
    ("write", "reason"),
    [
        (Write("bath1", "setpoint", 150.0), "above its maximum 100 °C"),
        (Write("bath1", "setpoint", -1), "below its minimum 0"),
        (Write("bath1", "setpoint", "hot"), "numeric: send a finite number"),
        (Write("bath1", "pump", 2), "bool tag: send true or false"),
        (Write("bath1", "level", 4000.0), "int16"),  # 40000 raw does not fit an int16
        # Not rounded to 22 (which would read back "equal" within half a step): refused.
        (Write("bath1", "limited", 21.5), "takes a whole number"),
        (Write("bath1", "level", 1.05), "takes a multiple of 0.1"),
        (Write("bath1", "recipe", 7), "not writable"),
        (Write("bath2", "setpoint", 1.0), "unknown tag bath2/setpoint"),
    ],
)
async def test_invalid_writes_are_rejected_and_nothing_is_written(
    rig: Rig, write: Write, reason: str
) -> None:
    # A valid write in the same command is not executed either: a recipe is all or nothing.
    ack = await rig.executor(command("bad", Write("bath1", "level", 1.0), write))
    assert ack.status is AckStatus.REJECTED
    assert reason in ack.detail
    assert reason in ack.results[1].error
    assert "another write of this command was rejected" in ack.results[0].error
    assert rig.writes() == 0


async def test_duplicate_id_is_executed_once(rig: Rig) -> None:
    cmd = command("once", Write("bath1", "setpoint", 10.0))
    first = await rig.executor(cmd)
    await rig.server.stop()  # a second execution could not even reach the device
    again = await rig.executor(cmd)
    assert first.status is AckStatus.DONE
    assert again.status is AckStatus.DUPLICATE
    assert again.results == first.results
    assert "already handled" in again.detail and "done" in again.detail


async def test_duplicate_delivered_concurrently_is_executed_once(rig: Rig) -> None:
    cmd = command("twice", Write("bath1", "setpoint", 11.0), Write("bath1", "level", 2.0))
    acks = await asyncio.gather(rig.executor(cmd), rig.executor(cmd))
    assert sorted(a.status for a in acks) == [AckStatus.DONE, AckStatus.DUPLICATE]
    assert rig.writes() == 2


async def test_executed_ids_survive_a_restart(rig: Rig, tmp_path: Path) -> None:
    cmd = command("persist", Write("bath1", "setpoint", 12.0))
    assert (await rig.executor(cmd)).status is AckStatus.DONE
    rig.executor.close()
    store = ExecutedStore(tmp_path / "commands.sqlite")
    restarted = CommandExecutor("gw1", rig.config.connectors, lambda: [rig.runner], store)
    try:
        assert (await restarted(cmd)).status is AckStatus.DUPLICATE
    finally:
        restarted.close()
    assert rig.writes() == 1


async def test_expired_command_is_refused_and_not_written(rig: Rig) -> None:
    ack = await rig.executor(command("late", Write("bath1", "setpoint", 5.0), expires_in=-2))
    assert ack.status is AckStatus.EXPIRED
    assert "after expires_at" in ack.detail
    assert rig.writes() == 0
    assert await rig.holding(0, 2) == [0, 0]


async def test_readback_that_differs_fails_and_stops_the_recipe(rig: Rig) -> None:
    cmd = command("clamped", Write("bath1", "limited", 900), Write("bath1", "setpoint", 20.0))
    ack = await rig.executor(cmd)
    assert ack.status is AckStatus.FAILED
    assert ack.results[0].readback == CLAMP_LIMIT
    assert "read back 500, expected 900" in ack.results[0].error
    assert ack.results[1].error == "not executed: an earlier write failed"
    assert rig.writes() == 1


async def test_device_gone_fails_the_command(rig: Rig) -> None:
    await rig.server.stop()
    ack = await rig.executor(command("gone", Write("bath1", "setpoint", 3.0)))
    assert ack.status is AckStatus.FAILED
    assert "write failed" in ack.results[0].error


async def test_command_for_another_gateway_is_rejected(rig: Rig) -> None:
    ack = await rig.executor(command("x", Write("bath1", "setpoint", 3.0), gateway="gw2"))
    assert ack.status is AckStatus.REJECTED and "addressed to gw2" in ack.detail


async def test_command_over_mqtt_gets_its_ack(
    rig: Rig, mosquitto: Mosquitto, tmp_path: Path
) -> None:
    """End to end: Command on the command topic -> executor -> CommandAck on the ack topic."""
    config = rig.config.mqtt.model_copy(update={"port": mosquitto.port})
    buffer = DurableBuffer.open(tmp_path / "buffer.sqlite", max_bytes=10**7)
    uplink = Uplink("gw1", config, buffer, boot="b1", command_handler=rig.executor)
    acks: asyncio.Queue[CommandAck] = asyncio.Queue()
    loop = asyncio.get_running_loop()
    edge = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="edge-test")
    edge.on_message = lambda _c, _u, m: loop.call_soon_threadsafe(
        acks.put_nowait, wire.decode(m.payload, CommandAck)
    )
    edge.connect("127.0.0.1", mosquitto.port)
    edge.subscribe(wire.ack_topic("gw1"), qos=1)
    edge.loop_start()
    task = asyncio.create_task(uplink.run())
    try:
        async with asyncio.timeout(10):
            await uplink.wait_online()
            cmd = command("mqtt-1", Write("bath1", "setpoint", 33.0))
            for _ in range(2):  # delivered twice: executed once
                edge.publish(wire.command_topic("gw1"), wire.encode(cmd), qos=1)
            first, second = await acks.get(), await acks.get()
        assert (first.id, first.status, first.results[0].readback) == ("mqtt-1", "done", 33.0)
        assert second.status is AckStatus.DUPLICATE
        assert rig.writes() == 1
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        edge.loop_stop()
        edge.disconnect()
        with contextlib.suppress(Exception):
            await buffer.aclose()


async def test_gateway_process_executes_commands_by_default(
    rig: Rig, mosquitto: Mosquitto, tmp_path: Path
) -> None:
    """The real Gateway (buffer, runners, uplink) acks a command written through its runner."""
    from gateway_image.firmware.app import Gateway

    config = parse_gateway_config(CONFIG.format(port=rig.server.port, mqtt_port=mosquitto.port))
    gateway = Gateway(config, tmp_path / "gw")
    acks: asyncio.Queue[CommandAck] = asyncio.Queue()
    loop = asyncio.get_running_loop()
    edge = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="edge-app-test")
    online = asyncio.Event()  # the gateway's retained status says it is connected

    def on_message(_c: object, _u: object, m: mqtt.MQTTMessage) -> None:
        if m.topic == wire.status_topic("gw1"):
            if wire.decode(m.payload, wire.GatewayStatus).online:
                loop.call_soon_threadsafe(online.set)
        else:
            loop.call_soon_threadsafe(acks.put_nowait, wire.decode(m.payload, CommandAck))

    edge.on_message = on_message
    edge.connect("127.0.0.1", mosquitto.port)
    edge.subscribe([(wire.ack_topic("gw1"), 1), (wire.status_topic("gw1"), 1)])
    edge.loop_start()
    stop = asyncio.Event()
    task = asyncio.create_task(gateway.run(stop))
    try:
        async with asyncio.timeout(10):
            await online.wait()
            cmd = command("app-1", Write("bath1", "pump", True), Write("bath1", "level", 7.5))
            edge.publish(wire.command_topic("gw1"), wire.encode(cmd), qos=1)
            ack = await acks.get()
        assert ack.status is AckStatus.DONE, ack.detail
        assert [r.readback for r in ack.results] == [True, 7.5]
        assert (tmp_path / "gw" / "buffer.commands.sqlite").exists()
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
        edge.loop_stop()
        edge.disconnect()
