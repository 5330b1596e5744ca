"""The paper's case end to end, real processes throughout: the line simulator (seeded, mostly
defective products), `gateway run`, a private Mosquitto, `edge-node run` with the shipped defect
rule, and the central MariaDB (a fresh database on the shared server).

A defect-level colour -> the rule fires once per product (though the reading repeats every
poll) -> the defect record with product ID and recipe is in MariaDB -> the gateway wrote the
PLC's print_label coil, read it back and acked `done`, and the PLC printed labels.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.e2e.line import GATEWAY_ID, ROOT, gateway_config
from tests.support.broker import Mosquitto
from tests.support.central import create_central
from tests.support.mariadb import Database, mariadb_db  # noqa: F401 - the fixture
from tests.support.ports import free_port, wait_for_port
from tests.support.processes import Child, console_script, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(240)]

EDGE_ID = "edge-anodizing"
RULE = ROOT / "examples" / "rules" / "anodizing-defect.yaml"
COLOUR = f"{GATEWAY_ID}/meter1/product_delta_e"
LABELS = f"{GATEWAY_ID}/bath1/labels_printed"


def seed_master_data(db: Database) -> None:
    """The line's recipes (numbered as the PLC numbers them) and the colour's spec limit."""
    create_central(db, seed=False)
    db.execute("INSERT INTO recipes (id, name) VALUES ('1', 'black'), ('2', 'blue'), ('3', 'red')")
    db.execute(
        "INSERT INTO control_limits (gateway, device, tag, usl) VALUES (%s, 'meter1',"
        " 'product_delta_e', 3.0)",
        (GATEWAY_ID,),
    )


def edge_config(mqtt_port: int, http_port: int, db: Database) -> dict[str, Any]:
    return {
        "edge": {"id": EDGE_ID},
        "mqtt": {"host": "127.0.0.1", "port": mqtt_port},
        "store": {"path": "history.sqlite", "flush_interval": 0.1},
        "http": {"host": "127.0.0.1", "port": http_port},
        "auth": {"enabled": False},  # login is tested elsewhere; this test is about the rule
        "cloud": {
            "host": db.host, "port": db.port, "user": db.user,
            "password": db.password or None, "database": db.name,
            "down_interval": 1, "up_interval": 1, "connect_timeout": 2, "query_timeout": 5,
        },
        "rules": {"path": str(RULE), "reload_interval": 1},
    }  # fmt: skip


class DefectLine:
    def __init__(self, workdir: Path, mqtt_port: int, db: Database) -> None:
        self.modbus_port, self.http_port = free_port(), free_port()
        logs = workdir / "logs"
        logs.mkdir(parents=True)
        gateway_yaml, edge_yaml = workdir / "gateway.yaml", workdir / "edge.yaml"
        gateway_yaml.write_text(
            yaml.safe_dump(gateway_config(mqtt_port, self.modbus_port, poll_interval=0.2))
        )
        edge_yaml.write_text(yaml.safe_dump(edge_config(mqtt_port, self.http_port, db)))
        simulate = ["simulate", "--port", str(self.modbus_port), "--seed", "3"]
        simulate += ["--defect-probability", "0.9", "--speed", "8"]
        self.simulator = Child("simulator", console_script("factory-line", *simulate), logs)
        edge = ["run", str(edge_yaml), "--data-dir", str(workdir / "edge")]
        self.edge = Child("edge", console_script("edge-node", *edge), logs)
        gateway = ["run", str(gateway_yaml), "--data-dir", str(workdir / "gateway")]
        self.gateway = Child("gateway", console_script("gateway", *gateway), logs)
        self.url = f"http://127.0.0.1:{self.http_port}"

    @property
    def children(self) -> tuple[Child, ...]:
        return (self.simulator, self.edge, self.gateway)

    def api(self, path: str, **params: Any) -> Any:
        try:
            response = httpx.get(f"{self.url}{path}", params=params, timeout=5)
        except httpx.HTTPError:
            return None
        return response.json() if response.status_code == 200 else None

    def stop(self) -> None:
        for child in (self.gateway, self.edge, self.simulator):
            child.stop()


def defect_rows(db: Database) -> list[tuple[Any, ...]]:
    return db.execute(
        "SELECT defect_key, product_id, recipe_id, series, value, payload FROM defects"
        " WHERE edge_id = %s ORDER BY ts",
        (EDGE_ID,),
    )


def test_defect_colour_fires_once_records_in_mariadb_and_prints_a_verified_label(
    tmp_path: Path,
    mosquitto: Mosquitto,
    mariadb_db: Database,  # noqa: F811 - the fixture
) -> None:
    seed_master_data(mariadb_db)
    line = DefectLine(tmp_path, mosquitto.port, mariadb_db)
    try:
        line.simulator.start()
        wait_for_port(line.modbus_port)
        line.edge.start()
        # Master data first, so the rule sees the cloud's limit and recipes from its first firing.
        started = (line.simulator, line.edge)
        wait_until(lambda: line.api("/api/master/recipes"), 30, "master data", started)
        line.gateway.start()
        wait_until(lambda: len(defect_rows(mariadb_db)) >= 2, 90, "two defect records in "
                   "MariaDB", line.children)  # fmt: skip
        time.sleep(1.5)  # more polls of the last defect product's colour: must not fire again
        firings = line.api("/api/rules/firings", rule="anodizing-defect", limit=1000)
        rows = defect_rows(mariadb_db)
        history = line.api("/api/history", tag=COLOUR, start=int(time.time() * 1000) - 300_000)
        printed = wait_until(
            lambda: (line.api("/api/latest", tag=LABELS) or [{"value": 0}])[0]["value"],
            10, "the PLC's printed-labels counter", line.children,
        )  # fmt: skip
    finally:
        line.stop()
    assert printed >= 1  # the PLC acted on the coil (it counts labels it printed)

    # Once per product: every firing a different product, although each colour repeats per poll.
    keys = Counter(f["key"] for f in firings)
    assert keys and max(keys.values()) == 1, keys
    repeats = Counter(history["series"][0]["v"])
    assert max(n for v, n in repeats.items() if v > 3.0) >= 2  # the same defect value, re-read

    # The defect records in MariaDB: product ID and recipe (the PLC's recipe, named by master data).
    products = [row[1] for row in rows]
    assert len(products) == len(set(products)) and set(products) <= set(keys)
    for key, product, recipe_id, series, value, payload in rows:
        record = json.loads(payload)
        assert key == f"{GATEWAY_ID}/{product}" and product.startswith("P2611-")
        assert (recipe_id, record["recipe"]["name"]) == ("1", "black")
        assert series == COLOUR and value > record["limit"] == 3.0

    # The label: the gateway wrote print_label, read it back and acked done. (The PLC holds the
    # trigger bit while the label prints, 0.5 s, then clears it; a read-back that came later
    # would be reported as failed - an honest ack, so each label must be acked, and verified
    # ones must read back the bit.)
    labels = [a for f in firings for a in f["actions"] if a["type"] == "command"]
    assert len(labels) == len(firings) and all(a["status"] in ("done", "failed") for a in labels)
    verified = [a for a in labels if a["status"] == "done"]
    assert verified, labels
    for action in verified:
        assert action["ok"] and action["results"] == [
            {"device": "bath1", "tag": "print_label", "ok": True, "readback": True}
        ]
