"""The tag-overlap check on thousands of tags: the same problems, in the same order, as
comparing every pair of tags (the rules as first written, kept here as the reference)."""

from __future__ import annotations

import random
from typing import Any

import pytest

from gateway_image.firmware.connectors.modbus.config import ModbusTag, Table, overlaps
from gateway_image.firmware.connectors.tags import Loc


def every_pair(tags: list[ModbusTag]) -> list[tuple[Loc, str, Any]]:
    problems: list[tuple[Loc, str, Any]] = []
    for j, tag in enumerate(tags):
        for i, other in enumerate(tags[:j]):
            if other.table is not tag.table:
                continue
            if not (
                tag.address < other.address + other.count
                and other.address < tag.address + tag.count
            ):
                continue
            same_span = (tag.address, tag.count) == (other.address, other.count)
            if same_span and tag.bit is None and other.bit is None:
                continue
            if tag.bit is not None and other.bit is not None and tag.bit != other.bit:
                continue
            if (tag.bit is None) != (other.bit is None):
                continue
            span = f"{other.table} {other.address}-{other.address + other.count - 1}"
            message = (
                f"tag {tag.name!r} reads registers that tag {other.name!r} (tags[{i}], {span}) "
                "already reads: check both addresses"
            )
            problems.append((("tags", j, "address"), message, tag.address))
    return problems


def random_tag(rng: random.Random, n: int, registers: int) -> ModbusTag:
    table = rng.choice([Table.HOLDING, Table.HOLDING, Table.INPUT, Table.COIL])
    spec: dict[str, Any] = {"name": f"t{n}", "table": table, "address": rng.randrange(registers)}
    if table is Table.COIL:
        return ModbusTag(**spec)
    kind = rng.choice(["uint16", "int32", "float32", "float64", "string", "bool", "bit"])
    if kind == "string":
        spec |= {"type": "string", "length": rng.randint(1, 12)}
    elif kind == "bit":
        spec |= {"type": "bool", "bit": rng.randrange(4)}
    else:
        spec["type"] = kind
    return ModbusTag(**spec)


@pytest.mark.parametrize(("seed", "tags", "registers"), [(1, 3000, 30_000), (2, 2000, 2000)])
def test_overlaps_match_every_pair_on_thousands_of_tags(
    seed: int, tags: int, registers: int
) -> None:
    rng = random.Random(seed)
    layout = [random_tag(rng, n, registers) for n in range(tags)]
    # Second views on purpose: the same span again somewhere later in the list.
    for n in range(tags // 10):
        again = rng.choice(layout).model_dump(exclude={"name"})
        layout.insert(rng.randrange(len(layout) + 1), ModbusTag(**again, name=f"v{n}"))
    expected = every_pair(layout)
    assert expected, "the layout should have some overlaps to find"
    assert overlaps(layout) == expected
