"""A chart's request for many series answers each series as a request for it alone would."""

from __future__ import annotations

import json
from pathlib import Path

from edge_node import columns_json
from edge_node.api import downsampled_json
from edge_node.store import Store
from edge_node.store.model import HOUR_NS
from edge_node.tagmeta import TagMeta
from factory_common.wire import WIRE_VERSION, Batch, Reading

T0 = 1_764_000_000 * 10**9 - (1_764_000_000 * 10**9) % HOUR_NS
SECOND = 10**9


def meta(tag: str, type_: str) -> TagMeta:
    return TagMeta(f"gw1/bath/{tag}", "gw1", "bath", tag, "num", type_, tag)


def value(second: int, k: int, type_: str) -> float | int:
    number = (second * (k + 1)) % 97
    return number if type_ == "int" else number + 0.25 * k


def test_floats_and_integers_side_by_side_answer_as_they_would_alone(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.sqlite")
    tags = {"temp": "float", "count": "int", "level": "float", "idle": "float"}
    readings = [
        Reading(device="bath", tag=tag, ts=T0 + s * SECOND, value=value(s, k, tags[tag]))
        for s in range(0, 2 * 3600, 7)
        for k, tag in enumerate(tags)
        if tag != "idle" or s < 600  # a series with readings in only a few buckets
    ]
    store.write([Batch(v=WIRE_VERSION, gateway="gw1", boot="b", first_seq=0,
                       last_seq=len(readings) - 1, readings=readings)])  # fmt: skip
    store.compact(T0 + HOUR_NS)  # the first hour in minute blocks, the second still live
    found, _ = store.lookup([f"gw1/bath/{t}" for t in tags])
    metas = {m.name: m for m in (meta(t, ty) for t, ty in tags.items())}
    span = (T0, T0 + 2 * HOUR_NS)
    together = downsampled_json(store, found, *span, 40, metas)
    body = json.loads(columns_json.encode(together))
    for info in found:
        alone = json.loads(columns_json.encode(downsampled_json(store, [info], *span, 40, metas)))
        assert body[info.name] == alone[info.name]
        assert body[info.name]["mode"] == "minmax"
    assert all(isinstance(v, int) for v in body["gw1/bath/count"]["min"])
    assert all(isinstance(v, float) for v in body["gw1/bath/temp"]["min"])
    assert len(body["gw1/bath/idle"]["t"]) < len(body["gw1/bath/temp"]["t"])
    store.close()
