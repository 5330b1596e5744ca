"""A tiny, pure JSON path: `sensors[0].temp`, `data["a.b"][-1]`; parse once, evaluate per message.

Grammar (no filters, no wildcards, no eval; what a Wi-Fi sensor's payload needs):
    path    := ['$'] [first] step*
    first   := name | index | quoted
    step    := '.' name | index | quoted
    name    := one or more characters other than . [ ] " ' and whitespace
    index   := '[' ['-'] digits ']'        (negative counts from the end)
    quoted  := '[' ('"' chars '"' | "'" chars "'") ']'   (backslash escapes the quote)
An empty path (or `$`) selects the whole document.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from factory_common.errors import GatewayError

Key = str | int
_NAME_STOP: Final = frozenset(".[]\"' \t\r\n")


class PathSyntaxError(GatewayError, ValueError):
    """The path text cannot be parsed; the message shows where."""


class PathMissing(GatewayError, LookupError):
    """The document has no value at the path; the message names the first missing step."""


def _fail(text: str, pos: int, what: str) -> PathSyntaxError:
    return PathSyntaxError(f"JSON path {text!r} at position {pos}: {what}")


def _name(text: str, pos: int) -> tuple[str, int]:
    end = pos
    while end < len(text) and text[end] not in _NAME_STOP:
        end += 1
    if end == pos:
        raise _fail(text, pos, "expected a key name")
    return text[pos:end], end


def _quoted(text: str, pos: int) -> tuple[str, int]:
    quote = text[pos]
    out: list[str] = []
    i = pos + 1
    while i < len(text):
        char = text[i]
        if char == "\\" and i + 1 < len(text):
            out.append(text[i + 1])
            i += 2
            continue
        if char == quote:
            return "".join(out), i + 1
        out.append(char)
        i += 1
    raise _fail(text, pos, "unterminated quoted key")


def _bracket(text: str, pos: int) -> tuple[Key, int]:
    """Parse `[...]` starting at the '['; return the key and the position after ']'."""
    i = pos + 1
    if i < len(text) and text[i] in "\"'":
        key, i = _quoted(text, i)
        value: Key = key
    else:
        end = text.find("]", i)
        digits = text[i:end] if end >= 0 else ""
        body = digits[1:] if digits.startswith("-") else digits
        if not body.isascii() or not body.isdigit():
            raise _fail(text, i, "expected an integer index or a quoted key inside [ ]")
        value, i = int(digits), end
    if i >= len(text) or text[i] != "]":
        raise _fail(text, i, "expected ']'")
    return value, i + 1


def parse(text: str) -> tuple[Key, ...]:
    """Parse a path into its keys (str for object keys, int for list indices)."""
    pos = 1 if text.startswith("$") else 0
    keys: list[Key] = []
    first = True
    while pos < len(text):
        char = text[pos]
        if char == "[":
            key, pos = _bracket(text, pos)
        elif char == "." and not (first and pos == 0):
            key, pos = _name(text, pos + 1)
        elif first and char not in _NAME_STOP:
            key, pos = _name(text, pos)
        else:
            raise _fail(text, pos, f"unexpected {char!r}")
        keys.append(key)
        first = False
    return tuple(keys)


def format_path(keys: Sequence[Key]) -> str:
    """The canonical text of a key sequence; `parse(format_path(k)) == tuple(k)`."""
    out: list[str] = []
    for key in keys:
        if isinstance(key, int):
            out.append(f"[{key}]")
        elif key and not any(c in _NAME_STOP for c in key) and not (not out and key[0] == "$"):
            out.append(f".{key}" if out else key)
        else:
            escaped = key.replace("\\", "\\\\").replace('"', '\\"')
            out.append(f'["{escaped}"]')
    return "".join(out)


def evaluate(document: Any, keys: Sequence[Key]) -> Any:
    """Follow `keys` into a decoded JSON document; raise PathMissing naming the failing step."""
    node = document
    for depth, key in enumerate(keys):
        if isinstance(key, int) and isinstance(node, list):
            if -len(node) <= key < len(node):
                node = node[key]
                continue
        elif isinstance(key, str) and isinstance(node, dict) and key in node:
            node = node[key]
            continue
        where = format_path(keys[: depth + 1]) or "$"
        found = type(node).__name__ if node is not None else "null"
        raise PathMissing(f"no value at {where} (found {found} there)")
    return node


class JsonPath:
    """A parsed path: `JsonPath("sensors[0].temp").get(doc)`."""

    __slots__ = ("keys", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        self.keys = parse(text)

    def get(self, document: Any) -> Any:
        return evaluate(document, self.keys)

    def __repr__(self) -> str:
        return f"JsonPath({self.text!r})"
