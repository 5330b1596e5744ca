"""Reduce a series to at most N buckets for a chart: min, max and mean per time bucket.

Min and max per bucket (not LTTB alone) because a one-sample spike, such as a defect-level
colour, must survive downsampling: an operator zoomed out must still see it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from itertools import pairwise
from typing import Any, NamedTuple

import numpy as np

MINUTE_NS = 60_000_000_000
HOUR_NS = 60 * MINUTE_NS


@dataclass(frozen=True, slots=True)
class Buckets:
    """Per non-empty bucket: start time (ns), min, max, mean, sum and number of readings;
    `last` (the bucket's latest value) when the buckets come from rollups."""

    t: np.ndarray
    min: np.ndarray
    max: np.ndarray
    mean: np.ndarray
    count: np.ndarray
    sum: np.ndarray
    last: np.ndarray | None = None


def bucket_width(start: int, end: int, points: int) -> int:
    if points < 1 or end <= start:
        raise ValueError(f"need points >= 1 and end > start (got {points}, [{start}, {end}))")
    return -(-(end - start) // points)  # ceiling: never more than `points` buckets


class Grid(NamedTuple):
    origin: int  # ns, the first bucket's start
    width: int  # ns
    stop: int  # ns, the range widened to whole units
    unit: int  # MINUTE_NS or HOUR_NS: which rollups answer


def rollup_grid(start: int, end: int, points: int) -> Grid | None:
    """The buckets the rollups answer [start, end) with: hour
    rollups when a bucket spans an hour or more, else minute rollups; the range widened to
    whole units and the width, taken from the widened range, rounded up to whole units, so
    there are still at most `points` buckets. None under a minute: only the raw readings can
    answer then."""
    width = bucket_width(start, end, points)
    if width < MINUTE_NS:
        return None
    unit = HOUR_NS if width >= HOUR_NS else MINUTE_NS
    origin, stop = start - start % unit, end + (-end) % unit
    # The width of the unwidened range could need points + 1 buckets over the widened one.
    width = bucket_width(origin, stop, points)
    return Grid(origin, -(-width // unit) * unit, stop, unit)


def min_max_mean(ts: np.ndarray, values: np.ndarray, start: int, end: int, points: int) -> Buckets:
    """ts sorted int64 ns within [start, end); NaN values are ignored."""
    return min_max_mean_at(ts, values, start, bucket_width(start, end, points))


def min_max_mean_at(ts: np.ndarray, values: np.ndarray, origin: int, width: int) -> Buckets:
    """Buckets [origin + k*width, origin + (k+1)*width) over raw readings."""
    numbers = np.asarray(values, dtype=np.float64)
    keep = ~np.isnan(numbers)
    numbers = numbers[keep]
    ones = np.ones(len(numbers), np.int64)
    return combine(ts[keep], numbers, numbers, numbers, ones, origin, width)


def combine(
    t: np.ndarray,
    mins: np.ndarray,
    maxs: np.ndarray,
    sums: np.ndarray,
    counts: np.ndarray,
    origin: int,
    width: int,
) -> Buckets:
    """Merge partial aggregates (raw readings, or minute summaries starting at t) into buckets.
    min, max, sum and count merge exactly, so summaries and raw rows can be mixed freely."""
    if len(t) == 0:
        empty = np.zeros(0)
        return Buckets(np.zeros(0, np.int64), empty, empty, empty, np.zeros(0, np.int64), empty)
    index = (t - origin) // width
    if np.any(index[1:] < index[:-1]):
        order = np.argsort(index, kind="stable")
        index, mins, maxs, sums, counts = (a[order] for a in (index, mins, maxs, sums, counts))
    starts = np.flatnonzero(np.concatenate(([True], index[1:] != index[:-1])))
    count = np.add.reduceat(counts, starts)
    total = np.add.reduceat(sums, starts)
    return Buckets(
        t=origin + index[starts] * width,
        min=np.minimum.reduceat(mins, starts),
        max=np.maximum.reduceat(maxs, starts),
        mean=total / count,
        count=count,
        sum=total,
    )


def combine_many(
    t: np.ndarray,
    mins: np.ndarray,
    maxs: np.ndarray,
    sums: np.ndarray,
    counts: np.ndarray,
    lasts: np.ndarray,
    sizes: list[int],
    origin: int,
    width: int,
) -> list[Buckets]:
    """`combine` for many series at once on one grid: the columns hold the series one after
    the other (`sizes` readings or summaries each, sorted by t), `lasts` the value each row
    ends with, so each bucket gets its last value too. Why: a chart asks for 20-odd series,
    and per series the reductions cost more in numpy's per-call overhead than in arithmetic;
    here each reduction runs once over all of them. Each series' buckets are views into
    arrays shared by the call."""
    counts_of = np.array(sizes, np.int64)
    firsts = np.cumsum(counts_of) - counts_of  # where each series starts
    if len(t) == 0:
        empty = replace(combine(t, mins, maxs, sums, counts, origin, width), last=np.zeros(0))
        return [empty] * len(sizes)
    index = (t - origin) // width
    new = np.empty(len(t), bool)
    new[0] = True
    np.not_equal(index[1:], index[:-1], out=new[1:])
    new[firsts[counts_of > 0]] = True  # a series' first bucket, even on the previous one's index
    starts = np.flatnonzero(new)
    reduce = _by_bucket(starts, len(t))
    count = reduce(np.add, counts)
    total = reduce(np.add, sums)
    ends = np.append(starts[1:], len(t)) - 1
    joined = Buckets(
        t=origin + index[starts] * width,
        min=reduce(np.minimum, mins),
        max=reduce(np.maximum, maxs),
        mean=total / count,
        count=count,
        sum=total,
        last=lasts[ends],
    )
    cuts = np.searchsorted(starts, np.append(firsts, len(t))).tolist()
    return [_slice(joined, lo, hi) for lo, hi in pairwise(cuts)]


_SLICED_MAX = 8  # rows per bucket up to which the sliced reduction matches reduceat exactly


def _by_bucket(starts: np.ndarray, rows: int) -> Callable[[np.ufunc, np.ndarray], np.ndarray]:
    """A reduction of each bucket's rows, where `starts` are the buckets' first rows.
    reduceat loops bucket by bucket (~18 ns each, most of a chart's bucketing). When every
    bucket has the same few rows (a day of minutes at a steady rate: no gaps), bucket b's
    rows are column[b * size + j], so a few elementwise operations over strided slices do
    it at once. The order of operations is reduceat's own (the first row, plus the rest
    added in order: numpy's pairwise sum adds fewer than 8 elements one by one), so sums
    come out bit for bit the same."""
    size = rows // len(starts)
    if not (
        1 <= size <= _SLICED_MAX
        and size * len(starts) == rows
        and bool((np.diff(starts) == size).all())
    ):
        return lambda ufunc, column: ufunc.reduceat(column, starts)

    def sliced(ufunc: np.ufunc, column: np.ndarray) -> np.ndarray:
        out = column[0::size].copy()
        if size > 1:
            rest = column[1::size].copy()
            for j in range(2, size):
                ufunc(rest, column[j::size], out=rest)
            ufunc(out, rest, out=out)
        return out

    return sliced


def _slice(b: Buckets, lo: int, hi: int) -> Buckets:
    last = None if b.last is None else b.last[lo:hi]
    return Buckets(b.t[lo:hi], b.min[lo:hi], b.max[lo:hi], b.mean[lo:hi], b.count[lo:hi],
                   b.sum[lo:hi], last)  # fmt: skip


def minute_summary(hour: int, ts: np.ndarray, numbers: np.ndarray) -> np.ndarray:
    """Per minute of one hour that has numbers: (minute 0-59, min, max, sum, count) as float64
    rows. Stored with each block so a day's chart reads 1,440 rows, not 86,400 readings."""
    keep = ~np.isnan(numbers)
    ts, numbers = ts[keep], numbers[keep]
    if len(ts) == 0:
        return np.zeros((0, 5))
    b = combine(ts, numbers, numbers, numbers, np.ones(len(ts), np.int64), hour, MINUTE_NS)
    return np.column_stack([(b.t - hour) // MINUTE_NS, b.min, b.max, b.sum, b.count])


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
