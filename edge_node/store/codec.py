"""Pack one series' readings for one time block into a small compressed blob, losslessly.

Why this layout (measured against the alternatives, docs/benchmarks.md): per-series hourly
blocks of compressed columns answer a day of 23 series in tens of milliseconds and store
~2.5 bytes per reading, where a row per reading costs tens of bytes and seconds per query.

- Timestamps (int64 ns): a steady poll puts them on a grid, t0 + i * step, off by the clock's
  jitter: stored as that offset (its smallest value subtracted, so it is unsigned), unless
  second differences store in an eighth less (a gap in the block). Byte-shuffled, zstd. A
  grid block decodes in two additions, where second differences need two running sums.
- Numbers: register values are usually decimals with few digits (23.4 = 234 / 10): when every
  value round-trips exactly through such an integer, the integers are delta-encoded from the
  first, which is kept apart (so the deltas, not the level, set the byte width); otherwise
  the float64 bits are XORed with the previous value (Gorilla-style) and byte-shuffled.
- Booleans: one bit each. Strings (product ids, events) and mixed blocks: msgpack list.
- Quality codes and reasons are stored only when some reading is not good.
"""

from __future__ import annotations

import threading
from typing import Any

import msgspec
import numpy as np
import zstandard

Values = np.ndarray | list[Any]

_ZSTD_LEVEL = 3
_MAX_DECIMALS = 6
_EXACT_INT = 2**52
_local = threading.local()


def compress(data: bytes, level: int = _ZSTD_LEVEL) -> bytes:
    """zstd with a per-thread compressor: zstandard's objects must not be used by two
    threads at once (the API's worker threads all read blocks)."""
    key = f"c{level}"
    found = getattr(_local, key, None)
    if found is None:
        found = zstandard.ZstdCompressor(level=level)
        setattr(_local, key, found)
    return found.compress(data)


def decompress(data: bytes | memoryview) -> bytes:
    found = getattr(_local, "d", None)
    if found is None:
        found = _local.d = zstandard.ZstdDecompressor()
    return found.decompress(data)


class Block(msgspec.Struct, array_like=True, gc=False):
    """What is stored in blocks.data; array_like keeps field names out of every blob.
    gc=False: it holds no cycles, and a cold query decodes hundreds at once (the cyclic
    collector then ran several times per query)."""

    n: int
    t0: int
    ts: bytes
    kind: str  # "i": decimal ints, "f": float64 xor, "b": bool bits, "o": msgpack objects
    decimals: int
    vals: bytes
    nulls: bytes = b""  # packed bits: value was None (numeric kinds only)
    quality: bytes = b""  # uint8 codes, only when some reading is not good
    reasons: list[tuple[int, str]] = []
    # Written since schema 4; a block without them decodes as before (base 0, whose first
    # delta is the first value, and timestamps as second differences).
    base: int = 0  # "i": the first decimal integer, the deltas' start
    step: int | None = None  # grid timestamps: t0 + origin + i * step + the stored offset
    origin: int = 0


_block_encoder = msgspec.msgpack.Encoder()
_block_decoder = msgspec.msgpack.Decoder(Block)


