"""JSON bodies whose columns are numpy arrays (history): orjson writes a contiguous array of
numbers straight from its memory, where msgspec first needs a Python object per number
(`.tolist()`). Measured for a chart's day of 23 series downsampled (~80,000 numbers):
~3 ms as lists through msgspec, ~1.2 ms as arrays here. NaN (no value) is null either way.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson

_OPTIONS = orjson.OPT_SERIALIZE_NUMPY


def encode(content: Any) -> bytes:
    return orjson.dumps(content, default=_fallback, option=_OPTIONS)


def _fallback(value: Any) -> Any:
    """What orjson leaves to us: strided arrays, dtypes it does not write, numpy scalars."""
    if isinstance(value, np.ndarray | np.generic):
        return value.tolist()
    raise TypeError(f"cannot write {type(value).__name__} as JSON")
