"""What the edge already computed, read back for the cloud: minute summaries and text changes."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edge_node.cloud.outbox import CloudOutbox
from edge_node.store import Buckets, SeriesInfo, Store
from edge_node.store.downsample import MINUTE_NS, min_max_mean_at


@dataclass(frozen=True, slots=True)
class MinuteRow:
    series: str
    minute: int  # ns, start of the UTC minute
    n: int
    min: float
    max: float
    sum: float


@dataclass(frozen=True, slots=True)
class ChangeRow:
    series: str
    ts: int  # ns
    value: str | None


def _minutes(store: Store, info: SeriesInfo, start: int, end: int) -> Buckets:
    """The store's own per-minute min/max/sum/count (blocks' summaries + recent rows)."""
    buckets = store.downsample([info], start, end, (end - start) // MINUTE_NS)[0]
    if buckets is not None:
        return buckets
    data = store.history([info], start, end)[0]  # a block without summaries: reduce raw
    values = np.asarray(
        [np.nan if v is None else float(v) for v in data.values]
        if isinstance(data.values, list)
        else data.values.astype(np.float64)
    )
    return min_max_mean_at(data.ts, values, start, MINUTE_NS)


def minute_rows(store: Store, start: int, end: int) -> list[MinuteRow]:
    """Per numeric (or boolean) series and whole minute in [start, end): start, end whole
    minutes. Booleans summarise as the fraction of readings that were true."""
    rows: list[MinuteRow] = []
    for info in store.series():
        if info.kind == "str":
            continue
        b = _minutes(store, info, start, end)
        for t, n, lo, hi, total in zip(
            b.t.tolist(), b.count.tolist(), b.min.tolist(), b.max.tolist(), b.sum.tolist(),
            strict=True,
        ):  # fmt: skip
            if n and start <= t < end:
                rows.append(MinuteRow(info.name, t, n, lo, hi, total))
    return rows


def same_minute(pushed: tuple[int, float] | None, row: MinuteRow) -> bool:
    """Already in the cloud with the same readings (count and sum agree)."""
    if pushed is None:
        return False
    n, total = pushed
    return n == row.n and abs(total - row.sum) <= 1e-9 * max(1.0, abs(row.sum))


def new_minutes(store: Store, outbox: CloudOutbox, start: int, end: int) -> list[MinuteRow]:
    """Minutes not yet in the cloud, or changed since (late readings), oldest first."""
    pushed = outbox.pushed_minutes(start, end)
    rows = [
        r
        for r in minute_rows(store, start, end)
        if not same_minute(pushed.get((r.series, r.minute)), r)
    ]
    rows.sort(key=lambda r: (r.minute, r.series))
    return rows


def _text(value: object) -> str | None:
    return None if value is None else str(value)


def new_changes(store: Store, outbox: CloudOutbox, start: int, end: int) -> list[ChangeRow]:
    """Readings of text series (equipment state, product id) whose value differs from the
    reading before, not yet pushed; the value before the window comes from the ledger."""
    out: list[ChangeRow] = []
    for info in store.series():
        if info.kind != "str":
            continue
        data = store.history([info], start, end)[0]
        if len(data) == 0:
            continue
        ledger = outbox.pushed_changes(info.name, start)
        first = int(data.ts[0])
        before = [v for ts, v in ledger if ts < first]
        previous: object = before[-1] if before else object()  # nothing before: a change
        done = {ts for ts, _ in ledger}
        for ts, value in zip(data.ts.tolist(), list(data.values), strict=True):
            text = _text(value)
            if text != previous and ts not in done:
                out.append(ChangeRow(info.name, ts, text))
            previous = text
    out.sort(key=lambda r: (r.ts, r.series))
    return out
