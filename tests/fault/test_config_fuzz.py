"""Fuzz the real gateway config loader with mutations of a valid config (the example line's):
whatever the mutation, the loader either accepts the file or raises ConfigError, which names
the file and line; never another exception (a crash of `gateway run` / `gateway check`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from factory_common.config import ConfigError
from gateway_image.firmware.config import GatewayConfig, parse_gateway_config

ROOT = Path(__file__).resolve().parents[2]
VALID = (ROOT / "examples" / "anodizing-gateway.yaml").read_text(encoding="utf-8")
SOURCE = "fuzz.yaml"

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.sampled_from(["", "-1", "1e309", "0x10", "ABCD", "float32", "256MiB", "9" * 30, "~"]),
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=6,
)


def paths(node: Any, prefix: tuple = ()) -> list[tuple]:
    """Every key path into the parsed YAML (dict keys and list indexes)."""
    found = [prefix] if prefix else []
    if isinstance(node, dict):
        for key, child in node.items():
            found += paths(child, (*prefix, key))
    elif isinstance(node, list):
        for i, child in enumerate(node):
            found += paths(child, (*prefix, i))
    return found


BASE = yaml.safe_load(VALID)
PATHS = paths(BASE)


def check(text: str) -> None:
    try:
        config = parse_gateway_config(text, SOURCE)
    except ConfigError as exc:
        assert exc.problems and all(p.startswith(SOURCE) for p in exc.problems), exc.problems
        return
    assert isinstance(config, GatewayConfig)


def test_the_unmutated_example_is_valid() -> None:
    assert parse_gateway_config(VALID, SOURCE).gateway.id == "anodizing-gw1"


@pytest.mark.slow
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(PATHS), values, st.booleans())
def test_a_value_replaced_or_a_key_removed_gives_config_error_or_a_config(
    path: tuple, value: Any, remove: bool
) -> None:
    data = yaml.safe_load(VALID)
    parent = data
    for key in path[:-1]:
        parent = parent[key]
    if remove:
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    check(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))


@pytest.mark.slow
@settings(max_examples=200, deadline=None)
@given(st.data())
def test_text_edits_give_config_error_or_a_config(data: st.DataObject) -> None:
    """Byte-level damage: a cut, a deleted or doubled line, stray characters anywhere."""
    text = VALID
    lines = text.splitlines(keepends=True)
    edit = data.draw(st.sampled_from(["cut", "drop_line", "double_line", "insert", "replace"]))
    at = data.draw(st.integers(0, len(text) - 1))
    line = data.draw(st.integers(0, len(lines) - 1))
    junk = data.draw(st.text(min_size=1, max_size=8))
    if edit == "cut":
        text = text[:at]
    elif edit == "drop_line":
        text = "".join(lines[:line] + lines[line + 1 :])
    elif edit == "double_line":
        text = "".join(lines[: line + 1] + lines[line:])
    elif edit == "insert":
        text = text[:at] + junk + text[at:]
    else:
        text = text[:at] + junk + text[at + len(junk) :]
    check(text)
