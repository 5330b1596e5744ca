"""Request coalescing: fewest requests, limits respected, every tag gets its own slice back."""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway_image.firmware.connectors.modbus.coalesce import (
    plan_device,
    plan_reads,
    split_response,
)
from gateway_image.firmware.connectors.modbus.config import Table


@dataclass(frozen=True)
class Item:
    address: int
    count: int
    table: Table = Table.HOLDING


def minimal_requests(items: list[Item], max_count: int, max_gap: int) -> int:
    """Independent answer by dynamic programming over every feasible window of sorted items."""
    items = sorted(items, key=lambda i: i.address)
    best = [0] + [len(items) + 1] * len(items)
    for j in range(1, len(items) + 1):
        for i in range(j - 1, -1, -1):
            window = items[i:j]
            span = window[-1].address + window[-1].count - window[0].address
            gaps_ok = all(
                b.address - (a.address + a.count) <= max_gap for a, b in itertools.pairwise(window)
            )
            if span <= max_count and gaps_ok:
                best[j] = min(best[j], best[i] + 1)
    return best[-1]


def scattered(count: int, seed: int, max_width: int = 4) -> list[Item]:
    """Non-overlapping tags of 1..max_width registers with random holes between them."""
    rng = random.Random(seed)
    items, address = [], rng.randrange(0, 50)
    for _ in range(count):
        width = rng.choice([1, 2, 4][: max(1, max_width.bit_length())])
        items.append(Item(address, width))
        address += width + rng.choice([0, 0, 0, 1, 3, 8, 12, 40, 200])
    rng.shuffle(items)
    return items


def check_plan(items: list[Item], max_count: int, max_gap: int) -> None:
    plan = plan_reads(items, max_count, max_gap)
    covered = [item for request in plan for item in request.items]
    assert sorted(covered, key=id) == sorted(items, key=id)
    for request in plan:
        assert 1 <= request.count <= max_count
        for item in request.items:
            assert request.address <= item.address and item.address + item.count <= request.end
    assert len(plan) == minimal_requests(items, max_count, max_gap)


@pytest.mark.parametrize("seed", range(3))
def test_400_scattered_registers_minimal(seed: int) -> None:
    items = scattered(400, seed)
    check_plan(items, 125, 10)
    # Coalescing must pay off: a third of the holes are too wide to bridge, the rest merge.
    assert len(plan_reads(items, 125, 10)) < len(items) / 2


@given(
    st.lists(st.tuples(st.integers(0, 30), st.sampled_from([1, 2, 4])), min_size=1, max_size=40),
    st.integers(1, 20),
    st.integers(0, 6),
)
def test_plan_is_minimal_for_any_layout(
    holes: list[tuple[int, int]], max_count: int, max_gap: int
) -> None:
    items, address = [], 0
    for hole, width in holes:
        address += hole
        items.append(Item(address, min(width, max_count)))
        address += min(width, max_count)
    check_plan(items, max_count, max_gap)


def test_limits_and_gap() -> None:
    contiguous = [Item(a, 1) for a in range(300)]
    assert [(r.address, r.count) for r in plan_reads(contiguous, 125, 0)] == [
        (0, 125),
        (125, 125),
        (250, 50),
    ]
    assert len(plan_reads([Item(0, 1), Item(11, 1)], 125, 10)) == 1
    assert len(plan_reads([Item(0, 1), Item(12, 1)], 125, 10)) == 2
    # A 2-register value never straddles two requests.
    assert [(r.address, r.count) for r in plan_reads([Item(0, 124), Item(124, 2)], 125, 0)] == [
        (0, 124),
        (124, 2),
    ]


def test_bits_use_2000_limit_and_tables_stay_apart() -> None:
    tags = [Item(a, 1, Table.COIL) for a in range(0, 4000, 2)]
    tags += [Item(0, 1, Table.DISCRETE), Item(0, 2, Table.INPUT), Item(0, 2, Table.HOLDING)]
    plan = plan_device(tags, max_registers=125, max_gap=5)
    coils = [r for table, r in plan if table is Table.COIL]
    assert [r.count for r in coils] == [1999, 1999]
    assert {table for table, _ in plan} == set(Table)
    assert all(item.table is table for table, r in plan for item in r.items)


def test_split_response_slices_each_item() -> None:
    request = plan_reads([Item(10, 2), Item(13, 1), Item(10, 1)], 125, 5)[0]
    values = list(range(100, 104))
    slices = {
        (item.address, item.count): list(part) for item, part in split_response(request, values)
    }
    assert slices == {(10, 1): [100], (10, 2): [100, 101], (13, 1): [103]}
    # Bit responses are padded to whole bytes: extra values are ignored, missing ones are not.
    assert len(split_response(request, [*values, 0, 0])) == 3
    with pytest.raises(ValueError, match="response has 3 values"):
        split_response(request, values[:3])
