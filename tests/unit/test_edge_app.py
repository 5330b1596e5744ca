"""Pieces of the edge process that need no broker: periodic compaction, the web page, bind."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from edge_node.api import create_app
from edge_node.app import bind, compact_forever
from edge_node.ingest import IngestStats
from edge_node.store import Store
from factory_common.wire import WIRE_VERSION, Batch, Reading, now_ns

HOUR_NS = 3_600_000_000_000


async def test_compaction_runs_periodically_in_the_background(tmp_path: Path) -> None:
    store = Store(tmp_path / "ts.sqlite")
    old = now_ns() - 3 * HOUR_NS
    readings = [Reading(device="d", tag="x", ts=old + i * 10**9, value=float(i)) for i in range(5)]
    store.write(
        [Batch(v=WIRE_VERSION, gateway="gw", boot="b", first_seq=0, last_seq=4, readings=readings)]
    )
    task = asyncio.create_task(compact_forever(store, interval=0.05, grace=60.0))
    try:
        for _ in range(100):
            await asyncio.sleep(0.05)
            if store.stats()["recent_rows"] == 0:
                break
        assert store.stats()["block_readings"] == 5
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        store.close()


def test_web_page_and_vendored_chart_library_are_served(tmp_path: Path) -> None:
    store = Store(tmp_path / "ts.sqlite")
    try:
        with TestClient(create_app(store, IngestStats())) as client:
            page = client.get("/")
            assert page.status_code == 200 and "vendor/uplot/uPlot.iife.min.js" in page.text
            for path in ("/js/main.js", "/style.css", "/vendor/uplot/uPlot.iife.min.js"):
                assert client.get(path).status_code == 200, path
    finally:
        store.close()


def test_bind_names_the_port_in_use() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(OSError, match=f"cannot listen on 127.0.0.1:{port}.*http.port"):
            bind("127.0.0.1", port).close()


async def test_served_connections_send_small_writes_at_once() -> None:
    """asyncio sets TCP_NODELAY only on sockets made with proto IPPROTO_TCP: without it a
    response written in two parts (headers, body) waits for the client's delayed ACK."""
    accepted: asyncio.Future[socket.socket] = asyncio.get_running_loop().create_future()

    class Grab(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            if not accepted.done():
                accepted.set_result(transport.get_extra_info("socket"))

    sock = bind("127.0.0.1", 0)
    server = await asyncio.get_running_loop().create_server(Grab, sock=sock)
    try:
        _, writer = await asyncio.open_connection(*sock.getsockname()[:2])
        served = await asyncio.wait_for(accepted, 10)
        assert served.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
        writer.close()
        await writer.wait_closed()
    finally:
        server.close()
        await server.wait_closed()
