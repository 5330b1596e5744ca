"""Decoding many blocks at once (store/bulk.py) gives exactly what decoding each one gives."""

from __future__ import annotations

from unittest import mock

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_node.store import bulk
from edge_node.store.codec import decode_block, encode_block

_steady = st.builds(  # 1 Hz with jitter: grid blocks (any sorted list: second differences)
    lambda t0, n, jitter: sorted(t0 + i * 10**9 + j for i, j in enumerate(jitter[:n])),
    st.integers(0, 2**61),
    st.integers(1, 200),
    st.lists(st.integers(-(10**6), 10**6), min_size=200, max_size=200),
)
_ts = st.one_of(_steady, st.lists(st.integers(0, 2**62), min_size=1, max_size=200).map(sorted))
_values = st.one_of(
    st.lists(st.decimals(-10_000, 10_000, places=2, allow_nan=False).map(float), max_size=200),
    st.lists(st.one_of(st.integers(-(2**40), 2**40), st.none()), max_size=200),
    st.lists(st.floats(allow_nan=False), max_size=200),  # "f": XORed bits
    st.lists(st.one_of(st.booleans(), st.none()), max_size=200),
    st.lists(st.one_of(st.text(max_size=5), st.floats(), st.none()), max_size=200),
)


@st.composite
def _block(draw: st.DrawFn) -> bytes:
    ts = draw(_ts)
    values = draw(_values.filter(lambda v: len(v) > 0))
    n = min(len(ts), len(values))
    bad = draw(st.booleans())
    quality = np.array([2 if bad and i % 3 == 0 else 0 for i in range(n)], np.uint8)
    reasons = [(i, "down") for i in range(n) if quality[i]]
    return encode_block(np.array(ts[:n], np.int64), values[:n], quality, reasons)


def _bits(values: object) -> object:
    """Float arrays compared bit for bit (NaN == NaN, -0.0 != 0.0), lists as they are."""
    if isinstance(values, np.ndarray):
        return (values.dtype, values.view(np.uint8).tolist())
    assert isinstance(values, list)
    return [repr(v) for v in values]


@settings(max_examples=150, deadline=None)
@given(st.lists(_block(), min_size=1, max_size=12), st.sampled_from([1, 150, 1 << 15]))
def test_bulk_decoding_equals_one_by_one(blobs: list[bytes], batch: int) -> None:
    """Also in small batches, so the running sums restart inside and across batches."""
    with mock.patch.object(bulk, "_BATCH", batch):
        got = bulk.decode_blocks(blobs)
    assert len(got) == len(blobs)
    for blob, (ts, values, quality, reasons) in zip(blobs, got, strict=True):
        want_ts, want_values, want_quality, want_reasons = decode_block(blob)
        assert ts.dtype == want_ts.dtype and ts.tolist() == want_ts.tolist()
        assert _bits(values) == _bits(want_values)
        assert quality.dtype == np.uint8 and quality.tolist() == want_quality.tolist()
        assert reasons == want_reasons


def test_a_day_of_mixed_blocks_decodes_as_one_by_one() -> None:
    """Hour blocks as compaction writes them: float bits, decimals of several scales, gaps
    (short blocks), None values and bad quality, decoded in batches and in one."""
    rng = np.random.default_rng(3)
    blobs = []
    for hour in range(24):
        n = 3600 if hour % 5 else int(rng.integers(1, 3600))
        ts = hour * 3600 * 10**9 + np.sort(rng.integers(0, 3600 * 10**9, n))
        raw = rng.normal(60, 5, n)
        values: list[float | None] = [float(x) for x in np.round(raw, hour % 4)]
        if hour % 3 == 0:
            values = [float(x) for x in raw]
        if hour % 7 == 1:
            values[0] = None
        quality = (rng.random(n) < 0.01).astype(np.uint8) * 2 if hour % 2 else np.zeros(n, np.uint8)
        blobs.append(
            encode_block(ts, values, quality, [(int(i), "x") for i in np.flatnonzero(quality)])
        )
    for batch in (1000, 3600, 10_000, 1 << 15):
        with mock.patch.object(bulk, "_BATCH", batch):
            got = bulk.decode_blocks(blobs)
        for blob, (ts, got_values, quality, reasons) in zip(blobs, got, strict=True):
            want_ts, want_values, want_quality, want_reasons = decode_block(blob)
            assert np.array_equal(ts, want_ts), batch
            assert _bits(got_values) == _bits(want_values), batch
            assert np.array_equal(quality, want_quality) and reasons == want_reasons
