"""The shipped defect rule against the simulated line's own model: one record per defect product."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edge_node.rules.actions import Services
from edge_node.rules.engine import RuleEngine
from edge_node.rules.model import RulesFile
from edge_node.rules.store import FiringStore
from factory_common.config import load_yaml_model
from factory_common.wire import Batch, Reading
from line_sim.anodizing import AnodizingLine, LineParams

EXAMPLE = Path(__file__).parents[2] / "examples/rules/anodizing-defect.yaml"


class Outbox:
    def __init__(self) -> None:
        self.items: list[tuple[str, dict[str, Any], str]] = []

    def add(self, kind: str, payload: dict[str, Any], key: str) -> None:
        self.items.append((kind, payload, key))


def polls(line: AnodizingLine, seconds: int) -> tuple[list[Batch], set[str]]:
    """One batch per second as the gateway would poll the meter and the PLC's recipe."""
    batches, defective = [], set()
    for i in range(seconds):
        line.step(1.0)
        snap = line.snapshot()
        ts = (i + 1) * 1_000_000_000
        readings = [
            Reading("bath1", "recipe", ts, snap.recipe),
            Reading("meter1", "delta_e_limit", ts + 1, snap.delta_e_limit),
            Reading("meter1", "product_delta_e", ts + 1, snap.delta_e),
            Reading("meter1", "measured_product_id", ts + 1, snap.measured_product_id),
        ]
        batches.append(Batch(1, "anodizing-gw1", "boot", 4 * i, 4 * i + 3, readings))
        if snap.defect:
            defective.add(snap.measured_product_id)
    return batches, defective


async def test_the_example_rule_records_each_defective_product_once(tmp_path: Path) -> None:
    rules = load_yaml_model(EXAMPLE, RulesFile)
    outbox = Outbox()
    firings = FiringStore(tmp_path / "ops.sqlite")
    engine = RuleEngine(firings, Services(outbox=outbox))
    engine.set_rules(rules)
    batches, defective = polls(AnodizingLine(LineParams(seed=11, defect_probability=0.4)), 900)
    assert len(defective) >= 3  # the seed gives a few defects among ~30 products
    for batch in batches:  # a batch a second: each firing is done before the next arrives
        engine.process([batch])
        await engine.drain()
    products = [payload["product_id"] for _, payload, _ in outbox.items]
    assert sorted(products) == sorted(defective)  # each defect product once, no others
    first = outbox.items[0][1]
    assert first["recipe_id"] == "1" and first["series"] == "anodizing-gw1/meter1/product_delta_e"
    assert first["value"] > first["limit"] == 3.0
    # No command sender here: the label action is recorded as failed, the cloud record stands.
    outcomes = {f["outcome"] for f in firings.recent("anodizing-defect")}
    assert outcomes == {"failed"}
    firings.close()
