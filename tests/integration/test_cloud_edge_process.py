"""The whole edge process with a cloud: master data flows down into the API, summaries go up."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
import pytest

from edge_node.app import run_edge
from edge_node.config import parse_edge_config
from factory_common.wire import WIRE_VERSION, Batch, Reading, data_topic, encode
from tests.integration.test_edge_ingest import edge_yaml, publish, until
from tests.support.broker import Mosquitto
from tests.support.central import create_central
from tests.support.edge_auth import add_user, log_in
from tests.support.mariadb import Database


@pytest.fixture
def central(mariadb_db: Database) -> Database:
    create_central(mariadb_db)
    mariadb_db.execute(
        "INSERT INTO tags (gateway, device, tag, unit) VALUES ('gw1', 'bath', 'temp', 'degC')"
    )
    return mariadb_db


MINUTE = 60 * 10**9


def cloud_yaml(db: Database) -> str:
    return (
        f"cloud: {{host: {db.host}, port: {db.port}, user: {db.user}, database: {db.name},"
        " down_interval: 0.2, up_interval: 0.2, summaries_settle: 0,"
        " connect_timeout: 2, query_timeout: 10}\n"
    )


def last_minute_batch(values: list[float]) -> tuple[bytes, int]:
    """Readings a second apart in the minute before the current one."""
    minute = time.time_ns() // MINUTE * MINUTE - MINUTE
    readings = [
        Reading(device="bath", tag="temp", ts=minute + i * 10**9, value=v)
        for i, v in enumerate(values)
    ]
    batch = Batch(v=WIRE_VERSION, gateway="gw1", boot="b", first_seq=0,
                  last_seq=len(values) - 1, readings=readings)  # fmt: skip
    return encode(batch), minute


async def test_master_data_down_and_summaries_up(
    mosquitto: Mosquitto, central: Database, tmp_path: Path
) -> None:
    config = parse_edge_config(edge_yaml(mosquitto) + cloud_yaml(central))
    add_user(tmp_path)
    ready: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    stop = asyncio.Event()
    task = asyncio.create_task(run_edge(config, tmp_path, on_ready=ready.set_result, stop=stop))
    try:
        url = await asyncio.wait_for(ready, 10)
        async with httpx.AsyncClient(base_url=url, timeout=5) as client:
            await log_in(client)
            payload, minute = last_minute_batch([20.0, 21.0, 22.5])
            publish(mosquitto, (data_topic("gw1"), payload, False))
            tags = await until(client, "/api/tags", lambda t: any(x["unit"] for x in t))
            assert {t["name"]: t["unit"] for t in tags} == {"gw1/bath/temp": "degC"}
            limits = (await client.get("/api/master/limits")).json()
            assert {x["series"] for x in limits} == {"gw1/tank1/temperature", "gw1/qc/colour"}
            status = await until(
                client, "/api/sync", lambda s: s["up"] and s["up"]["pushed"].get("minutes")
            )
            assert status["configured"] and status["down"]["ok"] and status["version"] > 0
        rows = central.execute(
            "SELECT UNIX_TIMESTAMP(minute), n, min_value, max_value, sum_value"
            " FROM minute_summaries WHERE edge_id = 'test-edge' AND series = 'gw1/bath/temp'"
        )
        assert rows == [(minute // 10**9, 3, 20.0, 22.5, 63.5)]
    finally:
        stop.set()
        await asyncio.wait_for(task, 15)
