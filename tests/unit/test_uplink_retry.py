"""Readings the broker refused or did not route are offered again until it stores them: the
window's retry point and the send plan's rewind together, as the uplink's send loop uses them."""

from __future__ import annotations

from collections import deque

import pytest

from gateway_image.firmware.uplink.confirmations import Sent
from gateway_image.firmware.uplink.plan import SAMPLE_EVERY, SendPlan, Slice
from gateway_image.firmware.uplink.uplink import REJECTED_RETRY
from gateway_image.firmware.uplink.window import Verdict, Window

RATE = 620  # readings/s: the fault rig's gateway (31 tags polled every 50 ms)


def observe_until(plan: SendPlan, start: float, end: float) -> None:
    """The uplink samples the buffer's last seq every SAMPLE_EVERY seconds, online or not."""
    t = start
    while t <= end:
        plan.production.observe(t, int(RATE * t))
        t += SAMPLE_EVERY


def unrouted(plan: SendPlan, window: Window, mid: int, part: Slice, last: int) -> None:
    """Publish part.after + 1 .. last; the broker answers "No matching subscribers"."""
    first = 1 if part.after is None else part.after + 1
    window.published(mid, Sent(first, last, mid))
    plan.sent(first, last, part.replay)
    window.answered(mid, Verdict.UNROUTED)


def test_an_unrouted_live_batch_does_not_skip_the_backlog_behind_it() -> None:
    """The sequence that stranded readings: nothing is routed before the edge subscribes, and
    the first retry finds a backlog, so it sends live readings first; when those come back
    unrouted, the next retry starts from the first live seq. The backlog below it (never
    routed either) must still be replayed, not skipped."""
    plan, window = SendPlan(live_first=True, backlog=2000), Window(8)
    observe_until(plan, 0.0, 0.05)
    part = plan.next(last_seq=31, depth=31, now=0.05)
    assert part == Slice(None, None, replay=False)
    unrouted(plan, window, 1, part, 31)
    # 5 s later: send again from seq 1. 3100 readings wait: the last second's go first.
    observe_until(plan, 0.25, 5.0)
    plan.rewind(window.take_retry() or 0)
    part = plan.next(last_seq=3100, depth=3100, now=5.0)
    assert part == Slice(2480, None, replay=False)
    unrouted(plan, window, 2, part, 2980)  # live, full: then a partial one, also live
    part = plan.next(last_seq=3100, depth=3100, now=5.0)
    unrouted(plan, window, 3, part, 3100)
    # 5 s later again: the retry point is the first live seq, 2481.
    observe_until(plan, 5.25, 10.0)
    assert window.retry_from == 2481
    plan.rewind(window.take_retry() or 0)
    part = plan.next(last_seq=6200, depth=6200, now=10.0)
    assert part == Slice(5580, None, replay=False)  # live first again
    plan.sent(5581, 6200, replay=False)
    # Behind it the backlog, from seq 1: readings 1..2480 were never routed either.
    assert plan.next(last_seq=6200, depth=6200, now=10.0) == Slice(0, 5580, replay=True)


def test_a_rewind_never_moves_past_readings_not_sent_yet() -> None:
    plan = SendPlan(live_first=True, backlog=1000)
    assert plan.next(last_seq=5000, depth=5000, now=0) == Slice(None, 5000, replay=True)
    plan.sent(5001, 5100, replay=False)  # live, before any of the backlog
    plan.rewind(5001)
    assert plan.next(last_seq=5100, depth=5100, now=0) == Slice(5000, None, replay=False)
    plan.sent(5001, 5100, replay=False)
    assert plan.next(last_seq=5100, depth=5100, now=0) == Slice(None, 5000, replay=True)
    in_order = SendPlan()
    in_order.sent(1, 100, replay=False)
    in_order.rewind(501)  # a late answer for a batch sent before an earlier rewind
    assert in_order.next(last_seq=1000, depth=1000, now=0) == Slice(100, None, replay=False)


class Broker:
    """Routes nothing until `edge_at` (s), then stores every batch; the rows it stores leave
    the buffer (`rows`: the edge's receipt, at once)."""

    def __init__(self, edge_at: float) -> None:
        self.edge_at = edge_at
        self.rows: set[int] = set()

    def answer(self, window: Window, mid: int, sent: Sent, now: float) -> None:
        routed = now >= self.edge_at
        window.answered(mid, Verdict.STORED if routed else Verdict.UNROUTED)
        if routed:
            self.rows.difference_update(range(sent.first, sent.last + 1))


def read(rows: set[int], part: Slice, last_seq: int, limit: int) -> list[int]:
    """The buffer's rows after part.after (up to part.upto): the leading contiguous run."""
    seq = 1 if part.after is None else part.after + 1
    end = last_seq if part.upto is None else min(last_seq, part.upto)
    while seq <= end and seq not in rows:
        seq += 1
    found: list[int] = []
    while seq <= end and seq in rows and len(found) < limit:
        found.append(seq)
        seq += 1
    return found


def run(live_first: bool, edge_at: float, lag: int, stop_at: float = 30.0) -> set[int]:
    """The uplink's send loop, simulated: readings at RATE until `stop_at`; each PUBACK comes
    after `lag` more publishes (or a wait). Returns the seqs never stored."""
    plan, window, broker = SendPlan(live_first=live_first, backlog=2000), Window(8), Broker(edge_at)
    inflight: deque[tuple[int, Sent]] = deque()
    rows = broker.rows
    now, mid, produced = 0.0, 0, 0

    def answer_all() -> None:
        while inflight:
            broker.answer(window, *inflight.popleft(), now)

    while now < stop_at + 120:
        last_seq = int(RATE * min(now, stop_at))
        plan.production.observe(now, last_seq)
        rows.update(range(produced + 1, last_seq + 1))
        produced = last_seq
        if now > stop_at and not rows:
            break
        if window.retry_from is not None:
            answer_all()  # every PUBACK arrives during the pause
            now += REJECTED_RETRY
            plan.rewind(window.take_retry() or 0)
            continue
        part = plan.next(last_seq, len(rows), now)
        if not isinstance(part, Slice):
            now += part
            answer_all()
            continue
        found = read(rows, part, last_seq, 500)
        if not found:
            if part.replay:
                plan.finish_replay()
            else:
                now += 0.05  # waits for the next commit
                answer_all()
            continue
        mid += 1
        sent = Sent(found[0], found[-1], mid)
        window.published(mid, sent)
        plan.sent(sent.first, sent.last, part.replay)
        inflight.append((mid, sent))
        while len(inflight) > min(lag, window.size - 1):
            broker.answer(window, *inflight.popleft(), now)
        now += 0.01
    return rows


@pytest.mark.parametrize("live_first", [True, False])
@pytest.mark.parametrize("edge_at", [0.0, 3.0, 7.0, 12.0, 21.0])
@pytest.mark.parametrize("lag", [0, 1, 4])
def test_every_reading_is_stored_however_late_the_edge_subscribes(
    live_first: bool, edge_at: float, lag: int
) -> None:
    never = run(live_first, edge_at, lag)
    assert not never, f"{len(never)} readings never stored, from seq {min(never)}"
