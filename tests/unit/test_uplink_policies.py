"""The uplink's pure policies: the in-flight window, PUBACK verdicts, receipts, batches."""

from __future__ import annotations

from factory_common import wire
from gateway_image.firmware.buffer.format import BufferStats
from gateway_image.firmware.uplink.batches import (
    Identity,
    Origin,
    contiguous,
    encode_batch,
    status,
    worth_waiting,
)
from gateway_image.firmware.uplink.confirmations import MAX_RESENDS, Sent
from gateway_image.firmware.uplink.receipts import SWEEP_EVERY, ReceiptPolicy
from gateway_image.firmware.uplink.window import (
    NO_MATCHING_SUBSCRIBERS,
    Counters,
    Verdict,
    Window,
    verdict,
)


def reading(i: int, value: float | str | None = None) -> wire.Reading:
    value = i if value is None else value
    return wire.Reading(device="d", tag="t", ts=1_700_000_000 * 10**9 + i, value=value)


# ---------------------------------------------------------------- window and verdicts


def test_puback_verdicts() -> None:
    assert verdict(False, 0) is Verdict.STORED
    assert verdict(True, 0x87) is Verdict.REFUSED
    assert verdict(False, NO_MATCHING_SUBSCRIBERS) is Verdict.UNROUTED


def test_window_has_room_only_while_connected_and_not_full() -> None:
    window = Window(2)
    assert window.has_room(True) and not window.has_room(False)
    window.published(1, Sent(1, 10, 1))
    window.published(2, Sent(11, 20, 2))
    assert not window.has_room(True)
    assert window.answered(1, Verdict.STORED) == (Sent(1, 10, 1), False)
    assert window.has_room(True) and len(window) == 1
    assert window.answered(99, Verdict.STORED) == (None, False)  # a status: not a batch


def test_refused_and_unrouted_batches_are_sent_again_from_the_lowest_seq() -> None:
    window = Window(8)
    for mid, (lo, hi) in enumerate([(1, 10), (11, 20), (21, 30)]):
        window.published(mid, Sent(lo, hi, mid))
    assert window.answered(1, Verdict.REFUSED)[1] is True
    assert window.answered(0, Verdict.UNROUTED)[1] is True  # the first unrouted is logged
    assert window.answered(2, Verdict.UNROUTED)[1] is False  # not the next of the run
    assert window.take_retry() == 1 and window.take_retry() is None
    assert window.counters.batches_refused == 1 and window.counters.batches_unrouted == 2


# ---------------------------------------------------------------- receipts


def test_receipt_deletes_confirmed_batches_and_queues_lost_ones() -> None:
    policy = ReceiptPolicy(Counters())
    a, b = Sent(1, 10, policy.confirmations.next_order()), None
    b = Sent(11, 20, policy.confirmations.next_order())
    assert not policy.confirmations.broker_acked(a)
    assert not policy.confirmations.broker_acked(b)
    # The edge holds b (published after a) but not a: a was lost between broker and edge.
    actions = policy.receipt([(11, 20)], 0, now=0.0, depth=0)
    assert actions.delete == [(11, 20)]
    assert actions.resend == [a] and policy.next_resend() == a and policy.next_resend() is None
    assert policy.counters.batches_resent == 1


def test_receipt_sweeps_every_listed_range_at_most_once_a_second() -> None:
    policy = ReceiptPolicy(Counters())
    assert policy.receipt([(1, 5)], 0, now=100.0, depth=5).delete == [(1, 5)]
    assert policy.receipt([(1, 5)], 0, now=100.5, depth=5).delete == []
    assert policy.receipt([(1, 5)], 0, now=100.0 + SWEEP_EVERY, depth=5).delete == [(1, 5)]
    assert policy.receipt([(1, 5)], 0, now=200.0, depth=0).delete == []  # nothing buffered


def test_a_batch_lost_too_often_is_given_up_and_counted() -> None:
    policy = ReceiptPolicy(Counters())
    lost = Sent(1, 10, policy.confirmations.next_order(), attempts=MAX_RESENDS)
    later = Sent(11, 20, policy.confirmations.next_order())
    policy.confirmations.broker_acked(lost)
    policy.confirmations.broker_acked(later)
    actions = policy.receipt([(11, 20)], 0, now=0.0, depth=0)
    assert actions.given_up == [lost] and actions.resend == []
    assert policy.counters.batches_unconfirmed == 1
    policy.resend_later(later)
    assert policy.next_resend() == later


# ---------------------------------------------------------------- batches and status


def test_contiguous_stops_at_the_first_gap() -> None:
    entries = [(5, reading(5)), (6, reading(6)), (8, reading(8))]
    assert contiguous(entries) == entries[:2]
    assert contiguous([]) == []


def test_worth_waiting_only_for_a_live_batch_that_is_not_full() -> None:
    assert worth_waiting(10, replay=False, max_readings=500, max_delay=0.2)
    assert not worth_waiting(500, replay=False, max_readings=500, max_delay=0.2)
    assert not worth_waiting(10, replay=True, max_readings=500, max_delay=0.2)
    assert not worth_waiting(10, replay=False, max_readings=500, max_delay=0)


def test_an_oversized_batch_is_halved_until_it_fits() -> None:
    big = "x" * 2000
    count = wire.MAX_PAYLOAD_BYTES // 2000 + 10
    entries = [(i, reading(i, value=big)) for i in range(1, count + 1)]
    batch, payload = encode_batch(Origin("gw", "boot"), entries, False, True, 1)
    assert (
        len(payload)
        <= wire.MAX_PAYLOAD_BYTES
        < len(
            wire.encode(
                wire.Batch(
                    v=wire.WIRE_VERSION,
                    gateway="gw",
                    boot="boot",
                    first_seq=1,
                    last_seq=count,
                    readings=[r for _, r in entries],
                )
            )
        )
    )
    assert batch.first_seq == 1 and batch.last_seq == len(batch.readings)
    assert wire.decode(payload, wire.Batch) == batch


def test_status_carries_buffer_and_counters() -> None:
    identity = Identity(Origin("gw", "boot"), "1.2", started_at=5)
    counters = Counters(batches_resent=3, batches_unconfirmed=1)
    stats = BufferStats(depth=7, bytes=700, last_seq=99, dropped={"ttl": 2})
    got = status(
        identity,
        online=True,
        now=10,
        uptime_s=1.23456,
        stats=stats,
        connectors=[],
        counters=counters,
        synced=False,
    )
    assert (got.buffer_depth, got.last_seq, got.dropped) == (7, 99, {"ttl": 2})
    assert (got.resent, got.unconfirmed, got.uptime_s, got.clock_synced) == (3, 1, 1.235, False)
    assert wire.decode(wire.encode(got), wire.GatewayStatus) == got
