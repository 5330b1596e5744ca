"""OPC UA connector (asyncua): subscriptions and polled reads become Readings; writes are read back.

One `run()` is one session. When the server goes away (socket closed, or the liveness probe
of the Server_ServerStatus_State node times out) `run()` raises ConnectorError; the runner
calls it again after its back-off, which opens a new session and recreates every
subscription and monitored item from the config. asyncua's own auto-reconnect stays off so
that reconnects, back-off and health live in one place: the runner.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from asyncua import Client, ua
from asyncua.client.ua_client import UaClientState
from asyncua.common.subscription import DataChangeNotif, Subscription

from factory_common.logs import get_logger
from factory_common.wire import Reading, Value, now_ns
from gateway_image.firmware.connectors.advice import Failure, explain
from gateway_image.firmware.connectors.base import ConnectorError, Emit
from gateway_image.firmware.connectors.opcua import diagnose
from gateway_image.firmware.connectors.opcua.config import OpcUaConfig, OpcUaTag
from gateway_image.firmware.connectors.opcua.security import pinned_mismatch, secure
from gateway_image.firmware.connectors.opcua.values import item_request, to_raw, to_reading

# Notifications waiting for the sink; beyond this the sink is too slow and they are dropped
# (counted as `overflow`) rather than growing memory without bound on a Pi.
_QUEUE_MAX: Final = 20_000
_BATCH_MAX: Final = 500
# The server keeps a dead client's session this long (ms); reconnects open a new one.
_SESSION_TIMEOUT_MS: Final = 60_000
_FILTER_REJECTED: Final = frozenset(
    {
        ua.StatusCodes.BadFilterNotAllowed,
        ua.StatusCodes.BadMonitoredItemFilterUnsupported,
        ua.StatusCodes.BadMonitoredItemFilterInvalid,
        ua.StatusCodes.BadDeadbandFilterInvalid,
    }
)
_TRANSPORT_ERRORS: Final = (OSError, TimeoutError, ua.UaError)

Notification = tuple[int, ua.DataValue] | ua.StatusChangeNotification


@dataclass(frozen=True)
class _Tag:
    device: str
    config: OpcUaTag
    node_id: ua.NodeId


class _Handler:
    """asyncua calls these on the event loop; they only queue, so the publish loop never waits."""

    def __init__(self, queue: asyncio.Queue[Notification], counters: Counter[str]) -> None:
        self.queue = queue
        self.counters = counters

    def _put(self, item: Notification) -> None:
        if self.queue.full():
            self.counters["overflow"] += 1
            return
        self.queue.put_nowait(item)

    def datachange_notification(self, node: object, val: object, data: DataChangeNotif) -> None:
        item = data.monitored_item
        self._put((item.ClientHandle, item.Value))

    def status_change_notification(self, status: ua.StatusChangeNotification) -> None:
        self._put(status)


class OpcUaConnector:
    """StreamingConnector and WritableConnector for one OPC UA server."""

    def __init__(self, config: OpcUaConfig) -> None:
        self.name = config.name
        self.config = config
        self.tags = [
            _Tag(d.name, t, ua.NodeId.from_string(t.node_id))
            for d in config.devices
            for t in d.tags
        ]
        self._by_key = {(t.device, t.config.name): t for t in self.tags}
        # overflow: notifications dropped; rejected_filter: deadbands the server refused.
        self.counters: Counter[str] = Counter()
        self._client: Client | None = None
        self._lost: BaseException | None = None
        self._log = get_logger(connector=config.name, endpoint=config.endpoint)

    # ------------------------------------------------------------------ session

    async def run(self, emit: Emit) -> None:
        client = await self._connect()
        lost = asyncio.Event()
        self._lost = None

        async def on_lost(exc: Exception) -> None:
            # asyncua calls this before it tells subscriptions BadShutdown, so the stream
            # can name the real cause instead of a shutdown the server never sent.
            self._lost = exc
            lost.set()

        client.connection_lost_callback = on_lost
        self._client = client
        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(self._watch(client, lost))
                if any(t.config.mode == "subscribe" for t in self.tags):
                    group.create_task(self._stream(client, emit))
                if any(t.config.mode == "poll" for t in self.tags):
                    group.create_task(self._poll_loop(client, emit))
        except* ConnectorError as failed:
            raise failed.exceptions[0] from None
        finally:
            self._client = None
            await self._disconnect(client)

    async def _connect(self) -> Client:
        config = self.config
        client = Client(
            config.endpoint, timeout=config.timeout, watchdog_intervall=config.watchdog_interval
        )
        client.session_timeout = _SESSION_TIMEOUT_MS
        client.name = client.description = f"factory-edge gateway {config.name}"
        if config.username is not None and config.password is not None:
            client.set_user(config.username)
            client.set_password(config.password.get_secret_value())
        try:
            async with asyncio.timeout(config.timeout * 3):
                await self._secure(client)
                await client.connect(auto_reconnect=False)
        except (OSError, TimeoutError, ua.UaError, AssertionError) as exc:
            # AssertionError: asyncua asserts on a handshake reply the server cut short.
            client.disconnect_socket()
            raise ConnectorError(await self._connect_advice(exc)) from None
        return client

    async def _connect_advice(self, exc: BaseException) -> str:
        """The connect failure as the technician needs it: its class, detail and next step."""
        what = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        security = self.config.security
        secured = security.policy != "None"
        own_period = ""
        if secured:
            with contextlib.suppress(OSError, ValueError):
                own = await asyncio.to_thread(Path(str(security.certificate)).read_bytes)
                own_period = diagnose.certificate_period_problem(own)
        failure = diagnose.classify(exc, own_period)
        if own_period:
            what += f"; the gateway's certificate is {own_period}"
        pinned = secured and security.server_certificate is not None
        if pinned and failure in (None, Failure.SECURITY) and await self._pinned_mismatch():
            failure = Failure.SERVER_CERT
        if failure is None:
            # A secured connect cut short without a status is most often an untrusted client.
            failure = Failure.SECURITY if secured else Failure.TIMEOUT
        return explain(
            "opcua",
            failure,
            f"cannot connect to {self.config.endpoint} ({what})",
            certificate=str(security.certificate),
        )

    async def _pinned_mismatch(self) -> bool:
        return await pinned_mismatch(self.config)

    async def _secure(self, client: Client) -> None:
        await secure(client, self.config.security, self.name)

    async def _disconnect(self, client: Client) -> None:
        """Stop asyncua's tasks (supervisor, publish loop) and close what is still open."""
        healthy = client.uaclient.state is UaClientState.CONNECTED
        # close_session cancels asyncua's background tasks first, so they never outlive run();
        # the CloseSession request itself is only sent while the transport is alive.
        with contextlib.suppress(*_TRANSPORT_ERRORS):
            await asyncio.wait_for(client.close_session(), self.config.timeout)
        if healthy:
            with contextlib.suppress(*_TRANSPORT_ERRORS):
                await asyncio.wait_for(client.close_secure_channel(), self.config.timeout)
        client.disconnect_socket()

    async def _watch(self, client: Client, lost: asyncio.Event) -> None:
        """asyncua's supervisor probes the server every watchdog_interval; we react to it."""
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(lost.wait(), self.config.watchdog_interval)
            state = client.uaclient.state
            if lost.is_set() or state is not UaClientState.CONNECTED:
                raise ConnectorError(self._lost_message(state.value))

    def _lost_message(self, state: str = "") -> str:
        """Why the session ended: a server that stopped answering is not one that shut down."""
        exc, endpoint = self._lost, self.config.endpoint
        if isinstance(exc, TimeoutError):
            cause = (
                f"the server at {endpoint} stopped answering: no reply to the watchdog's "
                f"status read within {self.config.timeout:g} s (a frozen server or a silent "
                "network path)"
            )
        elif isinstance(exc, ua.UaStatusCodeError):
            cause = f"the server at {endpoint} answered the watchdog with {type(exc).__name__}"
        elif exc is not None:
            cause = (
                f"the connection to {endpoint} was closed ({type(exc).__name__}): the server "
                "restarted or shut down, or the network reset it"
            )
        else:
            cause = f"lost the session with {endpoint} (state {state})"
        return f"{cause}; reconnecting and recreating every subscription"

    # ------------------------------------------------------------------ subscriptions

    async def _subscribe(
        self, client: Client, handler: _Handler
    ) -> tuple[Subscription, list[Reading]]:
        """Create the subscription; items the server refused come back as bad readings."""
        subscribed = [t for t in self.tags if t.config.mode == "subscribe"]
        subscription = await client.create_subscription(
            self.config.publishing_interval * 1000.0, handler
        )
        requests = [
            item_request(i, tag.node_id, tag.config, True) for i, tag in enumerate(subscribed)
        ]
        results = await subscription.create_monitored_items(requests)
        retry = [
            i
            for i, result in enumerate(results)
            if isinstance(result, ua.StatusCode) and result.value in _FILTER_REJECTED
        ]
        if retry:
            # The server cannot apply this deadband (percent needs an EURange): report every
            # change instead of none, and count it so `gateway check` can show why.
            self.counters["rejected_filter"] += len(retry)
            self._log.warning("deadband_rejected", tags=[subscribed[i].config.name for i in retry])
            again = await subscription.create_monitored_items(
                [item_request(i, subscribed[i].node_id, subscribed[i].config, False) for i in retry]
            )
            for i, result in zip(retry, again, strict=True):
                results[i] = result
        failed = [
            to_reading(tag.device, tag.config, ua.DataValue(StatusCode=result), now_ns())
            for tag, result in zip(subscribed, results, strict=True)
            if isinstance(result, ua.StatusCode)
        ]
        return subscription, failed

    async def _stream(self, client: Client, emit: Emit) -> None:
        queue: asyncio.Queue[Notification] = asyncio.Queue(_QUEUE_MAX)
        subscribed = [t for t in self.tags if t.config.mode == "subscribe"]
        handler = _Handler(queue, self.counters)
        try:
            async with asyncio.timeout(self.config.timeout * 2):
                _, failed = await self._subscribe(client, handler)
        except _TRANSPORT_ERRORS as exc:
            raise ConnectorError(
                f"cannot create the subscription on {self.config.endpoint}: {exc}"
            ) from None
        if failed:
            await emit(failed)
        while True:
            batch = [await queue.get()]
            while not queue.empty() and len(batch) < _BATCH_MAX:
                batch.append(queue.get_nowait())
            readings = self._notifications(batch, subscribed)
            if readings:
                await emit(readings)

    def _notifications(self, batch: list[Notification], subscribed: list[_Tag]) -> list[Reading]:
        readings = []
        gateway_ns = now_ns()
        for item in batch:
            if isinstance(item, ua.StatusChangeNotification):
                if not item.Status.is_good():
                    if self._lost is not None:  # asyncua's own notice of a lost connection
                        raise ConnectorError(self._lost_message())
                    raise ConnectorError(
                        f"the server ended the subscription ({item.Status.name}); reconnecting"
                    )
                continue
            handle, value = item
            if 0 <= handle < len(subscribed):
                tag = subscribed[handle]
                readings.append(to_reading(tag.device, tag.config, value, gateway_ns))
        return readings

    # ------------------------------------------------------------------ polled reads

    async def _read(self, client: Client, tags: list[_Tag]) -> list[Reading]:
        """One Read service call for `tags`; a bad node is a bad reading, not an error."""
        params = ua.ReadParameters(
            MaxAge=0,
            TimestampsToReturn=ua.TimestampsToReturn.Both,
            NodesToRead=[
                ua.ReadValueId(NodeId=t.node_id, AttributeId=ua.AttributeIds.Value) for t in tags
            ],
        )
        try:
            values = await asyncio.wait_for(client.uaclient.read(params), self.config.timeout)
        except _TRANSPORT_ERRORS as exc:
            raise ConnectorError(f"read from {self.config.endpoint} failed: {exc!r}") from None
        gateway_ns = now_ns()
        return [
            to_reading(t.device, t.config, v, gateway_ns) for t, v in zip(tags, values, strict=True)
        ]

    async def _poll_loop(self, client: Client, emit: Emit) -> None:
        polled = [t for t in self.tags if t.config.mode == "poll"]
        loop = asyncio.get_running_loop()
        while True:
            started = loop.time()
            await emit(await self._read(client, polled))
            await asyncio.sleep(max(0.0, self.config.poll_interval - (loop.time() - started)))

    async def probe(self) -> list[Reading]:
        """Connect, read every tag once (subscribed ones too), disconnect: for `--probe`."""
        client = await self._connect()
        try:
            return await self._read(client, self.tags)
        finally:
            await self._disconnect(client)

    # ------------------------------------------------------------------ writes

    async def write(self, device: str, tag: str, value: Value) -> Value:
        """Write in engineering units, read back, return the read-back engineering value."""
        entry = self._by_key.get((device, tag))
        if entry is None:
            raise ConnectorError(f"{self.name} has no tag {device}/{tag}")
        if not entry.config.writable:
            raise ConnectorError(
                f"{device}/{tag} is not writable: set `writable: true` in its config"
            )
        client = self._client
        if client is None:
            raise ConnectorError(f"{self.name} is not connected to {self.config.endpoint}")
        node = client.get_node(entry.node_id)
        try:
            async with asyncio.timeout(self.config.timeout * 3):
                vtype = await node.read_data_type_as_variant_type()
                raw = to_raw(value, entry.config, vtype)
                await node.write_value(ua.DataValue(ua.Variant(raw, vtype)))
                back = await node.read_data_value(raise_on_bad_status=False)
        except ValueError as exc:
            raise ConnectorError(f"cannot write {value!r} to {device}/{tag}: {exc}") from None
        except _TRANSPORT_ERRORS as exc:
            raise ConnectorError(f"writing {device}/{tag} failed: {exc!r}") from None
        reading = to_reading(device, entry.config, back, now_ns())
        self._log.info("write", device=device, tag=tag, value=value, readback=reading.value)
        return reading.value


def build(config: OpcUaConfig) -> OpcUaConnector:
    return OpcUaConnector(config)
