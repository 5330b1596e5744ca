"""Every file in examples/ loads with the real config loaders and matches the simulator's map."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from line_sim.register_map import DEVICES, POINTS, markdown_table

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "examples").glob("*.y*ml"))


def _loader(path: Path) -> Callable[[Path], Any]:
    """Pick the loader from the file name: *-gateway.yaml or *-edge.yaml."""
    if path.stem.endswith("-gateway"):
        from gateway_image.firmware.config import load_gateway_config

        return load_gateway_config
    if path.stem.endswith("-edge"):
        config = importlib.import_module("edge_node.config")
        return config.load_edge_config
    raise AssertionError(f"{path.name}: name it *-gateway.yaml or *-edge.yaml so a test loads it")


def test_there_are_examples() -> None:
    assert {p.name for p in EXAMPLES} >= {"anodizing-gateway.yaml", "anodizing-edge.yaml"}


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_loads(path: Path) -> None:
    assert _loader(path)(path) is not None


def test_gateway_example_matches_the_register_map() -> None:
    from gateway_image.firmware.config import load_gateway_config

    config = load_gateway_config(ROOT / "examples" / "anodizing-gateway.yaml")
    (connector,) = config.connectors
    devices = {d.name: d for d in connector.devices}
    assert {name: d.unit for name, d in devices.items()} == {v: k for k, v in DEVICES.items()}
    tags = {(d.name, t.name): t for d in connector.devices for t in d.tags}
    assert set(tags) == {(p.device, p.name) for p in POINTS}
    for p in POINTS:
        tag = tags[(p.device, p.name)]
        where = f"{p.device}.{p.name}"
        assert (tag.table, tag.address, tag.type) == (p.table, p.address, p.type), where
        assert tag.scale == p.scale and tag.unit == p.unit, where
        assert tag.writable == p.writable and (tag.min, tag.max) == (p.min, p.max), where
        assert tag.length == p.length, where
        if p.table in ("holding", "input") and p.type != "string":
            assert tag.byte_order == p.byte_order, where


def test_readme_shows_the_current_register_map() -> None:
    readme = (ROOT / "line_sim" / "README.md").read_text(encoding="utf-8")
    assert markdown_table() in readme, "regenerate: python -m line_sim.register_map"


def _alarms_per_rule(line_seed: int, hours: float, limits: dict[str, Any]) -> dict[str, Any]:
    """Poll the model once a second, as the gateway does, through the edge's own SPC."""
    from edge_node.spc import Limits, SpcMonitor
    from line_sim.anodizing import AnodizingLine, LineParams

    points = {f"anodizing-gw1/{p.device}/{p.name}": p for p in POINTS}
    line = AnodizingLine(LineParams(seed=line_seed, defect_probability=0.15))
    spc = SpcMonitor()
    active: dict[str, set[str]] = {name: set() for name in limits}
    raised: dict[str, dict[str, int]] = {name: {} for name in limits}
    for _ in range(int(hours * 3600)):
        for _ in range(5):
            line.step(0.2)
        snapshot = line.snapshot()
        for name, entry in limits.items():
            value = points[name].read(snapshot)
            now = {v.rule for v in spc.update(name, value, Limits.of(entry)) or []}
            for rule in now - active[name]:
                raised[name][rule] = raised[name].get(rule, 0) + 1
            active[name] = now
    return {"raised": raised, "defects": line.snapshot().defects}


@pytest.mark.parametrize("seed", [1, 4])
def test_edge_example_limits_fit_the_simulated_line(seed: int) -> None:
    """Normal operation stays inside the demo limits; each defect product raises one alarm."""
    from edge_node.config import load_edge_config

    limits = load_edge_config(ROOT / "examples" / "anodizing-edge.yaml").monitoring.limits
    series = {f"anodizing-gw1/{p.device}/{p.name}" for p in POINTS}
    assert limits and set(limits) <= series, set(limits) - series
    result = _alarms_per_rule(seed, 1.0, limits)
    raised = result["raised"]
    colour = raised.pop("anodizing-gw1/meter1/product_delta_e")
    # Defect products come one at a time (a normal one between two is the usual case).
    assert result["defects"] >= 10
    assert result["defects"] * 0.8 <= colour.get("spec", 0) <= result["defects"]
    for name, rules in raised.items():  # temperature and concentration: a quiet hour
        assert sum(rules.values()) <= 2, (name, rules)
