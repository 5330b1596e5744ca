"""Label selectors (`line=anodizing,site=plant2`, `!beta`, `role in (press,oven)`): pure parsing.

The grammar follows Kubernetes' label selectors, which operations people already know:
requirements separated by commas, all of which must hold. Keys are the gateway's labels plus
its built-in fields (id, site, line, board, backend), so `site=plant2` needs no label.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from factory_common.errors import FleetError

_KEY = r"[A-Za-z0-9][A-Za-z0-9_.\-/]*"
_VALUE = r"[A-Za-z0-9_.\-]*"
_EQ = re.compile(rf"^({_KEY})\s*(==|=|!=)\s*({_VALUE})$")
_SET = re.compile(rf"^({_KEY})\s+(in|notin)\s*\(([^()]*)\)$")
_EXISTS = re.compile(rf"^(!?)\s*({_KEY})$")


class SelectorError(FleetError, ValueError):
    """A selector that cannot be parsed; the message names the requirement and the grammar."""


@dataclass(frozen=True)
class Requirement:
    key: str
    op: str  # "=", "!=", "in", "notin", "exists", "absent"
    values: frozenset[str] = frozenset()

    def matches(self, labels: Mapping[str, str]) -> bool:
        value = labels.get(self.key)
        if self.op == "exists":
            return value is not None
        if self.op == "absent":
            return value is None
        if self.op in ("=", "in"):
            return value in self.values
        return value not in self.values  # "!=" and "notin" hold when the key is absent too


@dataclass(frozen=True)
class Selector:
    requirements: tuple[Requirement, ...]

    def matches(self, labels: Mapping[str, str]) -> bool:
        return all(r.matches(labels) for r in self.requirements)


def _split(text: str) -> list[str]:
    """Split on commas that are not inside `in (...)` parentheses."""
    parts, depth, current = [], 0, ""
    for char in text:
        depth += (char == "(") - (char == ")")
        if depth < 0 or depth > 1:
            raise SelectorError(f"selector {text!r}: unbalanced parentheses")
        if char == "," and depth == 0:
            parts.append(current.strip())
            current = ""
        else:
            current += char
    if depth:
        raise SelectorError(f"selector {text!r}: unbalanced parentheses")
    parts.append(current.strip())
    return parts


def _requirement(part: str, whole: str) -> Requirement:
    if m := _EQ.match(part):
        op = "!=" if m.group(2) == "!=" else "="
        return Requirement(m.group(1), op, frozenset([m.group(3)]))
    if m := _SET.match(part):
        values = frozenset(v.strip() for v in m.group(3).split(",") if v.strip())
        if not values:
            raise SelectorError(f"selector {whole!r}: {part!r} lists no values")
        return Requirement(m.group(1), m.group(2), values)
    if m := _EXISTS.match(part):
        return Requirement(m.group(2), "absent" if m.group(1) else "exists")
    raise SelectorError(
        f"selector {whole!r}: cannot read {part!r}; use key=value, key!=value, key, !key, "
        "key in (a,b) or key notin (a,b), separated by commas"
    )


def parse_selector(text: str | None) -> Selector:
    """Parse a selector; an empty or missing one selects every gateway."""
    if text is None or not text.strip() or text.strip() in ("*", "all"):
        return Selector(())
    parts = _split(text)
    if any(not p for p in parts):
        raise SelectorError(f"selector {text!r}: empty requirement (a stray comma?)")
    return Selector(tuple(_requirement(p, text) for p in parts))
