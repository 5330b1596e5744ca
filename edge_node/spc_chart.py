"""An individuals and moving-range (I-MR) control chart of one series, as plain data.

Pure: raw points and the series' limits in, the chart out: centre line and sigma zones from
the cloud's limits, spec limits, and each point marked with the rules it violated, replayed
through the same `SeriesSpc` that raises alarms (so the chart shows exactly what alarmed).
Individuals, because the edge sees each reading, not rational subgroups; the moving-range
limit uses D4 = 3.267 for ranges of two consecutive points (ASTM E2587, Table 3).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

from edge_node.spc import Limits, SeriesSpc, numeric

D4_N2 = 3.267
MAX_POINTS = 2000


def chart(ts_ms: Sequence[int], values: Sequence[Any], limits: Limits | None) -> dict[str, Any]:
    """The last MAX_POINTS numeric points of a series as an I-MR chart."""
    points = [(t, x) for t, v in zip(ts_ms, values, strict=True) if (x := numeric(v)) is not None]
    points = points[-MAX_POINTS:]
    t = [p[0] for p in points]
    v = [p[1] for p in points]
    mr: list[float | None] = [None] + [abs(b - a) for a, b in itertools.pairwise(v)]
    ranges = [r for r in mr if r is not None]
    mr_bar = sum(ranges) / len(ranges) if ranges else None
    out: dict[str, Any] = {
        "t": t,
        "v": v,
        "mr": mr,
        "mr_bar": mr_bar,
        "mr_ucl": D4_N2 * mr_bar if mr_bar is not None else None,
        "violations": [],
        "limits": None,
        "centre": None,
        "sigma": None,
    }
    if limits is None:
        return out
    centre = limits.centre()
    out["limits"] = {f: getattr(limits, f) for f in ("mean", "sigma", "lcl", "ucl", "lsl", "usl")}
    if centre is not None:
        out["centre"], out["sigma"] = centre
    spc = SeriesSpc(limits)
    for i, x in enumerate(v):
        found = spc.update(x)
        if found:
            rules = [f.rule for f in found]
            out["violations"].append({"i": i, "t": t[i], "rules": rules,
                                      "message": "; ".join(f.message for f in found)})  # fmt: skip
    return out
