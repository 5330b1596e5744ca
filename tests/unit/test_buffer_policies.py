"""The buffer's pure policies: the intake queue, recent commits in memory, budget and ttl."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from gateway_image.firmware.buffer.budget import (
    DISK_RETRY,
    Budget,
    Drops,
    Ttl,
    expired_prefix,
    fitting,
    prefix_to_free,
)
from gateway_image.firmware.buffer.format import ROW_OVERHEAD, DropCause, Policy
from gateway_image.firmware.buffer.intake import Intake
from gateway_image.firmware.buffer.recent import RecentCommits

# ---------------------------------------------------------------- intake


def test_intake_takes_everything_that_arrived_in_order() -> None:
    intake: Intake[int, str] = Intake(100)
    assert intake.offer([1, 2]) == 0
    intake.put([3], "waiter")
    intake.offer([4])
    groups = intake.take()
    assert [g.items for g in groups] == [[1, 2], [3], [4]]
    assert [g.waiter for g in groups] == [None, "waiter", None]
    assert len(intake) == 0 and intake.take() == []


def test_full_intake_drops_the_oldest_waiting_readings_and_counts_them() -> None:
    intake: Intake[int, str] = Intake(5, Policy.DROP_OLDEST)
    intake.offer([1, 2, 3])
    intake.offer([4, 5])
    assert intake.offer([6, 7]) == 2
    assert [g.items for g in intake.take()] == [[3], [4, 5], [6, 7]]
    assert intake.dropped == 2


def test_full_intake_refuses_the_newest_under_refuse_newest() -> None:
    intake: Intake[int, str] = Intake(4, Policy.REFUSE_NEWEST)
    intake.offer([1, 2, 3])
    assert intake.offer([4, 5, 6]) == 2
    assert [g.items for g in intake.take()] == [[1, 2, 3], [4]]
    assert intake.dropped == 2


def test_awaited_groups_are_never_dropped() -> None:
    intake: Intake[int, str] = Intake(3, Policy.DROP_OLDEST)
    intake.put([1, 2, 3], "w")
    assert intake.offer([4, 5]) == 2  # nothing else droppable: the newcomers do not fit
    assert [g.items for g in intake.take()] == [[1, 2, 3]]


@given(
    ops=st.lists(st.integers(0, 12), max_size=30),
    capacity=st.integers(1, 20),
    policy=st.sampled_from(list(Policy)),
)
def test_intake_never_exceeds_capacity_and_counts_every_loss(
    ops: list[int], capacity: int, policy: Policy
) -> None:
    intake: Intake[int, None] = Intake(capacity, policy)
    offered, n = 0, 0
    for size in ops:
        intake.offer(list(range(n, n + size)))
        n += size
        offered += size
        assert len(intake) <= capacity
    kept = [x for g in intake.take() for x in g.items]
    assert kept == sorted(kept)  # order kept
    assert len(kept) + intake.dropped == offered
    if policy is Policy.DROP_OLDEST and kept:
        assert kept[-1] == n - 1  # the newest always survive


# ---------------------------------------------------------------- recent commits


def test_recent_answers_only_a_gapless_run_after_the_cursor() -> None:
    recent: RecentCommits[str] = RecentCommits(capacity=5)
    assert recent.after(9, 10) is None  # nothing known: read SQLite
    recent.committed(10, ["a", "b", "c"])
    assert recent.after(8, 10) is None  # seq 9 may be in SQLite only
    assert recent.after(None, 10) is None  # the first read after start goes to SQLite
    assert recent.after(9, 10) == [(10, "a"), (11, "b"), (12, "c")]
    assert recent.after(10, 1) == [(11, "b")]
    assert recent.after(12, 10) == []  # caught up
    assert len(recent) == 0
    assert recent.after(12, 10) == []  # still caught up: memory holds every commit
    assert recent.after(11, 10) is None  # seq 12 was sent, and forgotten


def test_recent_forgets_what_the_reader_has_sent() -> None:
    recent: RecentCommits[str] = RecentCommits(capacity=100)
    recent.committed(1, ["a", "b", "c", "d"])
    assert recent.after(2, 1) == [(3, "c")]
    assert len(recent) == 2  # seqs 1 and 2 were sent
    assert recent.after(2, 10) == [(3, "c"), (4, "d")]  # the same read again (not yet sent)
    assert recent.after(1, 10) is None  # a rewind below memory: SQLite


def test_recent_keeps_only_the_newest_and_forgets_dropped_rows() -> None:
    recent: RecentCommits[int] = RecentCommits(capacity=3)
    recent.committed(1, [1, 2, 3])
    recent.committed(4, [4, 5])
    assert recent.after(3, 10) == [(4, 4), (5, 5)]
    assert recent.after(1, 10) is None  # seq 2 fell out of memory
    recent.forget_through(4)  # the budget dropped up to seq 4
    assert recent.after(3, 10) is None
    assert recent.after(4, 10) == [(5, 5)]


def test_a_gap_in_commits_starts_memory_afresh() -> None:
    recent: RecentCommits[int] = RecentCommits(capacity=10)
    recent.committed(1, [1, 2])
    recent.committed(7, [7])
    assert recent.after(2, 10) is None
    assert recent.after(6, 10) == [(7, 7)]


def test_recent_answers_across_commits_from_inside_the_first() -> None:
    recent: RecentCommits[int] = RecentCommits(capacity=10)
    recent.committed(1, [1, 2, 3])
    recent.committed(4, [4, 5, 6])
    assert recent.after(2, 3) == [(3, 3), (4, 4), (5, 5)]
    assert recent.after(4, 10) == [(5, 5), (6, 6)]
    recent.committed(7, list(range(7, 16)))  # 11 held: over capacity, seq 5 falls out
    assert recent.after(4, 10) is None
    assert len(recent) == 10
    assert recent.after(5, 2) == [(6, 6), (7, 7)]


class RecentModel:
    """What memory holds, one (seq, item) per reading: the semantics RecentCommits keeps."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.items: list[tuple[int, int]] = []
        self.floor = -1
        self.next = -1

    def committed(self, first: int, items: list[int]) -> None:
        if self.items and first != self.items[-1][0] + 1:
            self.items = []
        self.items += zip(range(first, first + len(items)), items, strict=True)
        self.items = self.items[-self.capacity :]
        self.next = first + len(items)

    def forget_through(self, seq: int) -> None:
        self.floor = max(self.floor, seq)
        self.items = [e for e in self.items if e[0] > seq]

    def after(self, seq: int, limit: int) -> list[tuple[int, int]] | None:
        if seq < self.floor:
            return None
        if not self.items:
            return [] if seq + 1 == self.next else None
        if seq + 1 < self.items[0][0]:
            return None
        self.items = [e for e in self.items if e[0] > seq]
        return self.items[:limit]


