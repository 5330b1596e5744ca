"""The edge's time-series store: exactly-once ingest, latest values, raw and downsampled history.

Public API: `Store` (open / write / compact / series / latest / history / downsample /
gateways / close) and the result types in `model`. Thread use: one writer (ingest), any number
of reader threads (the HTTP API's worker threads each get their own connection; WAL lets them
read while ingest writes). `Store(path, read_only=True)` opens no writer: API replicas in other
processes on the same host read the file the ingest process writes.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path

from edge_node.store import reader
from edge_node.store.cache import DEFAULT_BYTES, DecodedCache
from edge_node.store.downsample import Buckets
from edge_node.store.model import (
    HOUR_NS,
    GatewayRecord,
    LatestValue,
    SeriesData,
    SeriesInfo,
    WriteResult,
    series_name,
)
from edge_node.store.open_minutes import OpenMinutes
from edge_node.store.retention import RetentionConfig
from edge_node.store.schema import StoreError, check_version, connect, migrate
from edge_node.store.writer import Writer
from factory_common.wire import Batch, GatewayStatus, TagCatalogue, WireError, decode

__all__ = [
    "Buckets",
    "GatewayRecord",
    "LatestValue",
    "RetentionConfig",
    "SeriesData",
    "SeriesInfo",
    "Store",
    "StoreError",
    "WriteResult",
    "series_name",
]


class Store:
    def __init__(
        self,
        path: Path,
        *,
        retention: RetentionConfig | None = None,
        read_only: bool = False,
        cache_bytes: int = DEFAULT_BYTES,
    ) -> None:
        self.path = Path(path)
        self.cache = DecodedCache(cache_bytes)  # decoded blocks, shared by reader threads
        self.open_minutes = OpenMinutes()  # the unpacked minute rollups, kept up to date
        self.retention = retention
        self.read_only = read_only
        self._retained_at = 0  # ns: when compaction last enforced retention
        self._writer_conn: sqlite3.Connection | None = None
        self._writer_obj: Writer | None = None
        if read_only:
            conn = connect(self.path, writer=False, must_exist=True)  # fail early, clearly
            try:
                check_version(conn, self.path)
            finally:
                conn.close()
        else:
            conn = connect(self.path, writer=True)
            migrate(conn, self.path)
            self._writer_conn = conn
            self._writer_obj = Writer(conn)
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []
        self._readers_lock = threading.Lock()

    # ------------------------------------------------------------ writes

    def write(
        self,
        batches: Sequence[Batch],
        statuses: Sequence[GatewayStatus] = (),
        catalogues: Sequence[TagCatalogue] = (),
    ) -> WriteResult:
        """Store the readings not stored before (by gateway + seq), atomically and durably,
        with the gateways' latest status and tag catalogue."""
        return self._writer.write(batches, statuses, catalogues)

    @property
    def _writer(self) -> Writer:
        if self._writer_obj is None:
            raise StoreError(f"{self.path} is open read-only here: the ingest process writes it")
        return self._writer_obj

    def compact(self, before_ns: int) -> int:
        """Pack readings of whole UTC hours before `before_ns` into blocks, then drop what is
        past each tier's retention (relative to `before_ns`); returns readings moved."""
        moved = self._writer.compact(before_ns)
        # Retention deletes whole hours: checking once per hour is enough.
        if self.retention is not None and before_ns - self._retained_at >= HOUR_NS:
            self._writer.drop_before(self.retention.cutoffs(before_ns))
            self._retained_at = before_ns
        return moved

    def enforce_retention(self, now_ns: int) -> int:
        """Drop what is past each tier's retention now; returns rows deleted."""
        return self._writer.drop_before(self.retention.cutoffs(now_ns)) if self.retention else 0

    def received(self, gateway: str) -> list[tuple[int, int]]:
        return self._writer.received(gateway)

    # ------------------------------------------------------------ reads

    def _reader(self) -> sqlite3.Connection:
        """One read connection per thread: sqlite3 connections must not be shared concurrently."""
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = connect(self.path, writer=False)
            self._local.conn = conn
            with self._readers_lock:
                self._readers.append(conn)
        return conn

    def series(self) -> list[SeriesInfo]:
        return reader.list_series(self._reader())

    def lookup(self, names: Sequence[str]) -> tuple[list[SeriesInfo], list[str]]:
        """Resolve 'gateway/device/tag' names; returns (found, unknown names)."""
        known = {info.name: info for info in self.series()}
        found = [known[n] for n in names if n in known]
        return found, [n for n in names if n not in known]

    def latest(self) -> list[LatestValue]:
        return reader.latest(self._reader())

    def history(self, series: Sequence[SeriesInfo], start: int, end: int) -> list[SeriesData]:
        """Raw readings with start <= ts < end (ns), per series in the order given."""
        return reader.history(self._reader(), series, start, end, self.cache)

    def downsample(
        self, series: Sequence[SeriesInfo], start: int, end: int, points: int
    ) -> list[Buckets | None]:
        """Per series, min/max/mean in at most `points` whole-minute buckets from the minute
        summaries (fast for long ranges), or None where only the raw history can answer."""
        conn = self._reader()
        return reader.downsample(conn, series, start, end, points, self.cache, self.open_minutes)

    def gateways(self) -> list[GatewayRecord]:
        return reader.gateways(self._reader())

    def catalogues(self) -> list[TagCatalogue]:
        """Each gateway's latest tag catalogue (one stored by an older edge is skipped)."""
        out = []
        for payload in reader.catalogues(self._reader()):
            try:
                out.append(decode(payload, TagCatalogue))
            except WireError:
                continue
        return out

    def heard(self) -> dict[str, int]:
        """gateway -> ns (edge clock) of the last batch or online status committed."""
        return reader.heard(self._reader())

    def stats(self) -> dict[str, int]:
        conn = self._reader()
        recent = conn.execute("SELECT coalesce(sum(n), 0) FROM chunks").fetchone()[0]
        blocks, packed = conn.execute("SELECT count(*), coalesce(sum(n), 0) FROM blocks").fetchone()
        size = conn.execute(
            "SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()"
        ).fetchone()[0]
        return {
            "recent_rows": recent,  # readings in chunks, not yet packed into blocks
            "blocks": blocks,
            "block_readings": packed,
            "file_bytes": size,
        }

    def close(self) -> None:
        with self._readers_lock:
            for conn in self._readers:
                conn.close()
            self._readers.clear()
        if self._writer_conn is not None:
            self._writer_conn.close()
