"""Block codec and sequence interval set: property-based round trips against simple models."""

from __future__ import annotations

import itertools
import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_node.store.codec import decode_block, encode_block
from edge_node.store.intervals import IntervalSet

_ts = st.lists(st.integers(0, 2**62), min_size=1, max_size=300).map(sorted)
_numbers = st.one_of(
    st.floats(allow_nan=False, allow_infinity=True),
    st.integers(-(2**40), 2**40),
    st.decimals(-10_000, 10_000, places=2, allow_nan=False).map(float),
    st.none(),
)
_values = st.one_of(
    st.lists(_numbers, max_size=300),
    st.lists(st.booleans(), max_size=300),
    st.lists(st.one_of(st.booleans(), st.none()), max_size=300),
    st.lists(st.text(max_size=12), max_size=300),
    st.lists(st.one_of(st.text(max_size=5), st.booleans(), st.floats(), st.none()), max_size=300),
)


def _same(expected: object, got: object) -> bool:
    if expected is None:
        return got is None or (isinstance(got, float) and math.isnan(got))
    if isinstance(expected, float) and math.isnan(expected):
        return isinstance(got, float) and math.isnan(got)
    return expected == got and isinstance(got, bool) == isinstance(expected, bool)


@settings(max_examples=200, deadline=None)
@given(data=st.data(), ts=_ts)
def test_block_round_trip_is_lossless(data: st.DataObject, ts: list[int]) -> None:
    values = data.draw(_values.filter(lambda v: len(v) > 0))
    n = min(len(ts), len(values))
    ts, values = ts[:n], values[:n]
    quality = np.array(data.draw(st.lists(st.integers(0, 2), min_size=n, max_size=n)), np.uint8)
    reasons = [(i, f"r{i}") for i in range(n) if quality[i]]
    got_ts, got_values, got_quality, got_reasons = decode_block(
        encode_block(np.array(ts, np.int64), values, quality, reasons)
    )
    assert got_ts.tolist() == ts
    listed = got_values.tolist() if isinstance(got_values, np.ndarray) else got_values
    assert all(_same(e, g) for e, g in zip(values, listed, strict=True)), (values, listed)
    assert got_quality.tolist() == quality.tolist()
    assert got_reasons == reasons


def test_steady_one_hertz_decimals_pack_small() -> None:
    rng = np.random.default_rng(7)
    ts = 1_764_000_000 * 10**9 + np.arange(3600, dtype=np.int64) * 10**9
    ts += rng.integers(-200_000, 200_000, 3600)  # 0.2 ms of poll jitter
    values = [round(60 + float(x), 1) for x in np.cumsum(rng.normal(0, 0.05, 3600))]
    blob = encode_block(np.sort(ts), values, np.zeros(3600, np.uint8), [])
    assert len(blob) / 3600 < 4.0


_ops = st.lists(st.tuples(st.integers(0, 200), st.integers(0, 20)), max_size=40)


@given(_ops, st.integers(0, 220), st.integers(0, 30))
def test_interval_set_matches_a_plain_set(ops: list[tuple[int, int]], lo: int, span: int) -> None:
    model: set[int] = set()
    intervals = IntervalSet()
    for start, length in ops:
        intervals.add(start, start + length)
        model.update(range(start, start + length + 1))
    ranges = intervals.ranges()
    assert {s for a, b in ranges for s in range(a, b + 1)} == model
    assert all(b + 1 < c for (_, b), (c, _) in itertools.pairwise(ranges))
    missing = {s for a, b in intervals.missing(lo, lo + span) for s in range(a, b + 1)}
    assert missing == set(range(lo, lo + span + 1)) - model
