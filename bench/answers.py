"""The edge's and the central's answers to the paper's query, compared: the benchmark times
two systems answering the same question, so it checks they gave the same answer."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import msgspec
import numpy as np

from edge_node.store import SeriesData

Raw = dict[str, tuple[np.ndarray, np.ndarray]]  # series name -> (ts ns, values)
# Means are sums over minutes (edge) or over rows (central) divided by the count: the same
# numbers added in another order, so they may differ in the last bits and nowhere else.
MEAN_RTOL = 1e-9
EXACT = ("name", "mode", "t", "min", "max", "count")


def edge_raw(data: Sequence[SeriesData]) -> Raw:
    return {d.series.name: (d.ts, np.asarray(d.values, dtype=float)) for d in data}


def raw_differences(edge: Raw, central: Raw) -> list[str]:
    """Empty when both hold the same series with the same timestamps and values, bit for bit."""
    out = []
    if sorted(edge) != sorted(central):
        return [f"series differ: edge {sorted(edge)}, central {sorted(central)}"]
    for name, (ts, values) in edge.items():
        c_ts, c_values = central[name]
        if not np.array_equal(ts, c_ts):
            out.append(f"{name}: timestamps differ ({len(ts)} edge, {len(c_ts)} central)")
        elif not np.array_equal(values, c_values):
            out.append(f"{name}: values differ at {int(np.argmax(values != c_values))}")
    return out


def down_differences(edge_body: bytes, central_body: bytes) -> list[str]:
    """Empty when both JSON bodies hold the same buckets (times, min, max, count exactly,
    means to MEAN_RTOL) for the same series."""
    edge: list[dict[str, Any]] = msgspec.json.decode(edge_body)
    central = {s["name"]: s for s in msgspec.json.decode(central_body)}
    out = []
    if sorted(s["name"] for s in edge) != sorted(central):
        return [f"series differ: edge {[s['name'] for s in edge]}, central {sorted(central)}"]
    for series in edge:
        other = central[series["name"]]
        for key in EXACT:
            if series.get(key) != other.get(key):
                out.append(f"{series['name']}: {key} differs")
        means = zip(series.get("mean", []), other.get("mean", []), strict=False)
        if len(series.get("mean", [])) != len(other.get("mean", [])) or not all(
            math.isclose(a, b, rel_tol=MEAN_RTOL) for a, b in means
        ):
            out.append(f"{series['name']}: mean differs beyond {MEAN_RTOL}")
    return out
