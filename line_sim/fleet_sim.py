"""Simulated gateways for fleet tests and benchmarks: statuses, receipts and update requests.

Each simulated gateway publishes a retained status (and, standing in for the edge, a retained
receipt) and answers the fleet's update requests the way the update agent does, with a
retained UpdateState: a good target comes up healthy and is committed after `delay_s`; a
target listed as bad comes up with its connector down and, after `return_s`, the gateway
returns to what it ran before on its own (rolled_back). A request id seen before is answered
with the state it reached, never carried out twice. One MQTT connection serves them all.
"""

from __future__ import annotations

import argparse
import heapq
import itertools
import queue
import threading
import time
from dataclasses import dataclass, field

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from factory_common import wire

Phase = wire.UpdatePhase


@dataclass
class SimGateway:
    id: str
    version: str
    config: str = ""
    seq: int = 0
    started_at: int = field(default_factory=time.time_ns)
    healthy: bool = True
    requests: list[tuple[str, str]] = field(default_factory=list)  # (action, target) carried out
    seen: dict[str, wire.UpdateState] = field(default_factory=dict)  # request id -> last state


def _target(request: wire.UpdateRequest) -> str:
    return request.release if request.action is wire.UpdateAction.INSTALL else request.config


class SimFleet:
    def __init__(
        self,
        host: str,
        port: int,
        ids: list[str],
        version: str = "1.0",
        bad: frozenset[str] = frozenset(),
        delay_s: float = 0.05,
        return_s: float = 1.0,
    ) -> None:
        self.gateways = {i: SimGateway(i, version) for i in ids}
        self.bad, self.delay_s, self.return_s = bad, delay_s, return_s
        self._lock = threading.Lock()
        self._inbox: queue.Queue[wire.UpdateRequest | None] = queue.Queue()
        self._client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"fleet-sim:{time.time_ns() % 10**9}"
        )
        self._client.on_message = self._on_message
        self._subscribed = threading.Event()
        self._client.on_subscribe = lambda *_a: self._subscribed.set()
        self._client.on_connect = lambda c, *_a: c.subscribe(
            wire.subscription(wire.TopicKind.UPDATE_REQUEST), qos=1
        )
        self.host, self.port = host, port
        self._worker = threading.Thread(target=self._run, daemon=True)

    def start(self) -> SimFleet:
        self._client.connect(self.host, self.port, 30)
        self._client.loop_start()
        if not self._subscribed.wait(10):
            raise RuntimeError("the simulated fleet could not subscribe to update requests")
        for gw in self.gateways.values():
            self._publish_status(gw)
        self._worker.start()
        return self

    def stop(self) -> None:
        self._inbox.put(None)
        self._worker.join(5)
        self._client.disconnect()
        self._client.loop_stop()

    def _on_message(self, _c: object, _u: object, msg: mqtt.MQTTMessage) -> None:
        try:
            request = wire.decode(bytes(msg.payload), wire.UpdateRequest)
        except wire.WireError:
            return
        if request.gateway in self.gateways:
            self._inbox.put(request)

    def _run(self) -> None:
        """One timer wheel for every gateway: (due, n, callable) in a heap."""
        timers: list[tuple[float, int, object]] = []
        counter = itertools.count()
        while True:
            wait = max(0.0, timers[0][0] - time.monotonic()) if timers else 0.2
            try:
                request = self._inbox.get(timeout=wait)
                if request is None:
                    return
                for delay, action in self._receive(request):
                    heapq.heappush(timers, (time.monotonic() + delay, next(counter), action))
            except queue.Empty:
                pass
            while timers and timers[0][0] <= time.monotonic():
                _, _, action = heapq.heappop(timers)
                action()  # type: ignore[operator]

    def _receive(self, request: wire.UpdateRequest) -> list[tuple[float, object]]:
        gw = self.gateways[request.gateway]
        with self._lock:
            if request.id in gw.seen:  # idempotent: answer with the state already reached
                self._publish_state(gw.seen[request.id])
                return []
            self._state(gw, request, Phase.TRIAL)
        return [(self.delay_s, lambda: self._switch(gw, request))]

    def _switch(self, gw: SimGateway, request: wire.UpdateRequest) -> None:
        with self._lock:
            target = _target(request)
            gw.requests.append((request.action.value, target))
            is_release = request.action is wire.UpdateAction.INSTALL
            previous = gw.version if is_release else gw.config
            setattr(gw, "version" if is_release else "config", target)
            gw.started_at, gw.healthy = time.time_ns(), not self._is_bad(request)
            self._publish_status(gw)
            if gw.healthy:
                self._state(gw, request, Phase.COMMITTED)
                return
        # The trial fails: the agent returns on its own after a while.
        timer = threading.Timer(self.return_s, self._return, (gw, request, previous))
        timer.daemon = True
        timer.start()

    def _is_bad(self, request: wire.UpdateRequest) -> bool:
        """A bad release by its version; a bad config by any `bad` text it contains."""
        if request.action is wire.UpdateAction.INSTALL:
            return request.release in self.bad
        return any(marker in request.config for marker in self.bad)

    def _return(self, gw: SimGateway, request: wire.UpdateRequest, previous: str) -> None:
        with self._lock:
            is_release = request.action is wire.UpdateAction.INSTALL
            setattr(gw, "version" if is_release else "config", previous)
            gw.started_at, gw.healthy = time.time_ns(), True
            self._publish_status(gw)
            self._state(gw, request, Phase.ROLLED_BACK, "never reported healthy")

    def _state(
        self, gw: SimGateway, request: wire.UpdateRequest, phase: Phase, detail: str = ""
    ) -> None:
        state = wire.UpdateState(
            v=wire.WIRE_VERSION,
            gateway=gw.id,
            ts=wire.now_ns(),
            phase=phase,
            release=gw.version,
            request=request.id,
            action=request.action,
            target=_target(request)[:64],
            detail=detail,
        )
        gw.seen[request.id] = state
        self._publish_state(state)

    def _publish_state(self, state: wire.UpdateState) -> None:
        self._client.publish(
            wire.update_topic(state.gateway), wire.encode(state), qos=1, retain=True
        )

    def _publish_status(self, gw: SimGateway) -> None:
        if gw.healthy:
            gw.seq += 10  # it read and delivered something since the last status
        status = wire.GatewayStatus(
            v=wire.WIRE_VERSION,
            gateway=gw.id,
            online=True,
            ts=wire.now_ns(),
            version=gw.version,
            started_at=gw.started_at,
            last_seq=gw.seq,
            connectors=[
                wire.ConnectorHealth("press", "modbus_tcp", "up" if gw.healthy else "down")
            ],
        )
        self._client.publish(wire.status_topic(gw.id), wire.encode(status), qos=1, retain=True)
        receipt = wire.Stored(
            v=wire.WIRE_VERSION,
            gateway=gw.id,
            edge="edge-sim",
            ts=wire.now_ns(),
            ranges=[(1, gw.seq)],
        )
        self._client.publish(wire.stored_topic(gw.id), wire.encode(receipt), qos=1, retain=True)

    def versions(self) -> dict[str, str]:
        with self._lock:
            return {g.id: g.version for g in self.gateways.values()}


def main() -> None:
    parser = argparse.ArgumentParser(description="Simulated gateways for fleet rollouts.")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--count", type=int, default=10)
    parser.add_argument("--version", default="1.0")
    parser.add_argument("--bad", action="append", default=[])
    args = parser.parse_args()
    ids = [f"gw-{i:04d}" for i in range(1, args.count + 1)]
    fleet = SimFleet("127.0.0.1", args.port, ids, args.version, frozenset(args.bad)).start()
    print("ready", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        fleet.stop()


if __name__ == "__main__":
    main()
