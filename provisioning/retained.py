"""Clear a revoked gateway's retained messages (status, receipt, update state) on the broker.

Only the `fleet-revoke` identity may write those topics for another gateway (deploy/mosquitto/
acl); `fleet revoke` signs itself a one-hour certificate with that name from the CA the
operator just unlocked, so no long-lived credential can erase a gateway's state.
"""

from __future__ import annotations

import datetime as dt
import queue
import tempfile
from pathlib import Path

import paho.mqtt.client as mqtt
from cryptography.hazmat.primitives import serialization
from paho.mqtt.enums import CallbackAPIVersion

from factory_common import wire
from provisioning.ca import Ca, issue, write_cert, write_private

IDENTITY = "fleet-revoke"
TIMEOUT = 15.0


def clear_retained(ca: Ca, host: str, port: int, gateway_id: str) -> list[str]:
    """Publish an empty retained message to each of the gateway's retained topics."""
    topics = [
        wire.status_topic(gateway_id),
        wire.stored_topic(gateway_id),
        wire.update_topic(gateway_id),
    ]
    cert, key = issue(
        ca, IDENTITY, days=1, not_before=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    )
    with tempfile.TemporaryDirectory(prefix="fleet-revoke-") as scratch:
        folder = Path(scratch)
        write_cert(folder / "id.crt", cert)
        write_private(folder / "id.key", key, None)
        (folder / "ca.crt").write_bytes(ca.cert.public_bytes(serialization.Encoding.PEM))
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"{IDENTITY}:{gateway_id}", protocol=mqtt.MQTTv5
        )
        client.tls_set(
            ca_certs=str(folder / "ca.crt"),
            certfile=str(folder / "id.crt"),
            keyfile=str(folder / "id.key"),
        )
        acks: queue.Queue[object] = queue.Queue()
        connected: queue.Queue[object] = queue.Queue()
        client.on_connect = lambda _c, _u, _f, rc, _p: connected.put(rc)
        client.on_publish = lambda _c, _u, _m, rc, _p: acks.put(rc)
        client.connect(host, port, keepalive=10)
        client.loop_start()
        try:
            rc = connected.get(timeout=TIMEOUT)
            if getattr(rc, "is_failure", False):
                raise ConnectionError(f"broker {host}:{port} refused {IDENTITY}: {rc}")
            for name in topics:
                client.publish(name, b"", qos=1, retain=True)
            refused = [
                str(r)
                for r in (acks.get(timeout=TIMEOUT) for _ in topics)
                if getattr(r, "is_failure", False)
            ]
            if refused:
                raise ConnectionError(f"broker refused clearing retained messages: {refused}")
        finally:
            client.disconnect()
            client.loop_stop()
    return topics
