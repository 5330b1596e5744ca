"""OPC UA connector against a real asyncua Server on loopback (no mocks of asyncua)."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from asyncua import ua

from factory_common.wire import Quality, TimeSource
from gateway_image.firmware.cli.check import probe_one
from gateway_image.firmware.connectors.base import ConnectorError
from gateway_image.firmware.connectors.opcua.config import OpcUaConfig
from gateway_image.firmware.connectors.opcua.connector import build
from tests.integration.opcua_plant import Plant, make_certificate
from tests.integration.streaming import Sink, running
from tests.integration.tcp_proxy import FreezableProxy
from tests.support.ports import free_port

pytestmark = pytest.mark.timeout(60)


def config(plant: Plant, tags: list[dict[str, Any]], **extra: Any) -> OpcUaConfig:
    return OpcUaConfig.model_validate(
        {
            "type": "opcua",
            "name": "bath-opcua",
            "endpoint": plant.url,
            "publishing_interval": 0.05,
            "poll_interval": 0.1,
            "watchdog_interval": 0.5,
            "timeout": 2.0,
            "devices": [{"name": "bath1", "tags": tags}],
            **extra,
        }
    )


async def until(check: Callable[[], bool], within: float = 5.0) -> None:
    """Wait for a condition nobody signals (an error list filled by the supervision loop)."""
    async with asyncio.timeout(within):
        while not check():  # noqa: ASYNC110 - nothing to wait on but the condition itself
            await asyncio.sleep(0.05)


@pytest_asyncio.fixture
async def plant() -> AsyncIterator[Plant]:
    server = Plant(free_port())
    await server.start()
    yield server
    await server.stop()


def tag(name: str, node: str, plant: Plant, **extra: Any) -> dict[str, Any]:
    return {"name": name, "node_id": plant.node_id(node), **extra}


async def test_subscription_source_timestamps_deadband_bad_status_and_polls(plant: Plant) -> None:
    tags = [
        tag("temperature", "Temperature", plant, deadband={"absolute": 0.5}),
        # queue_size 10: both changes inside one publishing interval are delivered.
        tag("temperature_raw", "Temperature", plant, queue_size=10),
        tag("conductivity", "Conductivity", plant),
        tag("missing", "NoSuchNode", plant),
        tag("counter", "Counter", plant, mode="poll", timestamp="server"),
        tag("missing_polled", "NoSuchNode", plant, mode="poll"),
        tag("recipe", "Recipe", plant),
    ]
    sink = Sink()
    async with running(build(config(plant, tags)), sink, "opcua"):
        await sink.wait_for(lambda r: r.tag == "temperature" and r.value == 20.0)
        small = dt.datetime(2026, 1, 2, 3, 4, 5, 600_000, tzinfo=dt.UTC)
        large = small + dt.timedelta(seconds=1)
        await plant.write("Temperature", 20.2, small)  # inside the 0.5 deadband
        await plant.write("Temperature", 21.0, large)
        big = await sink.wait_for(lambda r: r.tag == "temperature" and r.value == 21.0)
        await sink.wait_for(lambda r: r.tag == "temperature_raw" and r.value == 21.0)
        bad = await sink.wait_for(lambda r: r.tag == "conductivity")
        missing = await sink.wait_for(lambda r: r.tag == "missing")
        polled = await sink.wait_for(lambda r: r.tag == "counter")
        missing_polled = await sink.wait_for(lambda r: r.tag == "missing_polled")
        recipe = await sink.wait_for(lambda r: r.tag == "recipe")
        await until(lambda: len(sink.of("counter")) >= 2)  # read again every poll_interval

    # The server's deadband dropped 20.2 for the filtered item but not for the unfiltered one.
    assert [r.value for r in sink.of("temperature")] == [20.0, 21.0]
    assert [r.value for r in sink.of("temperature_raw")][:3] == [20.0, 20.2, 21.0]
    # The device's own clock, to the microsecond.
    assert big.src is TimeSource.DEVICE
    assert big.ts == int(large.timestamp()) * 10**9 + 600_000_000
    assert (bad.quality, bad.reason, bad.value) == (Quality.BAD, "BadSensorFailure", None)
    assert (missing.quality, missing.reason) == (Quality.BAD, "BadNodeIdUnknown")
    assert (missing_polled.quality, missing_polled.reason) == (Quality.BAD, "BadNodeIdUnknown")
    assert (polled.value, polled.quality, polled.src) == (7, Quality.GOOD, TimeSource.DEVICE)
    assert recipe.value == "R-100"


async def test_uncertain_status_is_an_uncertain_reading_with_the_value_kept(plant: Plant) -> None:
    sink = Sink()
    async with running(build(config(plant, [tag("t", "Temperature", plant)])), sink, "opcua"):
        await sink.wait_for(lambda r: r.value == 20.0)
        node = plant.server.get_node(plant.node_id("Temperature"))  # type: ignore[union-attr]
        await node.write_value(
            ua.DataValue(
                ua.Variant(19.0, ua.VariantType.Double),
                StatusCode=ua.StatusCode(ua.StatusCodes.UncertainLastUsableValue),
            )
        )
        reading = await sink.wait_for(lambda r: r.quality is Quality.UNCERTAIN)
    assert (reading.value, reading.reason) == (19.0, "UncertainLastUsableValue")


async def test_write_is_scaled_checked_and_read_back(plant: Plant) -> None:
    tags = [
        tag("setpoint", "Setpoint", plant, writable=True, scale=0.1, mode="poll", max=4000),
        tag("temperature", "Temperature", plant, mode="poll"),
    ]
    connector = build(config(plant, tags))
    sink = Sink()
    async with running(connector, sink, "opcua"):
        await sink.wait_for(lambda r: r.tag == "setpoint")
        assert await connector.write("bath1", "setpoint", 42.5) == pytest.approx(42.5)
        assert await plant.read("Setpoint") == 425  # raw Int16 on the server
        with pytest.raises(ConnectorError, match="outside Int16"):
            await connector.write("bath1", "setpoint", 3500.0)  # 35000 raw
        with pytest.raises(ConnectorError, match="outside the tag's range"):
            await connector.write("bath1", "setpoint", 4500.0)
        assert await plant.read("Setpoint") == 425  # refused writes never reached the server
        with pytest.raises(ConnectorError, match="not writable"):
            await connector.write("bath1", "temperature", 1.0)
        with pytest.raises(ConnectorError, match="no tag bath1/nope"):
            await connector.write("bath1", "nope", 1.0)
    with pytest.raises(ConnectorError, match="not connected"):
        await connector.write("bath1", "setpoint", 1.0)


async def test_server_restart_resumes_data_without_restarting_the_gateway() -> None:
    plant = Plant(free_port())
    await plant.start()
    sink = Sink()
    connector = build(config(plant, [tag("t", "Temperature", plant)]))
    try:
        async with running(connector, sink, "opcua") as runner:
            await sink.wait_for(lambda r: r.value == 20.0)
            await plant.stop()
            await until(lambda: runner.health().state == "down")
            down = runner.health()
            await plant.start()
            await plant.write("Temperature", 33.0)
            after = await sink.wait_for(lambda r: r.value == 33.0, within=10)
            await until(lambda: runner.health().state == "up")
    finally:
        await plant.stop()
    # Lost session (closed socket or the server's BadShutdown), then refused reconnects.
    assert down.errors >= 1 and down.last_error
    assert down.devices["bath1"].state == "down"
    assert after.quality is Quality.GOOD
    assert runner.health().devices["bath1"].state == "up"


async def test_a_silent_server_is_noticed_by_the_watchdog_and_recovered(plant: Plant) -> None:
    proxy = FreezableProxy(plant.port)
    await proxy.start()
    cfg = config(plant, [tag("t", "Temperature", plant)], timeout=1.0, watchdog_interval=0.5)
    cfg = cfg.model_copy(update={"endpoint": f"opc.tcp://127.0.0.1:{proxy.port}/plant/"})
    sink = Sink()
    try:
        async with running(build(cfg), sink, "opcua") as runner:
            await sink.wait_for(lambda r: r.value == 20.0)
            proxy.freeze()  # no FIN, no RST: only the liveness probe can tell
            frozen_at = asyncio.get_running_loop().time()
            await until(lambda: runner.health().state == "down", within=5)
            noticed_after = asyncio.get_running_loop().time() - frozen_at
            reason = runner.health().last_error
            proxy.thaw()
            await plant.write("Temperature", 44.0)
            await sink.wait_for(lambda r: r.value == 44.0, within=10)
    finally:
        await proxy.stop()
    # Documented bound: watchdog_interval + timeout (0.5 + 1.0 s), with slack for a loaded CI.
    assert noticed_after < 3.0
    assert "stopped answering" in reason and "BadShutdown" not in reason


async def test_probe_reads_every_tag_once(plant: Plant) -> None:
    tags = [tag("t", "Temperature", plant), tag("c", "Conductivity", plant, mode="poll")]
    readings = await build(config(plant, tags)).probe()
    assert [(r.tag, r.value, r.quality, r.reason) for r in readings] == [
        ("t", 20.0, Quality.GOOD, ""),
        ("c", None, Quality.BAD, "BadSensorFailure"),
    ]


async def test_gateway_check_probe_reads_opcua_tags(plant: Plant) -> None:
    rows = await probe_one(config(plant, [tag("t", "Temperature", plant)]), 10.0)
    assert rows == [("bath-opcua", "bath1", "t", "20.0", "good", "")]


async def test_unreachable_endpoint_is_a_connector_error_with_advice() -> None:
    plant = Plant(free_port())  # never started
    connector = build(config(plant, [{"name": "t", "node_id": "ns=2;s=Bath.Temperature"}]))
    with pytest.raises(ConnectorError, match=r"cannot connect to opc\.tcp://127\.0\.0\.1"):
        await connector.run(Sink())


@pytest_asyncio.fixture
async def secure_plant(tmp_path: Path) -> AsyncIterator[tuple[Plant, Path]]:
    server_cert, server_key = await make_certificate(
        tmp_path / "server", "server", "urn:factory-edge:test:plant-server", server=True
    )
    _, client_key = await make_certificate(
        tmp_path / "trusted", "gateway", "urn:factory-edge:gateway:bath-opcua", server=False
    )
    client_key.rename(tmp_path / "gateway.pem")  # the trust folder holds certificates only
    plant = Plant(free_port())
    await plant.start(server_cert, server_key, trusted=tmp_path / "trusted")
    yield plant, tmp_path
    await plant.stop()


async def test_basic256sha256_sign_and_encrypt(secure_plant: tuple[Plant, Path]) -> None:
    plant, folder = secure_plant
    security = {
        "policy": "Basic256Sha256",
        "mode": "SignAndEncrypt",
        "certificate": str(folder / "trusted" / "gateway.der"),
        "private_key": str(folder / "gateway.pem"),
        "server_certificate": str(folder / "server" / "server.der"),
    }
    sink = Sink()
    connector = build(config(plant, [tag("t", "Temperature", plant)], security=security))
    async with running(connector, sink, "opcua"):
        await sink.wait_for(lambda r: r.value == 20.0)
        await plant.write("Temperature", 25.5)
        await sink.wait_for(lambda r: r.value == 25.5)


async def test_untrusted_gateway_certificate_is_refused(secure_plant: tuple[Plant, Path]) -> None:
    plant, folder = secure_plant
    cert, key = await make_certificate(
        folder / "stranger", "stranger", "urn:factory-edge:gateway:stranger", server=False
    )
    security = {"policy": "Basic256Sha256", "certificate": str(cert), "private_key": str(key)}
    connector = build(config(plant, [tag("t", "Temperature", plant)], security=security))
    with pytest.raises(ConnectorError) as refused:
        await connector.run(Sink())
    message = str(refused.value)
    assert message.startswith("certificate not trusted: ") and "BadCertificateUntrusted" in message
    assert f"import {cert} into its trust list" in message
