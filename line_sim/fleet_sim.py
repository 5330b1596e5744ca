"""Simulated gateways for fleet tests and benchmarks: statuses, receipts and update requests.

Each simulated gateway publishes a retained status (and, standing in for the edge, a retained
receipt) and obeys the fleet's update requests the way the update agent does: a good target
comes up healthy after `delay_s`; a target listed as bad comes up with its connector down and,
after `return_s`, the gateway returns to what it ran before on its own. One MQTT connection
serves them all, so a thousand gateways cost one process.
"""

from __future__ import annotations

import argparse
import queue
import threading
import time
from dataclasses import dataclass, field

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from factory_common import wire


@dataclass
class SimGateway:
    id: str
    version: str
    config: str = ""
    seq: int = 0
    started_at: int = field(default_factory=time.time_ns)
    healthy: bool = True
    requests: list[tuple[str, str]] = field(default_factory=list)  # (kind, target) as asked


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
        self._work: queue.Queue[tuple[float, str, wire.UpdateRequest] | None] = queue.Queue()
        self._client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"fleet-sim-{time.time_ns() % 10**9}"
        )
        self._client.on_message = self._on_message
        self._subscribed = threading.Event()
        self._client.on_subscribe = lambda *_a: self._subscribed.set()
        self._client.on_connect = lambda c, *_a: c.subscribe(
            wire.subscription(wire.TopicKind.UPDATE), qos=1
        )
        self.host, self.port = host, port
        self._worker = threading.Thread(target=self._run, daemon=True)

    def start(self) -> SimFleet:
        self._client.connect(self.host, self.port, 30)
        self._client.loop_start()
        if not self._subscribed.wait(10):
            raise RuntimeError("the simulated fleet could not subscribe to update requests")
        for gw in self.gateways.values():
            self._publish(gw)
        self._worker.start()
        return self

    def stop(self) -> None:
        self._work.put(None)
        self._worker.join(5)
        self._client.disconnect()
        self._client.loop_stop()

    def _on_message(self, _c: object, _u: object, msg: mqtt.MQTTMessage) -> None:
        try:
            request = wire.decode(msg.payload, wire.UpdateRequest)
        except wire.WireError:
            return
        if request.gateway in self.gateways:
            self._work.put((time.monotonic() + self.delay_s, "apply", request))

    def _run(self) -> None:
        pending: list[tuple[float, str, wire.UpdateRequest]] = []
        while True:
            timeout = max(
                0.0, min((p[0] for p in pending), default=time.monotonic() + 0.2) - time.monotonic()
            )
            try:
                item = self._work.get(timeout=timeout)
                if item is None:
                    return
                pending.append(item)
            except queue.Empty:
                pass
            now = time.monotonic()
            due = [p for p in pending if p[0] <= now]
            pending = [p for p in pending if p[0] > now]
            for _, what, request in due:
                pending += self._step(what, request)

    def _step(self, what: str, request: wire.UpdateRequest) -> list:
        gw = self.gateways[request.gateway]
        with self._lock:
            if what == "apply":
                gw.requests.append((request.kind, request.target))
                previous = gw.version if request.kind == "release" else gw.config
                if request.kind == "release":
                    gw.version = request.target
                else:
                    gw.config = request.target
                gw.started_at, gw.healthy = time.time_ns(), request.target not in self.bad
                self._publish(gw)
                if not gw.healthy:  # the agent's trial fails: it returns on its own
                    back = wire.UpdateRequest(**{**_fields(request), "target": previous})
                    return [(time.monotonic() + self.return_s, "return", back)]
                return []
            if (gw.version if request.kind == "release" else gw.config) in self.bad:
                setattr(gw, "version" if request.kind == "release" else "config", request.target)
                gw.started_at, gw.healthy = time.time_ns(), True
                self._publish(gw)
        return []

    def _publish(self, gw: SimGateway) -> None:
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


def _fields(request: wire.UpdateRequest) -> dict[str, object]:
    return {f: getattr(request, f) for f in request.__struct_fields__}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
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
