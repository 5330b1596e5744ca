"""Decode many blocks at once: the same arrays as `codec.decode_block`, one numpy pass per step.

Why: a cold day of 23 series is ~550 blocks, and decoding them one by one spent most of its
time in ~20 small numpy calls per block (~150 ms). Here each block costs a msgpack decode, a
zstd call per column and one strided copy; unzigzag, the running sums and scaling then run
once over all blocks' readings. A running sum restarts at each block by subtracting the sum
up to the block's start (int64 sums wrap, so the difference is exact), and an XOR chain
restarts likewise by XORing the chain's value before the block.

The returned per-block arrays are views into arrays shared by the whole call.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from edge_node.store import codec
from edge_node.store.codec import Block, Values

Decoded = tuple[np.ndarray, Values, np.ndarray, list[tuple[int, str]]]
_BULK = ("i", "f")  # value kinds decoded here; bool and object blocks go one by one
# Readings per pass. Fewer, longer numpy calls: each call hands the GIL to the other
# thread and back, and with 32k-reading passes those hand-offs made a day's decode ~45%
# slower than 512k on two threads (256k to 1M measured alike).
_BATCH = 1 << 19
_WORKERS = min(2, os.cpu_count() or 1)
_POOL: tuple[int, ThreadPoolExecutor] | None = None  # (pid, pool)
_POOL_LOCK = threading.Lock()


def decode_blocks(blobs: Sequence[bytes]) -> list[Decoded]:
    """`codec.decode_block` of each blob, in the order given."""
    blocks = [codec.decode_header(blob) for blob in blobs]
    out: list[Decoded | None] = [None] * len(blocks)
    for kind in _BULK:
        mine = [i for i, b in enumerate(blocks) if b.kind == kind]
        if mine:
            for i, decoded in zip(mine, _numeric([blocks[i] for i in mine]), strict=True):
                out[i] = decoded
    return [codec.decode_block(blobs[i]) if d is None else d for i, d in enumerate(out)]


def _numeric(blocks: list[Block]) -> list[Decoded]:
    """Blocks of one numeric kind: "i" (decimal ints) or "f" (XORed float64 bits)."""
    ns = np.array([b.n for b in blocks], np.int64)
    starts = np.zeros(len(ns), np.int64)
    np.cumsum(ns[:-1], out=starts[1:])
    total = int(ns.sum())
    ts = np.empty(total, np.int64)
    values = np.empty(total, np.float64)
    t0 = np.array([b.t0 for b in blocks], np.int64)
    scale = np.array([10.0**b.decimals for b in blocks], np.float64)

    def batch(run: tuple[int, int]) -> None:
        first, last = run
        lo = int(starts[first])
        n, at = ns[first:last], starts[first:last] - lo
        hi = lo + int(n.sum())
        part = blocks[first:last]
        # ts: second differences; each block's t0 folds into the second restart
        deltas = _restart(np.cumsum(_ints([b.ts for b in part], n), dtype=np.int64), at, n)
        _restart(np.cumsum(deltas, out=ts[lo:hi]), at, n, t0[first:last])
        if blocks[0].kind == "i":
            ints = _restart(np.cumsum(_ints([b.vals for b in part], n), dtype=np.int64), at, n)
            div = scale[first:last]
            div = div[:1] if (div == div[0]).all() else np.repeat(div, n)
            np.divide(ints, div, out=values[lo:hi])
        else:
            words = _unshuffled([b.vals for b in part], n, wide=True)
            chain = np.bitwise_xor.accumulate(words, out=words)
            if len(at) > 1:
                before = np.zeros(len(at), np.uint64)
                before[1:] = chain[at[1:] - 1]
                chain ^= np.repeat(before, n)
            values[lo:hi] = chain.view(np.float64)

    def batches(runs: list[tuple[int, int]]) -> None:
        for run in runs:
            batch(run)

    # One consecutive share of the runs per thread, the caller's own first: handing the
    # pool one run at a time (pool.map) measured slower than a single thread.
    shares = _shares(_batches(ns.tolist()), starts, total, _WORKERS)
    helpers = [_pool().submit(batches, share) for share in shares[1:]]
    batches(shares[0])
    for helper in helpers:
        helper.result()
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


def _pool() -> ThreadPoolExecutor:
    """The process's decode threads; a forked child makes its own (its parent's threads
    do not exist in it, and work handed to them would never run)."""
    global _POOL
    with _POOL_LOCK:
        if _POOL is None or _POOL[0] != os.getpid():
            _POOL = (os.getpid(), ThreadPoolExecutor(_WORKERS, thread_name_prefix="decode"))
        return _POOL[1]


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


def _shares(
    runs: list[tuple[int, int]], starts: np.ndarray, total: int, parts: int
) -> list[list[tuple[int, int]]]:
    """`runs` (at least one) cut into at most `parts` consecutive shares of about equal
    readings, each run going by the readings before it (`starts` of its first block)."""
    out: list[list[tuple[int, int]]] = [[] for _ in range(min(parts, len(runs)))]
    for first, last in runs:
        out[int(starts[first]) * len(out) // max(total, 1)].append((first, last))
    return [share for share in out if share]


_UNSIGNED = {1: np.uint8, 2: np.uint16, 4: np.uint32, 8: np.uint64}


def _unshuffled(blobs: list[bytes], ns: np.ndarray, wide: bool = False) -> np.ndarray:
    """codec._unshuffle of each blob into one array of the widest blob's word size (uint64
    if `wide`): byte k of each word is copied plane by plane (a long strided loop each; one
    transposing copy per block measured twice as slow)."""
    widths = [blob[0] for blob in blobs]
    width = 8 if wide else max(widths)
    total = int(ns.sum())
    narrower = any(w < width for w in widths)
    raw = (np.zeros if narrower else np.empty)((total, width), np.uint8)
    lo = 0
    for blob, w, n in zip(blobs, widths, ns.tolist(), strict=True):
        data = np.frombuffer(codec.decompress(blob[1:]), np.uint8)
        for k in range(w):
            raw[lo : lo + n, k] = data[k * n : (k + 1) * n]
        lo += n
    return raw.view(_UNSIGNED[width]).reshape(total)


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