recent_ops = st.lists(
    st.one_of(
        st.tuples(st.just("commit"), st.integers(0, 2), st.integers(1, 7)),  # gap, run length
        st.tuples(st.just("forget"), st.integers(-3, 3), st.just(0)),  # around the newest seq
        st.tuples(st.just("after"), st.integers(-12, 1), st.integers(1, 6)),  # cursor, limit
    ),
    max_size=40,
)


@given(capacity=st.integers(1, 12), ops=recent_ops)
def test_recent_runs_answer_as_one_entry_per_reading_would(
    capacity: int, ops: list[tuple[str, int, int]]
) -> None:
    """Memory holds whole commits as runs; every answer is the one a per-reading list gives."""
    recent: RecentCommits[int] = RecentCommits(capacity)
    model = RecentModel(capacity)
    next_seq = 100
    for op, a, b in ops:
        if op == "commit":
            next_seq += a  # a gap: readings the budget refused got no seq
            items = [next_seq + i for i in range(b)]
            recent.committed(next_seq, items)
            model.committed(next_seq, items)
            next_seq += b
        elif op == "forget":
            recent.forget_through(next_seq + a)
            model.forget_through(next_seq + a)
        else:
            assert recent.after(next_seq + a, b) == model.after(next_seq + a, b)
        assert len(recent) == len(model.items)


# ---------------------------------------------------------------- budget and ttl


def test_refuse_newest_keeps_the_prefix_that_fits() -> None:
    budget = Budget(100, Policy.REFUSE_NEWEST)
    assert budget.keep([30, 30, 30], held=20, now=0.0) == 2
    assert budget.excess(200, now=0.0) == 0  # refuse_newest never deletes
    assert fitting([5, 5], 9) == 1


def test_drop_oldest_frees_the_excess_from_the_oldest_rows() -> None:
    budget = Budget(100, Policy.DROP_OLDEST)
    assert budget.keep([30, 30, 30], held=20, now=0.0) == 3
    assert budget.excess(110, now=0.0) == 10
    rows = [(1, 4), (2, 4), (3, 4)]
    assert prefix_to_free(rows, 10) == [(1, 4)]  # 4 + ROW_OVERHEAD >= 10
    assert prefix_to_free(rows, 2 * (4 + ROW_OVERHEAD)) == [(1, 4), (2, 4)]
    assert budget.cause() is DropCause.DISK_BUDGET


def test_disk_full_shrinks_the_budget_for_a_while() -> None:
    budget = Budget(10_000, Policy.DROP_OLDEST)
    limit = budget.disk_full(held=5000, incoming=100, page_size=1000, now=50.0)
    assert limit == 5000 - 100 - 2000
    assert budget.limit(60.0) == limit and budget.cause() is DropCause.DISK_FULL
    assert budget.limit(50.0 + DISK_RETRY + 1) == 10_000  # may try to grow again
    assert budget.cause() is DropCause.DISK_BUDGET
    refusing = Budget(10_000, Policy.REFUSE_NEWEST)
    assert refusing.disk_full(held=5000, incoming=100, page_size=1000, now=0.0) == 5000


def test_ttl_scans_at_most_once_a_second_and_expires_a_prefix() -> None:
    ttl = Ttl(2.0)
    assert ttl.cutoff(10**10) == 10**10 - 2 * 10**9
    assert ttl.cutoff(10**10 + 10**8) is None
    assert ttl.cutoff(10**10 + 10**8, force=True) is not None
    assert Ttl(None).cutoff(10**10, force=True) is None
    rows = [(1, 100, 8), (2, 200, 8), (3, 150, 8)]
    assert expired_prefix(rows, 180) == [(1, 8)]  # stops at the first fresh row


def test_drops_count_by_cause() -> None:
    drops = Drops()
    drops.add(DropCause.TTL, 2)
    drops.add(DropCause.TTL, 0)
    drops.add(DropCause.QUEUE_FULL, 3)
    assert drops == {"ttl": 2, "queue_full": 3}
