"""Read config YAML safely: bounded nesting and alias expansion, no duplicate keys, clear errors.

PyYAML's safe loader is safe from code execution but not from a hostile or broken file:
- an alias bomb ("billion laughs": nine anchors, each ten aliases of the previous) is a few
  hundred bytes that expands to 10^9 values when validated or printed;
- 10,000 nested brackets exhaust Python's recursion in the composer (RecursionError);
- a 5,000-digit integer fails Python's int() digit limit (a bare ValueError);
- a repeated key silently replaces the first (a second `mqtt:` wins unseen).
Each of these becomes a `YamlProblem` naming the line (and, for a duplicate, both lines).
"""

from __future__ import annotations

from typing import Any, Final

import yaml

from factory_common.errors import FactoryError

# Deeper than any real config; far below Python's recursion limit in the composer.
MAX_DEPTH: Final = 64
# Values in the document with every alias expanded: a large line config has a few thousand.
MAX_EXPANDED: Final = 1_000_000
_MERGE_TAG: Final = "tag:yaml.org,2002:merge"


class YamlProblem(FactoryError):
    """Why a text is not usable YAML; `line` is 1-based (None: the whole document)."""

    def __init__(self, line: int | None, message: str) -> None:
        super().__init__(message)
        self.line = line
        self.message = message


class _Checks(yaml.constructor.SafeConstructor):
    """Refuses duplicate keys and integers Python cannot convert (mixed into both loaders)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == _MERGE_TAG or not isinstance(key_node, yaml.ScalarNode):
                continue
            key = self.construct_object(key_node)
            line = key_node.start_mark.line + 1
            if key in seen:
                raise YamlProblem(
                    line, f"duplicate key {_short(key)}: first at line {seen[key]}, again here"
                )
            seen[key] = line
        return super().construct_mapping(node, deep=deep)

    def construct_yaml_int(self, node: yaml.ScalarNode) -> int:
        try:
            return super().construct_yaml_int(node)
        except ValueError:
            raise YamlProblem(
                node.start_mark.line + 1,
                f"integer of {len(str(node.value))} characters is too long to be a number",
            ) from None


# libyaml's loader when PyYAML was built with it (every wheel is): a fraction of the pure
# loader's time and peak memory. The pure one words syntax errors as documented and tested.
_FAST_BASE: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _FastLoader(_Checks, _FAST_BASE):
    pass


class _PyLoader(_Checks, yaml.SafeLoader):
    pass


# The stubs type a constructor by the loader class; ours is the mixin both loaders share.
_FastLoader.add_constructor("tag:yaml.org,2002:int", _Checks.construct_yaml_int)  # type: ignore[type-var]
_PyLoader.add_constructor("tag:yaml.org,2002:int", _Checks.construct_yaml_int)  # type: ignore[type-var]


def _short(value: Any) -> str:
    shown = repr(value) if isinstance(value, str | int | float | bool) else type(value).__name__
    return shown if len(shown) <= 40 else shown[:37] + "..."


def check_depth(text: str, loader: type = _FAST_BASE) -> None:
    """Walk the parser's events (iterative, unlike the composer) and refuse deep nesting."""
    depth = 0
    for event in yaml.parse(text, Loader=loader):
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_DEPTH:
                raise YamlProblem(
                    event.start_mark.line + 1 if event.start_mark else 0,
                    f"nested more than {MAX_DEPTH} levels deep: a config never needs this",
                )
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1


def check_expansion(root: yaml.Node) -> None:
    """Count the values the document holds with aliases expanded, without expanding them."""
    sizes: dict[int, int] = {}
    # Iterative post-order walk: shared (aliased) nodes are counted once and reused.
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    open_nodes: set[int] = set()
    while stack:
        node, children_done = stack.pop()
        key = id(node)
        if key in sizes:
            continue
        children = _children(node)
        if children_done:
            open_nodes.discard(key)
            sizes[key] = 1 + sum(sizes[id(c)] for c in children)
            if sizes[key] > MAX_EXPANDED:
                raise YamlProblem(
                    node.start_mark.line + 1,
                    f"aliases here expand to more than {MAX_EXPANDED:,} values: refused "
                    "(an alias bomb, or a config far larger than any line needs)",
                )
            continue
        if key in open_nodes:
            raise YamlProblem(node.start_mark.line + 1, "an alias refers to itself")
        open_nodes.add(key)
        stack.append((node, True))
        stack.extend((child, False) for child in children if id(child) not in sizes)


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return []


def read_yaml(text: str) -> Any:
    """The document's data; raises YamlProblem naming the line of what is wrong."""
    try:
        check_depth(text)
        return _construct(_FastLoader, text)
    except yaml.YAMLError:
        pass  # libyaml's words, or its own nesting limit: ask the pure loader, depth first
    try:
        check_depth(text, yaml.SafeLoader)
        return _construct(_PyLoader, text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc)
        raise YamlProblem(mark.line + 1 if mark else None, f"not valid YAML: {problem}") from None


def _construct(loader_class: type, text: str) -> Any:
    loader = loader_class(text)
    try:
        root = loader.get_single_node()
        if root is None:
            return None
        check_expansion(root)
        return loader.construct_document(root)
    finally:
        loader.dispose()
