"""Whether a value may be written to a tag: pure, from the tag's metadata (its gateway config).

The edge checks before it sends, so a fat-fingered setpoint is refused with the reason at
once; the gateway checks again against its own config (the one that really decides).
"""

from __future__ import annotations

import math
from typing import Any

from edge_node.tagmeta import TagMeta


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def problem(meta: TagMeta | None, value: Any) -> str:
    """Why `value` must not be written to the tag described by `meta`; "" when it may."""
    if meta is None:
        return ""  # no catalogue from this gateway: it decides alone
    if not meta.writable:
        return f"{meta.name} is not writable"
    if meta.type == "bool":
        return "" if isinstance(value, bool) else f"{meta.name} takes true or false"
    if meta.type == "str":
        return "" if isinstance(value, str) else f"{meta.name} takes text"
    if not _number(value) or not math.isfinite(value):
        return f"{meta.name} takes a number, not {value!r}"
    if meta.type == "int" and not float(value).is_integer():
        return f"{meta.name} takes a whole number, not {value!r}"
    if meta.min is not None and value < meta.min:
        return f"{value!r} is below the minimum {meta.min:g} of {meta.name}"
    if meta.max is not None and value > meta.max:
        return f"{value!r} is above the maximum {meta.max:g} of {meta.name}"
    return ""
