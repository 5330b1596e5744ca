"""`factory-line run` as a newcomer (or a test) uses it: a subprocess, ready.json, SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import socket
import stat
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from line_sim.register_map import POINTS
from tests.support.broker import Mosquitto
from tests.support.ports import free_port
from tests.support.requirements import require_binary

ROOT = Path(__file__).resolve().parents[2]


def factory_line(*args: str) -> list[str]:
    return [sys.executable, "-m", "line_sim", "run", *args]


def listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.3)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def pid_alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split()[2] != "Z"
    except FileNotFoundError:
        return False


def _read_ready(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return {}


def log_in(info: dict) -> dict[str, str]:
    """Headers for the API, logged in as the engineer the run created (credentials file)."""
    credentials = Path(info["credentials"])
    assert stat.S_IMODE(credentials.stat().st_mode) == 0o600
    logins = {
        line.split()[0]: line.split()[2]
        for line in credentials.read_text().splitlines()
        if line and not line.startswith("#")
    }
    body = {"username": "engineer", "password": logins["engineer"], "client": "api"}
    request = urllib.request.Request(
        f"{info['url']}api/login",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return {"Authorization": f"Bearer {json.load(response)['token']}"}


def api_get(info: dict, headers: dict[str, str], path: str) -> Any:
    request = urllib.request.Request(f"{info['url']}{path}", headers=headers)
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.load(response)


def _tags_without_history(
    info: dict, headers: dict[str, str], query: str, names: list[str]
) -> list[str]:
    try:
        series = api_get(info, headers, f"api/history?{query}")["series"]
    except urllib.error.HTTPError as exc:
        if exc.code == 404:  # a tag the edge has not seen yet
            return names
        raise
    have = {s["name"] for s in series if s["t"]}
    return [n for n in names if n not in have]


def test_a_busy_port_asked_for_is_refused_with_a_clear_message(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            factory_line("--data-dir", str(tmp_path), "--http-port", str(port)),
            capture_output=True,
            text=True,
            timeout=30,
        )
    assert result.returncode == 1
    assert f"port {port} (--http-port) is in use" in result.stderr


def test_a_part_dying_at_start_up_stops_the_others_and_exits_non_zero(tmp_path: Path) -> None:
    bad_edge = tmp_path / "bad-edge.yaml"
    bad_edge.write_text("edge:\n  id: e1\nno_such_key: 1\n")
    mqtt_port, modbus_port = free_port(), free_port()
    args = ["--data-dir", str(tmp_path / "run"), "--edge-config", str(bad_edge)]
    args += ["--mqtt-port", str(mqtt_port), "--modbus-port", str(modbus_port), "--duration", "60"]
    started = time.monotonic()
    result = subprocess.run(factory_line(*args), capture_output=True, text=True, timeout=60)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "edge exited with code" in result.stderr
    assert "Last lines of" in result.stderr and "edge.log" in result.stderr
    assert time.monotonic() - started < 40
    # The broker and the simulator had started; they must be gone, not orphaned.
    assert "broker: " in result.stdout
    assert not listening(mqtt_port) and not listening(modbus_port)
    assert (tmp_path / "run" / "logs" / "simulator.log").exists()
    assert not (tmp_path / "run" / "ready.json").exists()


@pytest.mark.slow
@pytest.mark.parametrize("broker", ["auto", "embedded"])
def test_the_line_comes_up_answers_and_stops_cleanly_on_ctrl_c(tmp_path: Path, broker: str) -> None:
    if broker == "auto":
        require_binary("mosquitto", "sudo apt-get install mosquitto")
    data = tmp_path / "line"
    data.mkdir()
    (data / "ready.json").write_text("{}")  # a stale one from a killed run
    log = (tmp_path / "out.log").open("w")
    # --http-port 0: other runs on this machine may hold 8080.
    args = ["--data-dir", str(data), "--seed", "1", "--duration", "90", "--http-port", "0"]
    args += ["--broker", broker]
    process = subprocess.Popen(
        factory_line(*args),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        ready = data / "ready.json"
        deadline = time.monotonic() + 60
        while not _read_ready(ready):
            assert process.poll() is None, (tmp_path / "out.log").read_text()
            assert time.monotonic() < deadline, (tmp_path / "out.log").read_text()
            time.sleep(0.2)
        info = _read_ready(ready)
        assert set(info["pids"]) == {"broker", "simulator", "edge", "gateway"}
        assert info["broker"] == ("amqtt" if broker == "embedded" else "mosquitto")
        with urllib.request.urlopen(info["url"], timeout=5) as response:
            assert response.status == 200
        with pytest.raises(urllib.error.HTTPError, match="401"):  # login is on
            api_get(info, {}, "api/latest")
        headers = log_in(info)
        # The promise: history points from every simulated tag within 15 s.
        names = [f"anodizing-gw1/{p.device}/{p.name}" for p in POINTS]
        query = urllib.parse.urlencode([("tag", n) for n in names])
        deadline = time.monotonic() + 15
        while True:
            empty = _tags_without_history(info, headers, query, names)
            if not empty:
                break
            assert time.monotonic() < deadline, f"no history for {empty}"
            time.sleep(0.5)
        process.send_signal(signal.SIGINT)  # Ctrl-C
        assert process.wait(40) == 0, (tmp_path / "out.log").read_text()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        log.close()
    output = (tmp_path / "out.log").read_text()
    assert "open   http://127.0.0.1:" in output and "factory-line: stopped." in output
    password = output.split("login  engineer / ")[1].split()[0]  # printed on the first run
    assert f"engineer engineer {password}" in Path(info["credentials"]).read_text()
    assert not any(pid_alive(pid) for pid in info["pids"].values())
    assert not ready.exists()
    assert {p.name for p in (data / "logs").iterdir()} >= {"gateway.log", "edge.log"}


@pytest.mark.slow
def test_a_part_dying_later_stops_the_line_with_its_log(tmp_path: Path) -> None:
    data = tmp_path / "line"
    args = ["--data-dir", str(data), "--duration", "90", "--http-port", "0"]
    process = subprocess.Popen(factory_line(*args), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while not (info := _read_ready(data / "ready.json")):
            assert process.poll() is None and time.monotonic() < deadline
            time.sleep(0.2)
        os.kill(info["pids"]["simulator"], signal.SIGKILL)
        _, err = process.communicate(timeout=40)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 1
    assert "simulator stopped unexpectedly (exit code -9)" in err.decode()
    assert not any(pid_alive(pid) for pid in info["pids"].values())


def _latest_ts(info: dict, headers: dict[str, str]) -> int:
    return max((v["ts_ns"] for v in api_get(info, headers, "api/latest")), default=0)


@pytest.mark.slow
def test_external_broker_may_stop_and_come_back_under_a_running_line(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    data = tmp_path / "line"
    args = ["--data-dir", str(data), "--duration", "90", "--http-port", "0"]
    args += ["--broker", "external", "--mqtt-port", str(mosquitto.port)]
    log = (tmp_path / "out.log").open("w")
    process = subprocess.Popen(factory_line(*args), stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while not (info := _read_ready(data / "ready.json")):
            assert process.poll() is None and time.monotonic() < deadline
            time.sleep(0.2)
        assert set(info["pids"]) == {"simulator", "edge", "gateway"}
        assert info["broker"] == "external"
        headers = log_in(info)
        mosquitto.stop()
        time.sleep(3)
        assert process.poll() is None, "the line must ride out a broker outage"
        stopped_at = time.time_ns()
        mosquitto.start()
        deadline = time.monotonic() + 30
        while _latest_ts(info, headers) < stopped_at:
            assert time.monotonic() < deadline, (tmp_path / "out.log").read_text()
            time.sleep(0.5)
        process.send_signal(signal.SIGTERM)
        assert process.wait(40) == 0, (tmp_path / "out.log").read_text()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        log.close()


def _start(data: Path, out: Path, *extra: str) -> tuple[subprocess.Popen[bytes], dict]:
    args = ["--data-dir", str(data), "--duration", "90", "--http-port", "0", *extra]
    with out.open("w") as log:
        process = subprocess.Popen(factory_line(*args), stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    # The banner (URL, login) follows ready.json.
    while not (info := _read_ready(data / "ready.json")) or "Ctrl-C" not in out.read_text():
        assert process.poll() is None and time.monotonic() < deadline, out.read_text()
        time.sleep(0.2)
    return process, info


def _stop(process: subprocess.Popen[bytes], out: Path) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        assert process.wait(40) == 0, out.read_text()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


@pytest.mark.slow
def test_defects_get_labels_and_alarms_and_a_second_run_keeps_the_login(tmp_path: Path) -> None:
    """What the README promises a newcomer: the defect rule and the demo limits are on (a fast,
    defect-heavy line here), and the login printed by the first run still works later."""
    data = tmp_path / "line"
    out = tmp_path / "first.log"
    process, info = _start(data, out, "--seed", "5", "--speed", "8", "--defect-probability", "0.9")
    try:
        headers = log_in(info)
        deadline = time.monotonic() + 60
        while True:
            defects = api_get(info, headers, "api/defects")
            alarms = api_get(info, headers, "api/alarms")
            labelled = [d for d in defects if d["label_status"] == "done" and d["label_ok"]]
            colour = [a for a in alarms if a["source"].endswith("/meter1/product_delta_e")]
            if labelled and colour:
                break
            assert time.monotonic() < deadline, (defects, alarms)
            time.sleep(1)
    finally:
        _stop(process, out)
    assert labelled[0]["product_id"].startswith("P2611-") and labelled[0]["value"] > 3.0
    assert colour[0]["rule"] == "spc.spec" and colour[0]["severity"] == "critical"
    password = out.read_text().split("login  engineer / ")[1].split()[0]

    again = tmp_path / "second.log"
    process, info = _start(data, again)
    try:
        assert "engineer" in again.read_text() and password not in again.read_text()
        assert log_in(info)  # the same credentials file, the same password
        assert f"engineer engineer {password}" in Path(info["credentials"]).read_text()
    finally:
        _stop(process, again)
