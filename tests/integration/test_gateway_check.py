"""`gateway check`: a bad config exits 1 naming file:line; --probe reads a live Modbus server."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from gateway_image.firmware.cli import check as cli_check
from tests.support.modbus_server import ModbusTestServer, UnitData
from tests.support.ports import free_port

SAMPLE = Path(__file__).parents[2] / "gateway_image/firmware/connectors/modbus/sample_tcp.yaml"


def app() -> typer.Typer:
    # Only this command: the full CLI also needs cli/run.py, which is not this test's subject.
    application = typer.Typer()

    @application.callback()
    def main() -> None:
        """Test entry point."""

    cli_check.register(application)
    return application


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app(), list(args), env={"COLUMNS": "250"})
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def live_server() -> Iterator[ModbusTestServer]:
    """A pymodbus server on its own thread and loop, since the CLI runs its own asyncio.run."""
    server = ModbusTestServer({1: UnitData(holding={0: [215, 0x4142, 0x4300]}, coils={0: [True]})})
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    asyncio.run_coroutine_threadsafe(server.start(), loop).result(5)
    yield server
    asyncio.run_coroutine_threadsafe(server.stop(), loop).result(5)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(5)


def write_config(tmp_path: Path, port: int, tags: str) -> Path:
    path = tmp_path / "gw.yaml"
    path.write_text(
        f"""gateway: {{id: gw1}}
connectors:
  - type: modbus_tcp
    name: plc
    host: 127.0.0.1
    port: {port}
    timeout: 0.5
    devices:
      - name: bath1
        unit: 1
        tags:
{tags}"""
    )
    return path


GOOD_TAGS = """          - {name: temp, table: holding, address: 0, type: int16, scale: 0.1}
          - {name: code, table: holding, address: 1, type: string, length: 2}
          - {name: pump, table: coil, address: 0}
"""


def test_sample_config_is_valid() -> None:
    code, out, _ = invoke("check", str(SAMPLE))
    assert code == 0, out
    assert "bath-plc" in out and "config OK" in out


def test_bad_config_exits_1_with_file_line(tmp_path: Path) -> None:
    path = write_config(
        tmp_path, 502, "          - {name: t, table: coil, address: 0, type: int16}\n"
    )
    code, out, err = invoke("check", str(path))
    assert code == 1
    assert f"{path}:12: connectors[0].devices[0].tags[0].type: " in err
    assert "use type bool" in err
    assert "Traceback" not in out + err


def test_missing_file_exits_1(tmp_path: Path) -> None:
    code, _, err = invoke("check", str(tmp_path / "nope.yaml"))
    assert code == 1 and "no such file" in err


def test_probe_prints_values(tmp_path: Path, live_server: ModbusTestServer) -> None:
    path = write_config(tmp_path, live_server.port, GOOD_TAGS)
    code, out, err = invoke("check", str(path), "--probe")
    assert code == 0, out + err
    assert "21.5" in out and "'ABC'" in out and "True" in out
    assert "probe OK: 3 tag(s) read" in out


def test_probe_reports_bad_tags_and_exits_1(tmp_path: Path, live_server: ModbusTestServer) -> None:
    tags = GOOD_TAGS + "          - {name: ghost, table: holding, address: 900, type: uint16}\n"
    code, out, err = invoke("check", str(write_config(tmp_path, live_server.port, tags)), "--probe")
    assert code == 1
    assert "ghost" in out and "illegal data address" in out
    assert "1 of 4 probe row(s) failed" in err


def test_probe_unreachable_server_exits_1(tmp_path: Path) -> None:
    path = write_config(tmp_path, free_port(), GOOD_TAGS)
    code, out, _ = invoke("check", str(path), "--probe", "--probe-timeout", "3")
    assert code == 1
    assert "cannot connect to Modbus TCP server" in out


def test_probe_reports_every_broken_connector_without_a_traceback(tmp_path: Path) -> None:
    """One broken connector of each kind: each gets its own row, none stops the others."""
    closed = free_port()
    config = f"""
gateway: {{id: broken-gw, board: rpi4}}
mqtt: {{host: 127.0.0.1, port: {closed}}}
connectors:
  - type: modbus_tcp
    name: plc
    host: 127.0.0.1
    port: {closed}
    devices: [{{name: p, unit: 1, tags: [{{name: t, table: holding, address: 0, type: int16}}]}}]
  - type: modbus_rtu
    name: bus
    port: {tmp_path}/no-such-adapter
    devices: [{{name: d, unit: 2, tags: [{{name: f, table: holding, address: 0, type: int16}}]}}]
  - type: opcua
    name: oven
    endpoint: opc.tcp://127.0.0.1:{closed}/
    devices: [{{name: oven, tags: [{{name: t, node_id: "ns=2;i=2"}}]}}]
  - type: serial_line
    name: scale
    port: {tmp_path}/no-such-scale
    pattern: '(?P<w>[0-9.]+)'
    tags: [{{name: w}}]
    request: {{command: "SI\\\\r\\\\n", interval: 2, reply_timeout: 1}}
"""
    path = tmp_path / "broken.yaml"
    path.write_text(config)
    code, out, err = invoke("check", str(path), "--probe", "--probe-timeout", "5", "--json")
    assert code == 1, err
    assert "Traceback" not in out + err

    rows = {row["connector"]: row for row in map(json.loads, out.splitlines()) if row}
    assert set(rows) == {"plc", "bus", "oven", "scale"}
    assert rows["plc"]["error"].startswith("connection refused: cannot connect to Modbus TCP")
    assert "dialout" in rows["bus"]["error"]
    assert rows["oven"]["error"].startswith("connection refused: cannot connect to opc.tcp")
    assert rows["scale"]["error"].startswith("serial port cannot be opened")
    assert all(row["quality"] == "bad" for row in rows.values())
