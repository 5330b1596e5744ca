"""A product's path through the line, from the product-ID readings equipment reports.

Pure: each equipment that reports the ID of the product it holds (a string tag named
`product_id`, `measured_product_id`, ...) gives, for one product, the spans during which it
showed that ID. PLCs often keep showing the last product's ID while idle, so where the same
equipment has a boolean `in_process` tag the span is cut to the time it was really in process.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

PRODUCT_TAG = re.compile(r"(^|_)product_id$")
IN_PROCESS_TAG = "in_process"


@dataclass(frozen=True, slots=True)
class Span:
    """One stay of a product in one equipment (ns); `open` while it is still there."""

    series: str  # the product-ID series that showed it (gateway/device/tag)
    start: int
    end: int
    open: bool = False

    @property
    def device(self) -> str:
        return self.series.rsplit("/", 1)[0]  # gateway/device


def is_product_tag(tag: str) -> bool:
    return bool(PRODUCT_TAG.search(tag))


def spans(series: str, ts: Sequence[int], values: Sequence[Any], product: str) -> list[Span]:
    """Spans where `series` showed `product`: from its first reading of the ID to the first
    reading of another ID (or its last reading, still open, when nothing followed)."""
    out: list[Span] = []
    start: int | None = None
    for t, v in zip(ts, values, strict=True):
        if v == product and start is None:
            start = t
        elif v != product and start is not None:
            out.append(Span(series, start, t))
            start = None
    if start is not None:
        out.append(Span(series, start, ts[-1], open=True))
    return out


def cut_to_process(span: Span, ts: Sequence[int], flags: Sequence[Any]) -> Span:
    """Narrow `span` to where the equipment's `in_process` flag was true inside it."""
    # A closed span ends at the first reading of the next ID: that moment is not inside.
    last = span.end + 1 if span.open else span.end
    inside = [(t, bool(f)) for t, f in zip(ts, flags, strict=True) if span.start <= t < last]
    true_at = [t for t, f in inside if f]
    if not true_at:
        return span
    after = [t for t, f in inside if not f and t > true_at[-1]]
    end = after[0] if after else span.end
    return Span(span.series, true_at[0], end, open=span.open and not after)


def seen(ts: Sequence[int], values: Sequence[Any]) -> dict[str, tuple[int, int]]:
    """Every product ID a product-ID series showed: id -> (first, last) reading ns."""
    out: dict[str, tuple[int, int]] = {}
    for t, v in zip(ts, values, strict=True):
        if not isinstance(v, str) or not v:
            continue
        first, _ = out.get(v, (t, t))
        out[v] = (first, t)
    return out


def at(ts: Sequence[int], values: Sequence[Any], moment: int) -> str | None:
    """The product ID a series showed at `moment` (its last reading at or before it)."""
    found = None
    for t, v in zip(ts, values, strict=True):
        if t > moment:
            break
        found = v
    return found if isinstance(found, str) and found else None
