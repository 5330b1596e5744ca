"""Pack one series' readings for one time block into a small compressed blob, losslessly.

Why this layout (measured against the alternatives, docs/benchmarks.md): per-series hourly
blocks of compressed columns answer a day of 23 series in tens of milliseconds and store
~2.5 bytes per reading, where a row per reading costs tens of bytes and seconds per query.

- Timestamps (int64 ns): delta-of-delta, zigzag, byte-shuffled, zstd. A steady poll rate makes
  the second differences tiny, so only the clock jitter costs bytes.
- Numbers: register values are usually decimals with few digits (23.4 = 234 / 10): when every
  value round-trips exactly through such an integer, the integers are delta-encoded; otherwise
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
    threads at once (API worker threads and the decode pool all read blocks)."""
    key = f"c{level}"
    found = getattr(_local, key, None)
    if found is None:
        found = zstandard.ZstdCompressor(level=level)
        setattr(_local, key, found)
    return found.compress(data)


def decompress(data: bytes) -> bytes:
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


_block_encoder = msgspec.msgpack.Encoder()
_block_decoder = msgspec.msgpack.Decoder(Block)


_WIDTHS: dict[int, np.dtype[np.unsignedinteger]] = {
    1: np.dtype("<u1"),
    2: np.dtype("<u2"),
    4: np.dtype("<u4"),
    8: np.dtype("<u8"),
}


def _shuffle(arr: np.ndarray) -> bytes:
    """Narrow uint64 words to the fewest bytes that hold them (1, 2, 4 or 8), then group byte
    k of every word together before zstd: the high bytes of small numbers become zero runs.
    Narrowing first halves the work of decoding a steady series' timestamps."""
    top = int(arr.max()) if len(arr) else 0
    width = next(w for w in (1, 2, 4, 8) if top < 1 << (8 * w))
    narrow = np.ascontiguousarray(arr, dtype=_WIDTHS[width])
    raw = narrow.view(np.uint8).reshape(len(arr), width)
    return bytes([width]) + compress(raw.T.tobytes())


def _unshuffle(blob: bytes, n: int) -> np.ndarray:
    """Inverse of _shuffle: always returns uint64. The bytes go straight into the low bytes
    of little-endian uint64 words: one strided copy, where transposing, viewing as the
    narrow type and widening took three (decoding is most of a cold query)."""
    width = blob[0]
    raw = np.frombuffer(decompress(blob[1:]), dtype=np.uint8)
    if width == 1:
        return raw.astype(np.uint64)
    out = np.zeros((n, 8), dtype=np.uint8)
    out[:, :width] = raw.reshape(width, n).T
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


def _encode_values(values: list[Any]) -> tuple[str, int, bytes, bytes]:
    kind = _numeric_kind(values)
    if kind == "o":
        return "o", 0, compress(msgspec.msgpack.encode(values)), b""
    nulls = np.fromiter((v is None for v in values), dtype=bool, count=len(values))
    if kind == "b":
        bits = np.fromiter((bool(v) for v in values), dtype=bool, count=len(values))
        return "b", 0, _pack_bits(bits), _pack_bits(nulls)  # b"": all False
    floats = np.array([0.0 if v is None else v for v in values], dtype=np.float64)
    found = _decimal_ints(floats)
    if found is not None:
        decimals, ints = found
        return "i", decimals, _encode_ints(ints, 1), _pack_bits(nulls)
    bits = floats.view(np.uint64)
    xored = bits ^ np.concatenate(([np.uint64(0)], bits[:-1]))
    return "f", 0, _shuffle(xored), _pack_bits(nulls)


def encode_block(
    ts: np.ndarray, values: list[Any], quality: np.ndarray, reasons: list[tuple[int, str]]
) -> bytes:
    """ts sorted int64 ns; values Python scalars (None allowed); quality uint8 codes."""
    n = len(values)
    if n == 0 or len(ts) != n or len(quality) != n:
        raise ValueError(f"block needs equal, non-empty columns (ts={len(ts)}, values={n})")
    kind, decimals, vals, nulls = _encode_values(values)
    block = Block(
        n=n,
        t0=int(ts[0]),
        ts=_encode_ints(ts.astype(np.int64) - np.int64(ts[0]), 2),
        kind=kind,
        decimals=decimals,
        vals=vals,
        nulls=nulls,
        quality=compress(quality.astype(np.uint8).tobytes()) if quality.any() else b"",
        reasons=reasons,
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
    ts = _decode_ints(block.ts, n, 2) + np.int64(block.t0)
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
            values = _decode_ints(block.vals, n, 1) / (10.0**block.decimals)
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
