"""`factory-line run --broker embedded`: with the amqtt broker (MQTT 3.1.1 only), the gateway is
configured with `mqtt.protocol: "3.1.1"` and readings still travel simulator -> gateway -> edge,
and the edge's receipts travel back."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.fault.rig import buffer_meta, read_only


def received(store: Path) -> list[tuple[int, int]]:
    if not store.exists():
        return []
    conn = read_only(store)
    try:
        return conn.execute(
            "SELECT lo, hi FROM received WHERE gateway = 'anodizing-gw1'"
        ).fetchall()
    except sqlite3.OperationalError:  # the edge has not created its tables yet
        return []
    finally:
        conn.close()


@pytest.mark.slow
def test_embedded_broker_line_moves_readings_end_to_end(tmp_path: Path) -> None:
    pytest.importorskip("amqtt", reason="the embedded broker needs the [sim] extra")
    data = tmp_path / "line"
    log = (tmp_path / "out.log").open("w")
    args = ["--data-dir", str(data), "--broker", "embedded", "--http-port", "0", "--duration", "90"]
    process = subprocess.Popen(
        [sys.executable, "-m", "line_sim", "run", *args], stdout=log, stderr=subprocess.STDOUT
    )
    try:
        deadline = time.monotonic() + 60
        while not received(data / "edge" / "history.sqlite"):
            assert process.poll() is None, (tmp_path / "out.log").read_text()[-3000:]
            assert time.monotonic() < deadline, (tmp_path / "out.log").read_text()[-3000:]
            time.sleep(0.5)
        # Receipts come back through amqtt too: the buffer empties, it does not just grow.
        deadline = time.monotonic() + 30
        while buffer_meta(data / "gateway" / "buffer.sqlite").get("depth", 1) > 0:
            assert time.monotonic() < deadline, "the gateway buffer never emptied"
            time.sleep(0.2)
        # The line writes ready.json once every part answers, which on a loaded machine can be
        # after the first readings already flowed: wait for it as for them.
        deadline = time.monotonic() + 60
        while not (data / "ready.json").exists():
            assert process.poll() is None, (tmp_path / "out.log").read_text()[-3000:]
            assert time.monotonic() < deadline, (tmp_path / "out.log").read_text()[-3000:]
            time.sleep(0.2)
        ready = json.loads((data / "ready.json").read_text())
        assert ready["broker"] == "amqtt"
        gateway = yaml.safe_load((data / "config" / "gateway.yaml").read_text())
        assert str(gateway["mqtt"]["protocol"]) == "3.1.1"
        process.send_signal(signal.SIGINT)
        assert process.wait(40) == 0, (tmp_path / "out.log").read_text()[-3000:]
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        log.close()
