"""One edge-node process: MQTT ingest, periodic compaction and the HTTP API in one asyncio loop."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
from collections.abc import Callable, Generator
from pathlib import Path

import uvicorn
from fastapi import FastAPI

from edge_node.api import create_app
from edge_node.auth import AuthService, open_auth
from edge_node.cloud.link import CloudLink
from edge_node.config import EdgeConfig
from edge_node.ingest import Ingest, IngestStats
from edge_node.rules.runtime import Operations, open_operations
from edge_node.store import Store
from factory_common.logs import get_logger
from factory_common.wire import now_ns


class _EmbeddedServer(uvicorn.Server):
    """uvicorn inside our loop: the app, not uvicorn, owns SIGINT/SIGTERM (uvicorn would
    re-raise the signal after serving, skipping our shutdown of ingest and the store)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


def bind(host: str, port: int) -> socket.socket:
    """Bind before serving, so port 0 works and the printed URL is the real one."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP named, not 0: asyncio sets TCP_NODELAY only on such sockets' connections,
    # and without it a response's second write waits ~40 ms for the client's delayed ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(128)  # connections wait in the backlog until uvicorn starts accepting
    except OSError as exc:
        sock.close()
        raise OSError(f"cannot listen on {host}:{port}: {exc}; change http.port") from None
    return sock


async def compact_forever(store: Store, interval: float, grace: float) -> None:
    """Pack finished hours into blocks; in a thread so ingest and the API keep running."""
    log = get_logger(component="compact")
    while True:
        await asyncio.sleep(interval)
        job = asyncio.ensure_future(asyncio.to_thread(store.compact, now_ns() - int(grace * 1e9)))
        try:
            moved = await asyncio.shield(job)
        except asyncio.CancelledError:
            await asyncio.wait([job], timeout=30)  # the store is closed only after this
            raise
        if moved:
            log.info("compacted", readings=moved)


def _http_server(app: FastAPI, config: EdgeConfig) -> _EmbeddedServer:
    return _EmbeddedServer(
        uvicorn.Config(
            app,
            log_config=None,  # keep our structlog setup
            access_log=False,
            lifespan="off",
            log_level="warning",
            # uvicorn believes X-Forwarded-For from 127.0.0.1 by default: any local client
            # could then choose its address and evade the per-address login throttle.
            proxy_headers=bool(config.http.trusted_proxies),
            forwarded_allow_ips=config.http.trusted_proxies or None,
        )
    )


async def run_edge(
    config: EdgeConfig,
    data_dir: Path,
    on_ready: Callable[[str], None] | None = None,
    stop: asyncio.Event | None = None,
    role: str = "all",
) -> None:
    """Run until SIGINT/SIGTERM or `stop` is set; `on_ready` gets the URL of the web page."""
    # role "api": a stateless replica reading the file the ingest process writes (README).
    store = Store(
        config.store.resolve_path(data_dir),
        retention=config.store.retention,
        read_only=role == "api",
    )
    auth = open_auth(config.auth, data_dir)
    cloud = CloudLink(config.cloud, config.edge.id, data_dir, store)  # master data, outbox
    # Alarms, SPC monitoring, rules and the command sender (edge_node/rules/runtime.py).
    ops = open_operations(
        config, data_dir, store, role=role, masterdata=cloud.masterdata, outbox=cloud.outbox
    )
    try:
        sock = bind(config.http.host, config.http.port)
        try:
            await _run_parts(
                config, store, sock, on_ready, stop or asyncio.Event(), auth, cloud, ops
            )
        finally:
            sock.close()
    finally:
        store.close()  # after every part has stopped: none of them writes any more
        auth.close()
        cloud.close()
        ops.close()


async def _run_parts(
    config: EdgeConfig,
    store: Store,
    sock: socket.socket,
    on_ready: Callable[[str], None] | None,
    stop: asyncio.Event,
    auth: AuthService,
    cloud: CloudLink,
    ops: Operations,
) -> None:
    log = get_logger(component="edge", edge=config.edge.id)
    stats = IngestStats()
    app = create_app(store, stats, edge_id=config.edge.id, timezone=config.edge.timezone, auth=auth)
    server = _http_server(app, config)
    app.state.cloud = cloud  # /api/master/*, /api/sync
    ops.install(app)  # /api/alarms, /api/rules, /api/commands
    host, port = sock.getsockname()[:2]
    url = f"http://{f'[{host}]' if ':' in host else host}:{port}/"
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        async with asyncio.TaskGroup() as group:
            writers: list[asyncio.Task[None]] = []
            if not store.read_only:  # an API replica neither ingests nor compacts
                ingester = Ingest(config, store, stats)
                ingester.observers.extend(ops.observers())  # monitoring and rules
                writers.append(group.create_task(ingester.run(), name="ingest"))
                compact = compact_forever(
                    store, config.store.compact_interval, config.store.compact_grace
                )
                writers.append(group.create_task(compact, name="compact"))
            # Only the stateful process syncs; an API replica follows the master-data file.
            writers.append(group.create_task(cloud.run(sync=not store.read_only), name="cloud"))
            for name, job in ops.tasks():  # commands; monitor and rules unless an API replica
                writers.append(group.create_task(job, name=name))
            group.create_task(server.serve(sockets=[sock]), name="http")
            log.info("edge_started", url=url, store=str(store.path), broker=config.mqtt.host)
            if on_ready:
                on_ready(url)
            await stop.wait()
            log.info("edge_stopping")
            server.should_exit = True
            for task in writers:
                task.cancel()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        log.info("edge_stopped")
