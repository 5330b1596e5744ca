"""Decode many blocks at once: the same arrays as `codec.decode_block`, in few numpy calls.

Why: a cold day of 23 series is ~550 blocks, and decoding them one by one spent most of its
time in ~20 small numpy calls per block (~150 ms). Here each block costs a msgpack decode, a
zstd call or a copy per byte plane, and a few calls on its own readings while they are in the
CPU cache; unzigzagging runs once over all blocks' readings at the deltas' own width.

Blocks written before timestamps were stored on a grid (second differences) take two running
sums over all blocks' readings, each made to restart at every block by subtracting the sum up
to the block's start (int64 sums wrap, so the difference is exact); an XOR chain of float bits
restarts likewise by XORing the chain's value before the block.

One thread: the block-by-block steps hold the GIL between numpy calls, and a second decode
thread measured 8 ms slower on a day (two CPUs). The returned per-block arrays are views into
arrays shared by the whole call.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

import numpy as np

from edge_node.store import codec
from edge_node.store.codec import Block, Values

Decoded = tuple[np.ndarray, Values, np.ndarray, list[tuple[int, str]]]
_BULK = ("i", "f")  # value kinds decoded here; bool and object blocks go one by one
_BATCH = 1 << 19  # readings per pass: bounds the temporary arrays (~4 MB each)


def decode_blocks(blobs: Sequence[bytes]) -> list[Decoded]:
    """`codec.decode_block` of each blob, in the order given."""
    blocks = [codec.decode_header(blob) for blob in blobs]
    out: list[Decoded | None] = [None] * len(blocks)
    for kind in _BULK:
        for grid in (True, False):  # timestamp layouts (codec._encode_ts)
            mine = [i for i, b in enumerate(blocks) if b.kind == kind and grid != (b.step is None)]
            if mine:
                for i, decoded in zip(mine, _numeric([blocks[i] for i in mine]), strict=True):
                    out[i] = decoded
    return [codec.decode_block(blobs[i]) if d is None else d for i, d in enumerate(out)]


def _numeric(blocks: list[Block]) -> list[Decoded]:
    """Blocks of one numeric kind, "i" (decimal ints) or "f" (XORed float64 bits), and one
    timestamp layout: offsets from a grid, or second differences."""
    ns = np.array([b.n for b in blocks], np.int64)
    starts = np.zeros(len(ns), np.int64)
    np.cumsum(ns[:-1], out=starts[1:])
    total = int(ns.sum())
    grid = blocks[0].step is not None
    ts = (np.zeros if grid else np.empty)(total, np.int64)  # grid offsets fill low bytes
    values = np.empty(total, np.float64)
    t0 = np.array([b.t0 for b in blocks], np.int64)

    def batch(run: tuple[int, int]) -> None:
        first, last = run
        lo = int(starts[first])
        n, at = ns[first:last], starts[first:last] - lo
        hi = lo + int(n.sum())
        part = blocks[first:last]
        if grid:
            _grid_times(part, n, ts[lo:hi])
        else:  # second differences; each block's t0 folds into the second restart
            deltas = _restart(np.cumsum(_ints([b.ts for b in part], n), dtype=np.int64), at, n)
            _restart(np.cumsum(deltas, out=ts[lo:hi]), at, n, t0[first:last])
        if blocks[0].kind == "i":
            _decimals(part, n, values[lo:hi])
        else:
            words = _unshuffled([b.vals for b in part], n, wide=True)
            chain = np.bitwise_xor.accumulate(words, out=words)
            if len(at) > 1:
                before = np.zeros(len(at), np.uint64)
                before[1:] = chain[at[1:] - 1]
                chain ^= np.repeat(before, n)
            values[lo:hi] = chain.view(np.float64)

    for run in _batches(ns.tolist()):
        batch(run)
    quality = np.zeros(total, np.uint8)
    out: list[Decoded] = []
    for b, lo, n in zip(blocks, starts.tolist(), ns.tolist(), strict=True):
        hi = lo + n
        if b.nulls:
            values[lo:hi][codec._unpack_bits(b.nulls, n)] = np.nan
        if b.quality:
            quality[lo:hi] = np.frombuffer(codec.decompress(b.quality), np.uint8)
        out.append((ts[lo:hi], values[lo:hi], quality[lo:hi], list(b.reasons)))
    return out


def _grid_times(blocks: list[Block], ns: np.ndarray, out: np.ndarray) -> None:
    """Timestamps of grid blocks into `out` (int64, zeroed), block by block while its words
    are in the CPU cache: the unsigned offsets' byte planes into the low bytes of its words,
    then its grid, t0 + origin + i * step, added."""
    words = out.view(np.uint8).reshape(len(out), 8)
    counts = np.arange(int(ns.max()), dtype=np.int64)
    line = np.empty(len(counts), np.int64)
    lo = 0
    for b, n in zip(blocks, ns.tolist(), strict=True):
        for k, plane in enumerate(codec.planes(b.ts, n)):
            words[lo : lo + n, k] = np.frombuffer(plane, np.uint8)
        np.multiply(counts[:n], cast(int, b.step), out=line[:n])  # grid blocks only
        line[:n] += b.t0 + b.origin
        out[lo : lo + n] += line[:n]
        lo += n


def _decimals(blocks: list[Block], ns: np.ndarray, out: np.ndarray) -> None:
    """Values of decimal blocks into `out`: the deltas unzigzagged at their own width for all
    blocks at once, then block by block, in the CPU cache, summed from the block's base and
    scaled (measured 9.6 against 13.5 ms a day for one running sum over all blocks and a
    restart pass)."""
    deltas = _ints([b.vals for b in blocks], ns)
    line = np.empty(int(ns.max()), np.int64)
    lo = 0
    for b, n in zip(blocks, ns.tolist(), strict=True):
        np.cumsum(deltas[lo : lo + n], dtype=np.int64, out=line[:n])
        line[:n] += b.base
        np.divide(line[:n], 10.0**b.decimals, out=out[lo : lo + n])
        lo += n


def _batches(ns: list[int]) -> list[tuple[int, int]]:
    """Runs of consecutive blocks of about _BATCH readings (a larger block is a run alone)."""
    out = []
    first, count = 0, 0
    for i, n in enumerate(ns):
        if count and count + n > _BATCH:
            out.append((first, i))
            first, count = i, 0
        count += n
    out.append((first, len(ns)))
    return out


_UNSIGNED = {1: np.uint8, 2: np.uint16, 4: np.uint32, 8: np.uint64}


def _unshuffled(blobs: list[bytes], ns: np.ndarray, wide: bool = False) -> np.ndarray:
    """codec._unshuffle of each blob into one array of the widest blob's word size (uint64
    if `wide`): byte k of each word is copied plane by plane (a long strided loop each; one
    transposing copy per block measured twice as slow)."""
    widths = [codec.plane_count(blob) for blob in blobs]
    width = 8 if wide else next(w for w in _UNSIGNED if w >= max(widths))
    total = int(ns.sum())
    narrower = any(w < width for w in widths)
    raw = (np.zeros if narrower else np.empty)((total, width), np.uint8)
    _planes(blobs, ns, raw)
    return raw.view(_UNSIGNED[width]).reshape(total)


def _planes(blobs: list[bytes], ns: np.ndarray, raw: np.ndarray) -> None:
    """Each blob's byte planes into the low columns of its rows of `raw` (uint8, one row per
    word): a long strided copy per plane."""
    lo = 0
    for blob, n in zip(blobs, ns.tolist(), strict=True):
        for k, plane in enumerate(codec.planes(blob, n)):
            raw[lo : lo + n, k] = np.frombuffer(plane, np.uint8)
        lo += n


def _ints(blobs: list[bytes], ns: np.ndarray) -> np.ndarray:
    return _unzigzag(_unshuffled(blobs, ns))


def _unzigzag(words: np.ndarray) -> np.ndarray:
    """codec._unzigzag in place, at the words' own width: a zigzagged value that fits in W
    bytes is a W-byte signed value, widened exactly by the running sum that follows."""
    signed = words.view(words.dtype.str.replace("u", "i"))
    sign = words & 1
    words >>= 1
    signed ^= np.negative(sign.view(signed.dtype))
    return signed


def _restart(
    sums: np.ndarray, at: np.ndarray, ns: np.ndarray, start: np.ndarray | None = None
) -> np.ndarray:
    """Running sums made to restart at each block (at[0] is 0): each block's part minus the
    sum before it (plus `start` of the block when given), in place. int64 sums wrap, so the
    difference is exact."""
    before = np.zeros(len(at), np.int64)
    before[1:] = sums[at[1:] - 1]
    if start is not None:
        before -= start
    if before.any():
        sums -= np.repeat(before, ns)
    return sums
