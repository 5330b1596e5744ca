"""A gateway imports only the protocol libraries its config names (`python -X importtime`),
and `gateway run` none of what only other commands or optional integrations need."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.broker import Mosquitto
from tests.support.modbus_server import ModbusTestServer, UnitData

CONNECTORS = Path(__file__).parents[2] / "gateway_image/firmware/connectors"

# Load the firmware the way `gateway check` and `gateway run` do, then build every connector
# the config names (building does no I/O but imports the connector's module).
SCRIPT = """
import sys
from gateway_image.firmware import app
from gateway_image.firmware.cli import app as cli
from gateway_image.firmware.config import load_gateway_config
from gateway_image.firmware.connectors.registry import build_connector

try:
    cli(["check", sys.argv[1]], standalone_mode=False)
except SystemExit as exc:
    assert not exc.code, exc.code
for connector in load_gateway_config(sys.argv[1]).connectors:
    build_connector(connector)
"""


def imported_modules(config: Path) -> set[str]:
    """Every module (and its top-level name) SCRIPT imports for one gateway config."""
    return imported_modules_of(SCRIPT, str(config))


def imported_modules_of(code: str, *args: str) -> set[str]:
    """Every module (and its top-level name) `python -X importtime -c CODE` reports."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code, *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    lines = [line for line in done.stderr.splitlines() if line.startswith("import time:")]
    assert lines, "python -X importtime printed nothing"
    # "import time:   self [us] |  cumulative | imported package" -> the last column.
    names = {line.rsplit("|", 1)[1].strip() for line in lines[1:]}
    return {name.split(".")[0] for name in names} | names


def test_a_modbus_only_gateway_never_imports_asyncua_or_gpiozero() -> None:
    modules = imported_modules(CONNECTORS / "modbus/sample_tcp.yaml")
    assert "pymodbus" in modules  # the Modbus connector was really built
    # importlib.import_module itself is not timed, only the imports it runs: modbus/tcp.py's.
    assert "gateway_image.firmware.connectors.modbus.common" in modules
    for heavy in ("asyncua", "gpiozero", "cryptography"):
        assert heavy not in modules, f"a Modbus TCP gateway imported {heavy}"


@pytest.mark.parametrize(
    ("sample", "library"),
    [("opcua/sample.yaml", "asyncua"), ("gpio/sample.yaml", "gpiozero")],
)
def test_a_connector_family_imports_its_library_when_configured(sample: str, library: str) -> None:
    # The other direction: the measurement above sees a library when it is loaded.
    assert library in imported_modules(CONNECTORS / sample)


@pytest.mark.parametrize("family", ["modbus", "opcua", "mqtt_in", "serial_line", "gpio"])
def test_each_family_config_model_imports_first_and_alone(family: str) -> None:
    # A tool (hardware checks, a bench) may import one family's model before the gateway
    # model: that must neither hit an import cycle nor load the family's protocol library.
    module = f"gateway_image.firmware.connectors.{family}.config"
    modules = imported_modules_of(f"import {module}")
    assert module in modules
    for heavy in ("asyncua", "gpiozero", "pymodbus", "paho", "serial"):
        assert heavy not in modules, f"{module} imported {heavy}"


# `gateway run` as the console script runs it, stopped by its own SIGTERM once readings have
# gone the whole way: polled, committed, published and answered by the broker (a PUBACK; with
# no subscriber on the data topic it says "unrouted").
RUN_SCRIPT = """
import asyncio, os, signal, sys
from gateway_image.firmware.cli import app as cli
from gateway_image.firmware.cli import run as run_command

serve = run_command.serve

async def serve_until_acked(gateway):
    def answered():
        counters = gateway.uplink and gateway.uplink.counters
        return counters and (counters.batches_acked or counters.batches_unrouted)

    async def stop_once_acked():
        while not answered():
            await asyncio.sleep(0.05)
        os.kill(os.getpid(), signal.SIGTERM)

    watch = asyncio.create_task(stop_once_acked())
    try:
        await serve(gateway)
    finally:
        watch.cancel()

run_command.serve = serve_until_acked
cli(["run", sys.argv[1], "--data-dir", sys.argv[2]], standalone_mode=False)
print("\\n".join(sys.modules))
"""

# What `gateway run` must not load (each cost RSS on a Pi; docs/benchmarks.md, memory): rich
# (only the error path and `gateway check` print with it), structlog's optional integrations,
# and the wiring sheet's SVG/XML code (`gateway wiring` only).
NOT_ON_THE_RUN_PATH = (
    "rich",
    "pygments",
    "greenlet",
    "twisted",
    "hardware.wiring_sheet",
    "hardware.wiring_svg",
    "xml",
)


async def test_gateway_run_loads_nothing_only_other_commands_need(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    server = ModbusTestServer({1: UnitData(holding={0: [7, 8]})})
    await server.start()
    config = tmp_path / "gateway.yaml"
    config.write_text(
        "gateway: {id: lazy-gw}\n"
        f"mqtt: {{port: {mosquitto.port}, confirm: broker}}\n"
        "connectors:\n"
        f"  - {{type: modbus_tcp, name: plc, host: 127.0.0.1, port: {server.port},"
        " poll_interval: 0.1, devices: [{name: unit1, unit: 1, tags: ["
        "{name: a, table: holding, address: 0, type: uint16},"
        "{name: b, table: holding, address: 1, type: uint16}]}]}\n"
    )
    try:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-c", RUN_SCRIPT, str(config), str(tmp_path),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        try:
            async with asyncio.timeout(120):
                out, err = await proc.communicate()
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
    finally:
        await server.stop()
    assert proc.returncode == 0, err.decode()[-2000:]
    # sys.modules at the end, not `-X importtime`: that also lists the imports structlog
    # tries and logs.py makes fail.
    modules = set(out.decode().split())
    # The run really ran: the connector's protocol library and the uplink's were loaded.
    assert {"pymodbus", "paho", "gateway_image.firmware.uplink.uplink"} <= modules
    loaded = [name for name in NOT_ON_THE_RUN_PATH if name in modules]
    assert not loaded, f"`gateway run` imported {loaded}"
