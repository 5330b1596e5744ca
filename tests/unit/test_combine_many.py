"""Buckets of many series reduced at once equal each series reduced on its own."""

from __future__ import annotations

import numpy as np
from hypothesis import example, given, settings
from hypothesis import strategies as st

from edge_node.store.downsample import combine, combine_many

MINUTE = 60_000_000_000

# One series: sorted minute offsets (duplicates allowed: a late row merged into a minute).
series = st.lists(st.integers(0, 90), max_size=40).map(sorted)


def parts_of(minutes: list[int], seed: int) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    n = len(minutes)
    t = np.array(minutes, np.int64) * MINUTE
    lo = rng.normal(20, 5, n)
    hi = lo + rng.random(n)
    counts = rng.integers(1, 61, n).astype(np.int64)
    return t, lo, hi, (lo + hi) / 2 * counts, counts, rng.normal(20, 5, n)


@settings(max_examples=200, deadline=None)
@given(st.lists(series, min_size=1, max_size=6), st.integers(1, 7), st.integers(0, 30))
@example([[0, 1], [], [1, 2]], 2, 0)  # an empty series between two on the same bucket index
@example([[], []], 3, 0)  # nothing at all
@example([list(range(60)), list(range(60))], 3, 0)  # no gaps: three rows in every bucket
@example([list(range(60)), list(range(1, 61))], 3, 0)  # no gaps, but a series starts mid-bucket
@example([list(range(56)), list(range(56))], 7, 30)  # seven and eight rows a bucket: sums in
@example([list(range(64)), list(range(64))], 8, 30)  # the order reduceat adds them, bit for bit
@example([list(range(63))], 9, 30)  # nine: reduceat itself
def test_combine_many_equals_combine_per_series(
    minutes: list[list[int]], width_minutes: int, origin_minutes: int
) -> None:
    origin = origin_minutes * MINUTE - 30 * MINUTE
    width = width_minutes * MINUTE
    parts = [parts_of(m, seed) for seed, m in enumerate(minutes)]
    columns = [np.concatenate([part[i] for part in parts]) for i in range(6)]
    joined = combine_many(*columns, [len(m) for m in minutes], origin, width)
    assert len(joined) == len(parts)
    for part, got in zip(parts, joined, strict=True):
        want = combine(*part[:5], origin, width)
        assert got.t.tolist() == want.t.tolist()
        assert got.min.tolist() == want.min.tolist()
        assert got.max.tolist() == want.max.tolist()
        assert got.count.tolist() == want.count.tolist()
        assert got.sum.tolist() == want.sum.tolist()  # same rows summed in the same order
        assert got.mean.tolist() == want.mean.tolist()
        index = (part[0] - origin) // width
        ends = np.flatnonzero(np.append(index[1:] != index[:-1], len(index) > 0))
        assert got.last is not None and got.last.tolist() == part[5][ends].tolist()
