"""Prometheus metrics at GET /metrics (open, like /api/health: scrapers carry no login).

Values are read from the live objects when Prometheus scrapes (a custom collector), so ingest
and the store keep no second set of counters. Each app has its own registry: tests build many.
Optional parts (alarms, rules) are read through app.state when present.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from typing import Any

import msgspec
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

router = APIRouter(include_in_schema=True, tags=["health"])

_INGEST_COUNTERS = {
    "connects": "MQTT (re)connections of the ingest client",
    "messages": "MQTT messages received",
    "batches": "reading batches received",
    "statuses": "gateway status messages received",
    "readings_stored": "readings written to the store (first time)",
    "readings_duplicate": "readings received again and not stored twice",
    "flushes": "group commits of the store",
    "observer_errors": "faults of monitoring or rules handed a batch (isolated from ingest)",
}


def _counter(name: str, doc: str, value: float, labels: dict[str, str] | None = None) -> Metric:
    family = CounterMetricFamily(name, doc, labels=list(labels or {}))
    family.add_metric(list((labels or {}).values()), value)
    return family


def _gauge(name: str, doc: str, value: float) -> Metric:
    return GaugeMetricFamily(name, doc, value=value)


class EdgeCollector(Collector):
    """Reads app.state.edge (store + ingest stats) and app.state.alarms / .rules if set."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app

    def collect(self) -> Iterator[Metric]:
        state = self.app.state
        edge = state.edge
        yield from self._ingest(edge.stats)
        yield from self._store(edge.store)
        yield from self._gateways(edge.store)
        alarms = getattr(state, "alarms", None)
        if alarms is not None:
            yield from self._alarms(alarms)
        rules = getattr(state, "rules", None)
        if rules is not None:
            yield from self._rules(rules)

    def _ingest(self, stats: Any) -> Iterable[Metric]:
        for key, doc in _INGEST_COUNTERS.items():
            yield _counter(f"edge_ingest_{key}", doc, getattr(stats, key))
        yield _gauge(
            "edge_ingest_mqtt_connected", "1 while the broker is reachable", stats.connected
        )
        yield _gauge(
            "edge_ingest_last_flush_seconds",
            "duration of the last commit",
            stats.last_flush_ms / 1e3,
        )
        rejected = CounterMetricFamily(
            "edge_ingest_rejected",
            "payloads rejected, by gateway and reason",
            labels=["gateway", "reason"],
        )
        for (gateway, reason), count in sorted(stats.rejected.items()):
            rejected.add_metric([gateway, reason], count)
        yield rejected

    def _store(self, store: Any) -> Iterable[Metric]:
        # Whatever Store.stats() reports (rows, blocks, bytes): its owner may add figures.
        for key, value in sorted(store.stats().items()):
            if isinstance(value, int | float):
                yield _gauge(f"edge_store_{key}", f"store figure {key} (Store.stats())", value)
        yield _gauge("edge_store_series", "series stored", len(store.series()))

    def _gateways(self, store: Any) -> Iterable[Metric]:
        labels = ["gateway"]
        online = GaugeMetricFamily(
            "edge_gateway_online", "1 if the gateway's last status says online", labels=labels
        )
        depth = GaugeMetricFamily(
            "edge_gateway_buffer_readings",
            "readings waiting in the gateway's buffer",
            labels=labels,
        )
        size = GaugeMetricFamily(
            "edge_gateway_buffer_bytes", "bytes of the gateway's buffer", labels=labels
        )
        age = GaugeMetricFamily(
            "edge_gateway_status_received_seconds",
            "epoch seconds of the last status",
            labels=labels,
        )
        dropped = CounterMetricFamily(
            "edge_gateway_dropped",
            "readings the gateway dropped, by cause",
            labels=["gateway", "cause"],
        )
        connectors = GaugeMetricFamily(
            "edge_gateway_connector_up",
            "1 if a connector's state is up",
            labels=["gateway", "connector", "state"],
        )
        for record in store.gateways():
            status = msgspec.json.decode(record.payload)
            gw = [record.gateway]
            online.add_metric(gw, record.online)
            depth.add_metric(gw, status.get("buffer_depth", 0))
            size.add_metric(gw, status.get("buffer_bytes", 0))
            age.add_metric(gw, record.received_at / 1e9)
            for cause, count in sorted(status.get("dropped", {}).items()):
                dropped.add_metric([record.gateway, cause], count)
            for connector in status.get("connectors", []):
                state = connector.get("state", "")
                connectors.add_metric(
                    [record.gateway, connector.get("name", "?"), state], state == "up"
                )
        yield from (online, depth, size, age, dropped, connectors)

    def _alarms(self, alarms: Any) -> Iterable[Metric]:
        active = GaugeMetricFamily(
            "edge_alarms_active", "active alarms, by state", labels=["state"]
        )
        states = Counter(str(getattr(a, "state", "raised")) for a in alarms.active())
        for state, count in sorted(states.items()):
            active.add_metric([state], count)
        yield active

    def _rules(self, rules: Any) -> Iterable[Metric]:
        status = getattr(rules, "status", None)  # the RuleEngine's: rule id -> RuleStatus
        if not isinstance(status, dict):
            return
        labels = ["rule"]
        fired = CounterMetricFamily("edge_rule_firings", "rule firings", labels=labels)
        errors = CounterMetricFamily("edge_rule_errors", "rule errors (isolated)", labels=labels)
        busy = CounterMetricFamily(
            "edge_rule_busy", "triggers skipped: still running", labels=labels
        )
        for rule, counters in sorted(status.items()):
            fired.add_metric([str(rule)], getattr(counters, "fired", 0))
            errors.add_metric([str(rule)], getattr(counters, "errors", 0))
            busy.add_metric([str(rule)], getattr(counters, "busy", 0))
        yield from (fired, errors, busy)


def install_metrics(app: FastAPI) -> None:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(EdgeCollector(app))
    app.state.metrics_registry = registry
    app.include_router(router)


@router.get("/metrics", response_class=Response)
def metrics(request: Request) -> Response:
    """Prometheus text format: ingest, store, per-gateway health, alarms and rule firings."""
    return Response(
        generate_latest(request.app.state.metrics_registry), media_type=CONTENT_TYPE_LATEST
    )
