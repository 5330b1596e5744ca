"""Sync UP to the central MariaDB/MySQL: minute summaries, text changes, alarms, defects, events.

Every row is upserted by (edge_id, natural key), so a batch pushed twice (a crash between the
cloud's commit and the edge's mark) leaves the same rows. Each batch is one cloud transaction;
the edge records it as pushed only after that commit, so an outage mid-way resumes at the
first batch the cloud did not confirm. Nothing is recomputed centrally: the cloud stores the
min/max/sum/count the edge's store already holds.
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pymysql

from edge_node.cloud.cadence import repeat_with_backoff
from edge_node.cloud.collect import ChangeRow, MinuteRow, new_changes, new_minutes
from edge_node.cloud.config import CloudConfig
from edge_node.cloud.mysql import CLOUD_ERRORS, CloudError, connect, describe
from edge_node.cloud.outbox import CloudOutbox
from edge_node.cloud.rows import OUTBOX_TABLES, change_row, minute_row, outbox_row, upsert_sql
from edge_node.store import Store
from edge_node.store.downsample import MINUTE_NS
from factory_common.logs import get_logger

log = get_logger(component="sync_up")
RECENT_RECHECK_NS = 15 * 60 * 10**9  # every push re-checks this long before its minutes mark
FULL_RECHECK_S = 3600.0  # and the whole lookback this often (~0.6 s for a day of 23 series)
Progress = Callable[[str, int, int], None]  # stream, rows done, rows total


@dataclass(frozen=True, slots=True)
class UpStatus:
    """For /api/sync: epoch ms times; counts of rows pushed in the last successful run."""

    last_attempt: int | None = None
    last_success: int | None = None
    last_error: str | None = None
    last_error_at: int | None = None
    consecutive_failures: int = 0
    pushed: dict[str, int] = field(default_factory=dict)
    pending_outbox: int = 0
    marks: dict[str, int] = field(default_factory=dict)


class SyncUp:
    def __init__(
        self,
        config: CloudConfig,
        edge_id: str,
        store: Store,
        outbox: CloudOutbox,
        connector: Callable[[CloudConfig], pymysql.Connection] = connect,
        on_batch: Progress | None = None,
    ) -> None:
        self.config = config
        self.edge_id = edge_id
        self.store = store
        self.outbox = outbox
        self._connect = connector
        self._on_batch = on_batch
        self._status = UpStatus(marks=outbox.marks(), pending_outbox=outbox.pending_count())
        self._last_full = -math.inf
        self._abandon = threading.Event()  # set when the awaiting task gave up (timeout)
        self.wake = asyncio.Event()  # set it to push now (e.g. right after a defect record)

    def status(self) -> UpStatus:
        """The last run's outcome, with the outbox count as it is now."""
        return dataclasses.replace(
            self._status, pending_outbox=self.outbox.pending_count(), marks=self.outbox.marks()
        )

    # ------------------------------------------------------------ one push (in a thread)

    def push(self, now_ns: int | None = None, full: bool | None = None) -> dict[str, int]:
        """Push everything pending; returns rows pushed per stream; raises CloudError.

        Each push re-checks the minutes shortly before the last one pushed; the whole
        lookback (late backlogs from a gateway's outage) is re-checked on the first push and
        then once an hour (full=None), or when `full` says so."""
        self._abandon.clear()
        if full is None:
            full = time.monotonic() - self._last_full >= FULL_RECHECK_S
        conn = self._connect(self.config)
        try:
            pushed = {"outbox": self._push_outbox(conn)}
            end, lookback_start = self._window(now_ns or time.time_ns())
            start, mark = lookback_start, self.outbox.mark("minutes")
            if not full and mark:
                start = max(lookback_start, mark - RECENT_RECHECK_NS)
            minutes = new_minutes(self.store, self.outbox, start, end)
            pushed["minutes"] = self._push_minutes(conn, minutes, end)
            changes = new_changes(self.store, self.outbox, start, end)
            pushed["changes"] = self._push_changes(conn, changes)
            self.outbox.forget_before(lookback_start)
            self.outbox.prune(time.time_ns() // 1_000_000 - 7 * 86_400_000)
            if full:
                self._last_full = time.monotonic()
            # Also for an API replica's /api/sync, which reads this file but does not push.
            self.outbox.set_mark("last_success", time.time_ns() // 1_000_000)
            return pushed
        except CLOUD_ERRORS as exc:
            raise CloudError(describe(self.config, exc)) from None
        finally:
            conn.close()

    def _window(self, now_ns: int) -> tuple[int, int]:
        settled = now_ns - int(self.config.summaries_settle * 1e9)
        end = settled - settled % MINUTE_NS
        lookback = int(self.config.summaries_lookback * 1e9)
        return end, end - lookback + (lookback % MINUTE_NS)

    def _batches(self, stream: str, rows: Sequence[Any]) -> list[Sequence[Any]]:
        size = self.config.batch_size
        return [rows[i : i + size] for i in range(0, len(rows), size)]

    def _progress(self, stream: str, done: int, total: int) -> None:
        if total > self.config.batch_size:
            log.info("sync_up_progress", stream=stream, done=done, total=total)
        if self._on_batch is not None:
            self._on_batch(stream, done, total)
        if self._abandon.is_set():
            raise TimeoutError(f"push of {stream} abandoned after {done} of {total} rows")

    def _write(self, conn: pymysql.Connection, table: str, rows: list[tuple[Any, ...]]) -> None:
        with conn.cursor() as cur:
            cur.executemany(upsert_sql(table), rows)
        conn.commit()

    def _push_outbox(self, conn: pymysql.Connection) -> int:
        done, total = 0, self.outbox.pending_count()
        while batch := self.outbox.pending(self.config.batch_size):
            by_table: dict[str, list[tuple[Any, ...]]] = {}
            for record in batch:
                by_table.setdefault(OUTBOX_TABLES[record.kind], []).append(
                    outbox_row(self.edge_id, record)
                )
            with conn.cursor() as cur:
                for table, rows in by_table.items():
                    cur.executemany(upsert_sql(table), rows)
            conn.commit()
            self.outbox.set_outbox_mark(batch[-1].id)
            done += len(batch)
            self._progress("outbox", done, max(total, done))
        return done

    def _push_minutes(self, conn: pymysql.Connection, rows: list[MinuteRow], end: int) -> int:
        done = 0
        for batch in self._batches("minutes", rows):
            self._write(conn, "minute_summaries", [minute_row(self.edge_id, r) for r in batch])
            self.outbox.record_minutes([(r.series, r.minute, r.n, r.sum) for r in batch], end)
            done += len(batch)
            self._progress("minutes", done, len(rows))
        if not rows:
            self.outbox.record_minutes([], end)
        return done

    def _push_changes(self, conn: pymysql.Connection, rows: list[ChangeRow]) -> int:
        done = 0
        for batch in self._batches("changes", rows):
            self._write(conn, "events", [change_row(self.edge_id, r) for r in batch])
            self.outbox.record_changes([(r.series, r.ts, r.value) for r in batch])
            done += len(batch)
            self._progress("changes", done, len(rows))
        return done

    # ------------------------------------------------------------ the periodic task

    async def sync_once(self) -> dict[str, int]:
        """One push in a worker thread, bounded: each query by query_timeout, the whole by
        a generous budget after which the thread stops at its next batch."""
        started = time.time_ns() // 1_000_000
        budget = self.config.connect_timeout + 20 * self.config.query_timeout
        job = asyncio.ensure_future(asyncio.to_thread(self.push))
        try:
            async with asyncio.timeout(budget):
                pushed = await asyncio.shield(job)
        except TimeoutError:
            self._abandon.set()
            await asyncio.wait([job], timeout=self.config.query_timeout)
            error = describe(self.config, TimeoutError(f"push not done within {budget:.0f} s"))
            self._failed(error, started)
            raise CloudError(error) from None
        except CloudError as exc:
            self._failed(str(exc), started)
            raise
        except asyncio.CancelledError:
            # Shutting down: the thread stops at its next batch; the store closes after it.
            self._abandon.set()
            await asyncio.wait([job], timeout=self.config.query_timeout)
            raise
        self._status = UpStatus(
            last_attempt=started,
            last_success=time.time_ns() // 1_000_000,
            pushed=pushed,
            pending_outbox=self.outbox.pending_count(),
            marks=self.outbox.marks(),
        )
        if any(pushed.values()):
            log.info("sync_up_pushed", **pushed)
        return pushed

    def _failed(self, error: str, started: int) -> None:
        self._status = dataclasses.replace(
            self._status,
            last_attempt=started,
            last_error=error,
            last_error_at=time.time_ns() // 1_000_000,
            consecutive_failures=self._status.consecutive_failures + 1,
            pending_outbox=self.outbox.pending_count(),
            marks=self.outbox.marks(),
        )

    async def run(self) -> None:
        """Forever: log once when the cloud goes away and once when it is back."""

        def failed(exc: CloudError, first: bool) -> None:
            if first:
                log.warning("sync_up_failed", error=str(exc))

        def recovered() -> None:
            log.info("sync_up_recovered", pending_outbox=self._status.pending_outbox)

        await repeat_with_backoff(
            self.sync_once,
            interval=self.config.up_interval,
            backoff_max=self.config.backoff_max,
            wake=self.wake,
            on_failure=failed,
            on_recovery=recovered,
        )
