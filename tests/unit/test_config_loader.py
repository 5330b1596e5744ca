"""The shared YAML loader: every problem comes back as file:line: key.path: what was expected."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import Field

from factory_common.config import (
    ConfigError,
    StrictModel,
    format_path,
    load_yaml_model,
    parse_yaml_model,
)


class Register(StrictModel):
    address: int = Field(ge=0, le=65535)
    byte_order: Literal["ABCD", "DCBA"] = "ABCD"


class Tcp(StrictModel):
    type: Literal["modbus_tcp"]
    host: str
    registers: list[Register] = []


class Gpio(StrictModel):
    type: Literal["gpio"]
    pin: int


class Sample(StrictModel):
    gateway: str
    connectors: list[Annotated[Tcp | Gpio, Field(discriminator="type")]] = []


GOOD = """\
gateway: g1
connectors:
  - type: gpio
    pin: 3
  - type: modbus_tcp
    host: plc
    registers:
      - address: 1
"""


def problems_of(text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_yaml_model(text, Sample, "gw.yaml")
    return info.value.problems


def test_good_config_loads() -> None:
    config = parse_yaml_model(GOOD, Sample, "gw.yaml")
    assert config.connectors[1].registers[0].address == 1


def test_errors_name_file_line_and_full_path_through_the_union() -> None:
    text = GOOD + "      - address: 70000\n        byte_order: XYZ\n        colour: red\n"
    assert problems_of(text) == [
        "gw.yaml:9: connectors[1].registers[1].address: Input should be less than or equal to "
        "65535 (got 70000)",
        "gw.yaml:10: connectors[1].registers[1].byte_order: Input should be 'ABCD' or 'DCBA' "
        "(got 'XYZ')",
        "gw.yaml:11: connectors[1].registers[1].colour: unknown key (check spelling; see the "
        "sample config for the allowed keys)",
    ]


def test_unknown_connector_type_names_the_choices() -> None:
    (problem,) = problems_of("gateway: g\nconnectors:\n  - type: profinet\n")
    assert problem.startswith("gw.yaml:3: connectors[0]:")
    assert "'modbus_tcp', 'gpio'" in problem


def test_missing_key_is_reported_at_its_parent() -> None:
    (problem,) = problems_of("gateway: g\nconnectors:\n  - type: modbus_tcp\n")
    assert problem == "gw.yaml:3: connectors[0].host: required key is missing"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "gw.yaml: the file is empty"),
        ("- a\n- b\n", "gw.yaml:1: expected a mapping"),
        ("gateway: [unclosed\n", "gw.yaml:2: not valid YAML"),
        ("gateway: g\n\tconnectors: []\n", "gw.yaml:2: not valid YAML: found character"),
    ],
)
def test_unparseable_files(text: str, expected: str) -> None:
    (problem,) = problems_of(text)
    assert expected in problem


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file"):
        load_yaml_model(tmp_path / "nope.yaml", Sample)


def test_format_path() -> None:
    assert format_path(("connectors", 2, "tags", 5, "byte_order")) == (
        "connectors[2].tags[5].byte_order"
    )
    assert format_path(()) == "(top level)"


@given(st.text(max_size=200))
def test_loader_never_raises_anything_but_config_error(text: str) -> None:
    try:
        parse_yaml_model(text, Sample, "fuzz.yaml")
    except ConfigError as exc:
        assert exc.problems
        assert all(p.startswith("fuzz.yaml") for p in exc.problems)


# A "billion laughs": nine anchors, each a list of ten aliases of the one before (10^9 values).
ALIAS_BOMB = "gateway: g1\nlol0: &l0 [lol]\n" + "".join(
    f"lol{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 10)}]\n" for i in range(1, 10)
) + "connectors: *l9\n"  # fmt: skip


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (ALIAS_BOMB, "gw.yaml:8: aliases here expand to more than 1,000,000 values"),
        ("gateway: &a [*a]\n", "gw.yaml:1: an alias refers to itself"),
        ("gateway: g1\nconnectors: " + "[" * 10_000 + "]" * 10_000 + "\n", "gw.yaml:2: nested"),
        ("gateway: g1\nx: " + "{a: " * 5_000 + "1" + "}" * 5_000 + "\n", "gw.yaml:2: nested"),
        ("gateway: g1\nconnectors:\n  - type: gpio\n    pin: " + "9" * 5000 + "\n",
         "gw.yaml:4: integer of 5000 characters is too long"),
        ("gateway: g1\nconnectors: []\ngateway: g2\n",
         "gw.yaml:3: duplicate key 'gateway': first at line 1, again here"),
        ("gateway: g1\nconnectors:\n  - type: gpio\n    pin: 3\n    pin: 4\n",
         "gw.yaml:5: duplicate key 'pin': first at line 4"),
    ],
)  # fmt: skip
def test_hostile_yaml_is_a_clear_error_with_its_line(text: str, expected: str) -> None:
    (problem,) = problems_of(text)
    assert problem.startswith(expected)


def test_merge_keys_may_be_overridden_without_a_duplicate_error() -> None:
    text = "base: &b {type: gpio, pin: 3}\ngateway: g1\nconnectors:\n  - <<: *b\n    pin: 4\n"
    with pytest.raises(ConfigError) as info:  # `base` is an unknown key; the merge is fine
        parse_yaml_model(text, Sample, "gw.yaml")
    assert [p.split(": ")[1] for p in info.value.problems] == ["base"]


def test_errors_never_print_a_whole_input() -> None:
    huge = "x" * 200_000
    problems = problems_of(f"gateway: [{huge}, {huge}]\n")
    assert len("".join(problems)) < 500
    problems = problems_of("gateway: g1\nconnectors:\n  - type: gpio\n    pin: " + huge + "\n")
    assert len("".join(problems)) < 500 and "gw.yaml:4: connectors[0].pin" in problems[0]


def test_a_key_only_libyaml_accepts_is_still_a_config_error() -> None:
    # libyaml reads a tab inside a plain key; the pure loader (used for line numbers) refuses.
    (problem,) = problems_of("gateway: g1\nb\tad: 1\n")
    assert problem.startswith("gw.yaml") and "unknown key" in problem
