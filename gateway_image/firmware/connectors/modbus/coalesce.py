"""Request coalescing: read a device's tags in the fewest requests the protocol allows.

Pure planning, no I/O. Tags of one table are sorted by address and grouped greedily: a tag
joins the current request while the request stays within the size limit (125 registers,
2000 bits: Modbus application protocol 6.1-6.4) and the hole before the tag is at most
`max_gap` addresses. Bridging a small hole costs two bytes per register on the wire, far
less than another round trip; `max_gap: 0` is for devices that refuse reads of unmapped
addresses. Greedy is optimal here: every request is a window over the sorted tags, and
extending the first window as far as it can go never forces an extra window later.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from gateway_image.firmware.connectors.modbus.config import MAX_READ_BITS, MAX_READ_REGISTERS, Table


class Span(Protocol):
    @property
    def address(self) -> int: ...

    @property
    def count(self) -> int: ...


T = TypeVar("T", bound=Span)
V = TypeVar("V")


@dataclass(frozen=True)
class ReadRequest(Generic[T]):
    """One read: `count` registers (or bits) from `address`, covering `items` entirely."""

    address: int
    count: int
    items: tuple[T, ...]

    @property
    def end(self) -> int:
        return self.address + self.count


def plan_reads(items: Iterable[T], max_count: int, max_gap: int) -> list[ReadRequest[T]]:
    """Group items of one table into requests of at most `max_count` addresses."""
    ordered = sorted(items, key=lambda item: (item.address, item.count))
    requests: list[ReadRequest[T]] = []
    start = end = 0
    group: list[T] = []
    for item in ordered:
        if item.count > max_count:
            raise ValueError(f"an item of {item.count} addresses exceeds {max_count} per request")
        item_end = item.address + item.count
        if group and item.address - end <= max_gap and max(end, item_end) - start <= max_count:
            group.append(item)
            end = max(end, item_end)
            continue
        if group:
            requests.append(ReadRequest(start, end - start, tuple(group)))
        group, start, end = [item], item.address, item_end
    if group:
        requests.append(ReadRequest(start, end - start, tuple(group)))
    return requests


def split_response(request: ReadRequest[T], values: Sequence[V]) -> list[tuple[T, Sequence[V]]]:
    """Each item of the request with its own slice of the response's registers or bits.

    Bit reads come back padded to whole bytes (pymodbus returns multiples of 8), so only
    a response *shorter* than the request is an error.
    """
    if len(values) < request.count:
        raise ValueError(f"response has {len(values)} values, request asked for {request.count}")
    return [
        (item, values[item.address - request.address : item.address - request.address + item.count])
        for item in request.items
    ]


class TableSpan(Span, Protocol):
    @property
    def table(self) -> Table: ...


S = TypeVar("S", bound=TableSpan)


def plan_device(
    tags: Iterable[S], max_registers: int = MAX_READ_REGISTERS, max_gap: int = 0
) -> list[tuple[Table, ReadRequest[S]]]:
    """Plan every table of one device: registers up to max_registers, bits up to 2000."""
    by_table: dict[Table, list[S]] = {}
    for tag in tags:
        by_table.setdefault(tag.table, []).append(tag)
    plan: list[tuple[Table, ReadRequest[S]]] = []
    for table in Table:
        limit = MAX_READ_BITS if table.is_bits else max_registers
        plan += [(table, r) for r in plan_reads(by_table.get(table, []), limit, max_gap)]
    return plan
