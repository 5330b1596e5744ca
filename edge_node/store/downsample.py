"""Reduce a series to at most N buckets for a chart: min, max and mean per time bucket.

Min and max per bucket (not LTTB alone) because a one-sample spike, such as a defect-level
colour, must survive downsampling: an operator zoomed out must still see it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True, slots=True)
class Buckets:
    """Per non-empty bucket: start time (ns), min, max, mean and number of readings."""

    t: np.ndarray
    min: np.ndarray
    max: np.ndarray
    mean: np.ndarray
    count: np.ndarray


def bucket_width(start: int, end: int, points: int) -> int:
    if points < 1 or end <= start:
        raise ValueError(f"need points >= 1 and end > start (got {points}, [{start}, {end}))")
    return -(-(end - start) // points)  # ceiling: never more than `points` buckets


def min_max_mean(ts: np.ndarray, values: np.ndarray, start: int, end: int, points: int) -> Buckets:
    """ts sorted int64 ns within [start, end); NaN values are ignored."""
    width = bucket_width(start, end, points)
    numbers = np.asarray(values, dtype=np.float64)
    keep = ~np.isnan(numbers)
    ts, numbers = ts[keep], numbers[keep]
    if len(ts) == 0:
        empty = np.zeros(0)
        return Buckets(np.zeros(0, np.int64), empty, empty, empty, np.zeros(0, np.int64))
    index = (ts - start) // width
    starts = np.flatnonzero(np.concatenate(([True], index[1:] != index[:-1])))
    count = np.diff(np.append(starts, len(ts)))
    return Buckets(
        t=start + index[starts] * width,
        min=np.minimum.reduceat(numbers, starts),
        max=np.maximum.reduceat(numbers, starts),
        mean=np.add.reduceat(numbers, starts) / count,
        count=count,
    )


def last_per_bucket(
    ts: np.ndarray, values: list[Any], start: int, end: int, points: int
) -> tuple[np.ndarray, list[Any]]:
    """For strings (product ids, events): the last reading of each bucket, at its own time."""
    if len(ts) == 0:
        return ts, []
    width = bucket_width(start, end, points)
    index = (ts - start) // width
    ends = np.flatnonzero(np.concatenate((index[1:] != index[:-1], [True])))
    return ts[ends], [values[i] for i in ends]