def _width(top: int) -> int:
    """The fewest bytes (1 to 8) that hold unsigned values up to `top`."""
    return max(1, (top.bit_length() + 7) // 8)


def _shuffle(arr: np.ndarray) -> bytes:
    """Keep the fewest low bytes that hold every uint64 word (1 to 8) and group byte k of every
    word together: the high bytes of small numbers become zero runs. Every byte dropped is a
    plane less to decode.

    Each plane is compressed on its own and kept raw unless zstd saves an eighth of it: the
    low bytes of jittery timestamps are noise that zstd cannot shrink, and in one frame with
    the planes it can, it still Huffman-decodes them (a day's timestamp columns measured
    10-12 ms as one frame, 8-9 ms apart). Layout: the width with _APART set, a uint32 size
    per plane (n: raw), then the planes."""
    n = len(arr)
    width = _width(int(arr.max()) if n else 0)
    words = np.ascontiguousarray(arr, dtype="<u8").view(np.uint8).reshape(n, 8)
    planes = [words[:, k].tobytes() for k in range(width)]
    stored = [_smaller(plane) for plane in planes]
    sizes = np.array([len(s) for s in stored], "<u4").tobytes()
    return bytes([width | _APART]) + sizes + b"".join(stored)


_APART = 0x80  # the width byte's flag: planes stored one by one (older blobs: one zstd frame)


def _smaller(plane: bytes) -> bytes:
    packed = compress(plane)
    return packed if len(packed) <= len(plane) - len(plane) // 8 - 1 else plane


def plane_count(blob: bytes) -> int:
    """The byte width of a _shuffle blob's words."""
    return blob[0] & ~_APART


def planes(blob: bytes, n: int) -> list[bytes | memoryview]:
    """The byte planes of a _shuffle blob of n words, lowest byte first: views of the blob
    or of its one decompressed frame (no copy), a compressed plane decompressed."""
    width = plane_count(blob)
    if not blob[0] & _APART:
        data = memoryview(decompress(blob[1:]))
        return [data[k * n : (k + 1) * n] for k in range(width)]
    sizes = np.frombuffer(blob, "<u4", width, 1).tolist()
    view = memoryview(blob)
    out: list[bytes | memoryview] = []
    at = 1 + 4 * width
    for size in sizes:
        part = view[at : at + size]
        out.append(part if size == n else decompress(part))
        at += size
    return out


def _unshuffle(blob: bytes, n: int) -> np.ndarray:
    """Inverse of _shuffle: always returns uint64, each plane copied into the low bytes of
    little-endian words."""
    out = np.zeros((n, 8), dtype=np.uint8)
    for k, plane in enumerate(planes(blob, n)):
        out[:, k] = np.frombuffer(plane, np.uint8)
    return out.view("<u8").reshape(n)


def _zigzag(arr: np.ndarray) -> np.ndarray:
    return ((arr << 1) ^ (arr >> 63)).view(np.uint64)


def _unzigzag(arr: np.ndarray) -> np.ndarray:
    signed = arr.view(np.int64)
    return (arr >> np.uint64(1)).view(np.int64) ^ -(signed & 1)


def _encode_ints(arr: np.ndarray, order: int) -> bytes:
    """Differences of order 1 or 2, zigzagged so small negatives stay small."""
    diffs = np.diff(arr, n=order, prepend=np.zeros(order, dtype=np.int64))
    return _shuffle(_zigzag(diffs))


def _decode_ints(blob: bytes, n: int, order: int) -> np.ndarray:
    out = _unzigzag(_unshuffle(blob, n))
    for _ in range(order):
        out = np.cumsum(out, dtype=np.int64)
    return out


def _encode_ts(ts: np.ndarray) -> tuple[bytes, int | None, int]:
    """(blob, step, origin): offsets from the grid unless second differences store in an
    eighth less (a gap or a drifting clock: the offsets then climb for the rest of the block),
    else second differences and step None."""
    rel = ts.astype(np.int64) - np.int64(ts[0])
    dod = _shuffle(_zigzag(np.diff(rel, n=2, prepend=np.zeros(2, dtype=np.int64))))
    if len(rel) < 2:
        return dod, None, 0
    step = int(rel[-1]) // (len(rel) - 1)  # i * step <= rel[-1]: no overflow below
    offsets = rel - np.arange(len(rel), dtype=np.int64) * np.int64(step)
    origin = int(offsets.min())
    offsets -= np.int64(origin)
    grid = _shuffle(offsets.view(np.uint64))
    if len(grid) > len(dod) + len(dod) // 8:
        return dod, None, 0
    return grid, step, origin


def _decode_ts(block: Block) -> np.ndarray:
    if block.step is None:
        return _decode_ints(block.ts, block.n, 2) + np.int64(block.t0)
    grid = np.arange(block.n, dtype=np.int64) * np.int64(block.step)
    grid += np.int64(block.t0 + block.origin)
    return grid + _unshuffle(block.ts, block.n).view(np.int64)


def _decimal_ints(values: np.ndarray) -> tuple[int, np.ndarray] | None:
    for decimals in range(_MAX_DECIMALS + 1):
        scale = 10.0**decimals
        ints = np.round(values * scale)
        if np.all(np.abs(ints) < _EXACT_INT) and np.array_equal(ints / scale, values):
            return decimals, ints.astype(np.int64)
    return None


def _pack_bits(mask: np.ndarray) -> bytes:
    return compress(np.packbits(mask).tobytes()) if mask.any() else b""


def _unpack_bits(blob: bytes, n: int) -> np.ndarray:
    if not blob:
        return np.zeros(n, dtype=bool)
    return np.unpackbits(np.frombuffer(decompress(blob), np.uint8))[:n].astype(bool)


def _numeric_kind(values: list[Any]) -> str:
    kinds = {type(v) for v in values if v is not None}
    if kinds <= {bool}:
        return "b" if kinds else "i"
    if kinds <= {int, float} and all(v is None or abs(v) < _EXACT_INT for v in values):
        return "i"  # refined to "f" below when the values are not short decimals
    return "o"


def _encode_values(values: list[Any]) -> tuple[str, int, bytes, bytes, int]:
    """(kind, decimals, values blob, nulls blob, base)."""
    kind = _numeric_kind(values)
    if kind == "o":
        return "o", 0, compress(msgspec.msgpack.encode(values)), b"", 0
    nulls = np.fromiter((v is None for v in values), dtype=bool, count=len(values))
    if kind == "b":
        bits = np.fromiter((bool(v) for v in values), dtype=bool, count=len(values))
        return "b", 0, _pack_bits(bits), _pack_bits(nulls), 0  # b"": all False
    floats = np.array([0.0 if v is None else v for v in values], dtype=np.float64)
    found = _decimal_ints(floats)
    if found is not None:
        decimals, ints = found
        deltas = np.diff(ints, prepend=ints[:1])
        return "i", decimals, _shuffle(_zigzag(deltas)), _pack_bits(nulls), int(ints[0])
    bits = floats.view(np.uint64)
    xored = bits ^ np.concatenate(([np.uint64(0)], bits[:-1]))
    return "f", 0, _shuffle(xored), _pack_bits(nulls), 0


def encode_block(
    ts: np.ndarray, values: list[Any], quality: np.ndarray, reasons: list[tuple[int, str]]
) -> bytes:
    """ts sorted int64 ns; values Python scalars (None allowed); quality uint8 codes."""
    n = len(values)
    if n == 0 or len(ts) != n or len(quality) != n:
        raise ValueError(f"block needs equal, non-empty columns (ts={len(ts)}, values={n})")
    kind, decimals, vals, nulls, base = _encode_values(values)
    ts_blob, step, origin = _encode_ts(ts)
    block = Block(
        n=n,
        t0=int(ts[0]),
        ts=ts_blob,
        kind=kind,
        decimals=decimals,
        vals=vals,
        nulls=nulls,
        quality=compress(quality.astype(np.uint8).tobytes()) if quality.any() else b"",
        reasons=reasons,
        base=base,
        step=step,
        origin=origin,
    )
    return _block_encoder.encode(block)


def decode_header(blob: bytes) -> Block:
    """The block's fields, its columns still encoded (bulk.py decodes many at once)."""
    return _block_decoder.decode(blob)


def decode_block(blob: bytes) -> tuple[np.ndarray, Values, np.ndarray, list[tuple[int, str]]]:
    """Inverse of encode_block. Numbers come back as float64 (NaN where None), booleans as a
    bool array, strings and mixed blocks as a list."""
    block = _block_decoder.decode(blob)
    n = block.n
    ts = _decode_ts(block)
    values: Values
    if block.kind == "o":
        values = msgspec.msgpack.decode(decompress(block.vals))
    elif block.kind == "b":
        values = _unpack_bits(block.vals, n)
        if block.nulls:  # a bool array cannot hold None
            values = [
                None if null else bool(v)
                for v, null in zip(values, _unpack_bits(block.nulls, n), strict=True)
            ]
    else:
        if block.kind == "i":
            ints = _decode_ints(block.vals, n, 1) + np.int64(block.base)
            values = ints / (10.0**block.decimals)
        else:
            values = _unxor(block.vals, n)
        nulls = _unpack_bits(block.nulls, n)
        if nulls.any():
            values[nulls] = np.nan
    quality = (
        np.frombuffer(decompress(block.quality), np.uint8).copy()
        if block.quality
        else np.zeros(n, dtype=np.uint8)
    )
    return ts, values, quality, list(block.reasons)


def _unxor(blob: bytes, n: int) -> np.ndarray:
    xored = _unshuffle(blob, n)
    return np.bitwise_xor.accumulate(xored).view(np.float64)


def pack_minutes(rows: np.ndarray) -> bytes:
    """A block's minute summary, (k, 5) float64, column by column (each column compresses on
    its own: minute numbers and counts are near-constant runs)."""
    return compress(np.ascontiguousarray(rows.T).tobytes())


def unpack_minutes(blob: bytes) -> np.ndarray:
    columns = np.frombuffer(decompress(blob), np.float64)
    return columns.reshape(5, -1).T
