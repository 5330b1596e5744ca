"""Block codec and sequence interval set: property-based round trips against simple models."""

from __future__ import annotations

import itertools
import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_node.store import bulk, codec
from edge_node.store.codec import decode_block, decode_header, encode_block
from edge_node.store.intervals import IntervalSet

_steady = st.builds(  # a poll on schedule with jitter, maybe a gap: the grid layout's case
    lambda t0, period, jitter, gap_at, gap: sorted(
        t0 + i * period + j + (gap if i >= gap_at else 0) for i, j in enumerate(jitter)
    ),
    st.integers(0, 2**61),
    st.integers(1, 10**10),
    st.lists(st.integers(-(10**6), 10**6), min_size=1, max_size=300),
    st.integers(0, 300),
    st.integers(0, 10**13),
)
_ts = st.one_of(_steady, st.lists(st.integers(0, 2**62), min_size=1, max_size=300).map(sorted))
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


def _jittery_second(n: int, seed: int = 5) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return 1_764_000_000 * 10**9 + np.arange(n) * 10**9 + rng.integers(-300_000, 300_000, n)


def test_a_steady_poll_is_stored_as_offsets_from_its_grid() -> None:
    """One reading a second with 0.3 ms of jitter: the offsets from t0 + i * step need three
    bytes, the level of the values none, and the two noise planes are stored raw."""
    ts = _jittery_second(3600)
    values = [round(400 + 0.01 * i + (i % 7) * 0.03, 2) for i in range(3600)]
    blob = encode_block(ts, values, np.zeros(3600, np.uint8), [])
    header = decode_header(blob)
    assert header.step is not None and abs(header.step - 10**9) < 10**6
    assert header.base == 40000 and codec.plane_count(header.vals) == 1
    assert codec.plane_count(header.ts) == 3
    sizes = np.frombuffer(header.ts, "<u4", 3, 1).tolist()
    assert sizes[:2] == [3600, 3600] and sizes[2] < 3600 // 2, sizes
    got_ts, got_values, _, _ = decode_block(blob)
    assert got_ts.tolist() == ts.tolist() and got_values.tolist() == values


def test_a_gap_keeps_second_differences() -> None:
    """After a 20-minute gap the grid's offsets climb for the rest of the hour; second
    differences hold the gap in one reading."""
    ts = _jittery_second(3600)
    ts[1800:] += 1200 * 10**9
    blob = encode_block(ts, [1.0] * 3600, np.zeros(3600, np.uint8), [])
    assert decode_header(blob).step is None
    assert decode_block(blob)[0].tolist() == ts.tolist()


# Blocks as the previous layout (schema 3) wrote them: timestamps as second differences,
# a decimal block's first delta its first value, each column's planes in one zstd frame.
# Stores keep them until retention drops them, so they must read back unchanged.
_SCHEMA_3_BLOCKS = [
    (
        "9908cf187afca767ca0000c42a0428b52ffd202001010000f087aecc49808200940406428c460000350000"
        "000000000077000000000000a16902c41a0228b52ffd201081000052040b125b6000051200000012120000"
        "c40a28b52ffd200109000008c41128b52ffd20084100000000000002000000919204a774696d656f7574",
        [
            1764000000000000000, 1764000001000000120, 1764000001999999660, 1764000003000000055,
            1764000004000009000, 1764000004999999988, 1764000006000000000, 1764000007000000077,
        ],
        [23.45, 23.47, 23.41, 23.5, None, 23.52, 23.52, 23.49],
        [0, 0, 0, 0, 2, 0, 0, 0],
        [(4, "timeout")],
    ),
    (
        "990605c4350828b52ffd20305d010004020018cee3f40a0000060618c7000000004af8a9f6d1590117000700"
        "000000000004040100030cb09430a16600c43a0828b52ffd20308101009a4dc659105899ca7e82983799a578"
        "f8bc00997fb2ce9a00994f2d09f20099853df6d700b971c1535a003fff807e3e80c400c40090",
        [5, 17, 900, 901, 10**12, 10**15],
        [0.1, -12345.678901234567, 3.14159265358979, 2.5e-08, 7e-320, -0.0],
        [0] * 6,
        [],
    ),
    (
        "9905cf187afca767ca0000c41e0428b52ffd2014a10000000000000000ca000000009a000000003b000000a1"
        "6900c4270828b52ffd2028ed0000a87f0296e8ff380038ffff010001ffff0000000103000200b832602b61c4"
        "00c40090",
        [1764000000000000000 + i * 500_000_000 for i in range(5)],
        [-40000.0, -39999.0, 12.0, 2.0**40, -(2.0**40)],
        [0] * 5,
        [],
    ),
]  # fmt: skip


def test_blocks_of_the_previous_layout_read_back_unchanged() -> None:
    """One by one, and decoded together with blocks of the current layout."""
    old = [bytes.fromhex(hex_blob) for hex_blob, *_ in _SCHEMA_3_BLOCKS]
    new = [
        encode_block(np.array(ts, np.int64), values, np.array(quality, np.uint8), reasons)
        for _, ts, values, quality, reasons in _SCHEMA_3_BLOCKS
    ]
    together = bulk.decode_blocks([*old, *new])
    for i, (_, ts, values, quality, reasons) in enumerate(_SCHEMA_3_BLOCKS):
        want = np.array([math.nan if v is None else v for v in values], np.float64)
        for got in (decode_block(old[i]), together[i], together[i + len(old)]):
            assert got[0].tolist() == ts
            assert got[1].tobytes() == want.tobytes()  # bit for bit: NaN, -0.0, subnormals
            assert got[2].tolist() == quality and got[3] == reasons


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
