"""End-to-end confirmation bookkeeping: what a receipt confirms, and what it shows was lost."""

from __future__ import annotations

from gateway_image.firmware.uplink.confirmations import MAX_RESENDS, Confirmations, Sent


def published(book: Confirmations, first: int, last: int, attempts: int = 0) -> Sent:
    """A batch published now and acknowledged by the broker."""
    sent = Sent(first, last, book.next_order(), attempts)
    assert book.broker_acked(sent) is False
    return sent


def test_receipt_confirms_only_batches_it_covers_entirely() -> None:
    book = Confirmations()
    a, b = published(book, 1, 10), published(book, 11, 20)
    outcome = book.receipt([(1, 15)], status_ts=0)
    assert outcome.confirmed == [a]
    assert outcome.lost == [] and outcome.given_up == []  # b's second half may still come
    assert book.awaiting == 1
    assert book.receipt([(1, 20)], status_ts=0).confirmed == [b]
    assert book.awaiting == 0


def test_a_later_batch_confirmed_shows_an_earlier_one_lost() -> None:
    book = Confirmations()
    lost, later = published(book, 1, 10), published(book, 11, 20)
    outcome = book.receipt([(11, 20)], status_ts=0)
    assert outcome.confirmed == [later]
    assert outcome.lost == [lost]
    assert book.awaiting == 0  # handed back for re-sending, not watched twice


def test_publish_order_not_seq_order_decides_loss() -> None:
    """Live data goes ahead of a backlog: a live batch (high seqs) published first, confirmed,
    says nothing about a replay batch (low seqs) published after it."""
    book = Confirmations()
    live, replay = published(book, 500, 510), published(book, 1, 10)
    outcome = book.receipt([(500, 510)], status_ts=0)
    assert outcome.confirmed == [live] and outcome.lost == []
    assert book.awaiting == 1 and replay.order > live.order


def test_a_status_stored_after_a_batch_shows_it_lost_when_nothing_else_follows() -> None:
    book = Confirmations()
    lost = published(book, 1, 10)
    book.status_sent(ts=777)
    assert book.receipt([], status_ts=555).lost == []  # an older status: no verdict
    assert book.receipt([], status_ts=777).lost == [lost]


def test_a_batch_confirmed_before_its_puback_is_processed_is_done_at_once() -> None:
    book = Confirmations()
    book.receipt([(1, 100)], status_ts=0)
    assert book.broker_acked(Sent(5, 9, book.next_order())) is True
    assert book.awaiting == 0


def test_a_batch_lost_again_and_again_is_given_up_after_max_resends() -> None:
    book = Confirmations()
    stubborn = published(book, 1, 10, attempts=MAX_RESENDS)
    published(book, 11, 20)
    outcome = book.receipt([(11, 20)], status_ts=0)
    assert outcome.lost == [] and outcome.given_up == [stubborn]
