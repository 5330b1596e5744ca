"""The tiny JSON path used by the MQTT-in connector: parsing, round-trips and evaluation."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway_image.firmware.connectors.mqtt_in.jsonpath import (
    JsonPath,
    PathMissing,
    PathSyntaxError,
    evaluate,
    format_path,
    parse,
)

DOC = {
    "sensors": [{"temp": 21.5, "rh": 40}, {"temp": 22.0}],
    "a.b": {"c d": True},
    "meta": {"ts": 1_700_000_000},
    "0": "string key zero",
}


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("sensors[0].temp", 21.5),
        ("$.sensors[1].temp", 22.0),
        ("sensors[-1].temp", 22.0),
        ('["a.b"]["c d"]', True),
        ("['a.b']['c d']", True),
        ("meta.ts", 1_700_000_000),
        ("0", "string key zero"),
        ("$", DOC),
        ("", DOC),
    ],
)
def test_evaluates_paths(path: str, expected: object) -> None:
    assert JsonPath(path).get(DOC) == expected


def test_top_level_index_on_a_list_payload() -> None:
    assert JsonPath("[1].v").get([{"v": 1}, {"v": 2}]) == 2


@pytest.mark.parametrize(
    ("path", "where"),
    [
        ("sensors[2].temp", "sensors[2]"),
        ("sensors[0].pressure", "sensors[0].pressure"),
        ("meta.ts.x", "meta.ts.x"),
        ("sensors.temp", "sensors.temp"),
        ("[0]", "[0]"),
    ],
)
def test_missing_paths_name_the_failing_step(path: str, where: str) -> None:
    with pytest.raises(PathMissing, match=rf"no value at {__import__('re').escape(where)} "):
        JsonPath(path).get(DOC)


@pytest.mark.parametrize(
    "path", ["a..b", ".a", "a[", "a[x]", "a[1", "a['b", "a]", "a b", "a[1.5]", "a[]", "a.", "[-]"]
)
def test_syntax_errors_show_position(path: str) -> None:
    with pytest.raises(PathSyntaxError, match="at position"):
        parse(path)


def test_a_string_index_does_not_select_a_list_element() -> None:
    # "0" is an object key, [0] a list index: JSON keeps them apart, so must we.
    with pytest.raises(PathMissing):
        evaluate({"x": [5]}, ("x", "0"))


keys = st.lists(
    st.one_of(st.integers(min_value=-1000, max_value=1000), st.text(max_size=8)), max_size=6
)


@given(keys)
def test_format_then_parse_round_trips(path_keys: list[str | int]) -> None:
    assert parse(format_path(path_keys)) == tuple(path_keys)


def _nest(path_keys: list[str | int], leaf: object) -> object:
    """Build a document in which `path_keys` leads to `leaf` (negative indices from the end)."""
    node = leaf
    for key in reversed(path_keys):
        if isinstance(key, int):
            size = key + 1 if key >= 0 else -key
            items: list[object] = [None] * size
            items[key] = node
            node = items
        else:
            node = {key: node}
    return node


@given(keys, st.one_of(st.integers(), st.floats(allow_nan=False), st.text(), st.booleans()))
def test_evaluate_finds_what_was_put_there(path_keys: list[str | int], leaf: object) -> None:
    document = json.loads(json.dumps(_nest(path_keys, leaf)))
    assert JsonPath(format_path(path_keys)).get(document) == leaf
