"""Load one YAML config file into a pydantic model; errors name the file, line, key path and fix.

Every tier (gateway, edge node, fleet, provisioning) validates through this one loader, so a
config that passes on an ops laptop passes on the device.
"""

from __future__ import annotations

import reprlib
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic_core import ErrorDetails

from factory_common.errors import FactoryError
from factory_common.yaml_read import YamlProblem, read_yaml

M = TypeVar("M", bound=BaseModel)
_SHORT = reprlib.Repr()  # bounded: reprs at most a few items of a few levels
_SHORT.maxstring = _SHORT.maxother = 60
_SHORT.maxlist = _SHORT.maxdict = _SHORT.maxtuple = 4
_SHORT.maxlevel = 2


class StrictModel(BaseModel):
    """Base for config models: unknown keys are errors (a typo must not be silently ignored)."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


class ConfigError(FactoryError, ValueError):
    exit_code = 2  # like a usage error: the input is wrong, not the program
    """A config that cannot be used. `problems` lists each one as 'file:line: path: message'."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        super().__init__(f"invalid config {source}:\n" + "\n".join(f"  {p}" for p in problems))


def format_path(loc: tuple[int | str, ...]) -> str:
    """('connectors', 2, 'tags', 5, 'byte_order') -> 'connectors[2].tags[5].byte_order'."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "(top level)"


def _line_of(node: yaml.Node | None, loc: tuple[int | str, ...]) -> int | None:
    """Walk the YAML node tree along a pydantic error location to find the source line."""
    line = node.start_mark.line + 1 if node is not None else None
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            match = next((v for k, v in node.value if k.value == part), None)
            key = next((k for k, _ in node.value if k.value == part), None)
            if match is None:
                break
            node, line = match, (key or match).start_mark.line + 1
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            if part >= len(node.value):
                break
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            # Discriminated unions add the tag name ('modbus_tcp') to the path: skip it.
            continue
    return line


def _clean_loc(loc: tuple[int | str, ...], data: Any) -> tuple[int | str, ...]:
    """Drop the union tag pydantic inserts (connectors.0.modbus_tcp.host -> connectors[0].host)."""
    out: list[int | str] = []
    cursor = data
    for part in loc:
        # Two branches, not one `or`: each narrows `cursor` for its own index type.
        if isinstance(cursor, dict) and part in cursor:  # noqa: SIM114
            cursor = cursor[part]
            out.append(part)
        elif isinstance(cursor, list) and isinstance(part, int) and part < len(cursor):
            cursor = cursor[part]
            out.append(part)
        elif isinstance(cursor, dict) and isinstance(part, str) and cursor.get("type") == part:
            continue
        else:
            out.append(part)
            cursor = None
    return tuple(out)


def _message(error: ErrorDetails) -> str:
    msg = str(error["msg"])
    if error["type"] == "extra_forbidden":
        return "unknown key (check spelling; see the sample config for the allowed keys)"
    if error["type"] == "missing":
        return "required key is missing"
    if "input" in error and error["type"] not in {"union_tag_invalid", "model_type"}:
        # Never repr the whole input: it may be a huge string or an expanded structure.
        shown = _SHORT.repr(error["input"])
        if len(shown) <= 60 and "..." not in shown:
            msg += f" (got {shown})"
    return msg


def validation_problems(
    exc: ValidationError, source: str, data: Any, root: yaml.Node | None
) -> list[str]:
    problems = []
    for error in exc.errors():
        loc = _clean_loc(tuple(error["loc"]), data)
        line = _line_of(root, loc)
        where = f"{source}:{line}" if line else source
        problems.append(f"{where}: {format_path(loc)}: {_message(error)}")
    return problems


def parse_yaml_model(text: str, model: type[M], source: str = "<config>") -> M:
    """Validate YAML text into `model`; raises ConfigError listing every problem found."""
    try:
        data = read_yaml(text)
    except YamlProblem as exc:
        where = f"{source}:{exc.line}" if exc.line else source
        raise ConfigError(source, [f"{where}: {exc.message}"]) from None
    if data is None:
        raise ConfigError(source, [f"{source}: the file is empty"])
    if not isinstance(data, dict):
        raise ConfigError(source, [f"{source}:1: expected a mapping of keys at the top level"])
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        # The node tree (for line numbers) only when there is something to point at: for a
        # thousand tags it costs several MB that a gateway would keep as RSS for good.
        try:
            root = yaml.compose(text, Loader=yaml.SafeLoader)
        except yaml.YAMLError:  # libyaml took what the pure loader refuses (a tab in a key)
            root = None  # the problems then name the file and key path, without a line
        raise ConfigError(source, validation_problems(exc, source, data, root)) from None


def load_yaml_model(path: str | Path, model: type[M]) -> M:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(str(path), [f"{path}: no such file"]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(str(path), [f"{path}: cannot read: {exc}"]) from None
    return parse_yaml_model(text, model, str(path))
