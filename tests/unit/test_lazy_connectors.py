"""A gateway imports only the protocol libraries its config names (`python -X importtime`)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

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
