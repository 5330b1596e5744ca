"""The edge side of the query benchmarks: the line-day, and the edge store as a live line
leaves it, plus evicting the store file from the page cache for cold runs."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from line_data import DEVICE, GATEWAY, SECOND, batches, columns, tag_names
from rich.console import Console
from rich.progress import Progress

from edge_node.store import Store, series_name
from edge_node.store.model import HOUR_NS


def line_day(hours: int) -> tuple[int, np.ndarray, np.ndarray, dict[int, str]]:
    """(t0, ts, values, {parameter id: series name}); ts in whole microseconds."""
    t0 = 1_764_000_000 * SECOND - (1_764_000_000 * SECOND) % (24 * HOUR_NS)
    ts, values = columns(hours * 3600, t0)
    ts = ts - ts % 1000  # DATETIME(6) holds microseconds: both sides hold the same instants
    names = {i + 1: series_name(GATEWAY, DEVICE, tag) for i, tag in enumerate(tag_names(23))}
    return t0, ts, values, names


def edge_store(
    path: Path,
    copy_of: str,
    ts: np.ndarray,
    values: np.ndarray,
    t0: int,
    console: Console,
    live: int = 3600,
) -> Store:
    """The bench's store at `path`: a copy of `copy_of` when given (one this line's build left,
    to skip rebuilding it), else built as a live line leaves it (build_edge)."""
    if copy_of:
        shutil.copyfile(copy_of, path)
        return Store(path)
    return build_edge(path, ts, values, t0, console, live)


def build_edge(
    path: Path, ts: np.ndarray, values: np.ndarray, t0: int, console: Console, live: int = 3600
) -> Store:
    """The store as a live line leaves it: all hours but the last packed into blocks, the
    last hour still in chunks, written one commit per second and merged every minute by
    the compaction task (what `edge-node run` does at line rate): the last `live` seconds
    one commit per second (tests make it short: each commit is an fsync)."""
    store = Store(path)
    hours = ts.shape[1] // 3600
    live = live if hours > 1 else 0  # seconds written at line rate
    past = ts.shape[1] - live
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("edge store: ingest (past hours)", total=ts[:, :past].size)
        pending = []
        for batch in batches(ts[:, :past], values[:, :past], 1000):
            pending.append(batch)
            if len(pending) == 16:  # what ingest commits at once (store.flush_messages)
                store.write(pending)
                progress.advance(task, sum(len(b.readings) for b in pending))
                pending = []
        if pending:
            store.write(pending)
            progress.advance(task, sum(len(b.readings) for b in pending))
        store.compact(t0 + (hours - (1 if live else 0)) * HOUR_NS)
        task = progress.add_task("edge store: the live hour", total=live)
        seconds = batches(ts[:, past:], values[:, past:], ts.shape[0], first_seq=ts[:, :past].size)
        for second, batch in enumerate(seconds, 1):
            store.write([batch])
            if second % 60 == 0:
                store.compact(t0 + (hours - 1) * HOUR_NS)  # merges the minute's chunks
            progress.advance(task)
    return store


def evict(path: Path) -> None:
    """Drop the store's pages from the OS page cache (no root needed, other files untouched)."""
    for name in (path, Path(f"{path}-wal")):
        if name.exists():
            fd = os.open(name, os.O_RDONLY)
            try:
                os.fsync(fd)
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)


def timed(
    fn: Callable[[], Any], runs: int, before: Callable[[], None] | None = None
) -> list[float]:
    """Milliseconds of each run; `before` (not timed) prepares each run, e.g. evicts caches."""
    out = []
    for _ in range(runs):
        if before:
            before()
        start = time.perf_counter()
        fn()
        out.append((time.perf_counter() - start) * 1000)
    return out


def cold_times(path: Path, query: Callable[[Store], Any], runs: int) -> list[float]:
    """Each run on a fresh read-only Store after evicting the file from the page cache."""
    out = []
    for _ in range(runs):
        evict(path)
        reader = Store(path, read_only=True)
        try:
            out.extend(timed(lambda r=reader: query(r), 1))
        finally:
            reader.close()
    return out
