"""The durable outbox and ledgers, and which text readings count as changes."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge_node.cloud.collect import MinuteRow, new_changes, same_minute
from edge_node.cloud.outbox import CloudOutbox, OutboxError
from edge_node.store import Store
from factory_common.wire import WIRE_VERSION, Batch, Reading

S = 10**9
T0 = 1_764_000_000 * S


@pytest.fixture
def outbox(tmp_path: Path) -> CloudOutbox:
    box = CloudOutbox(tmp_path / "cloud.sqlite")
    yield box
    box.close()


def test_records_wait_until_marked_and_survive_a_restart(outbox: CloudOutbox) -> None:
    first = outbox.add("defect", {"product_id": "P-1"}, "P-1@1")
    outbox.add("alarm", {"state": "raised"}, "a-1")
    assert [r.key for r in outbox.pending(10)] == ["P-1@1", "a-1"]
    outbox.set_outbox_mark(first)
    reopened = CloudOutbox(outbox.path)
    assert [r.key for r in reopened.pending(10)] == ["a-1"] and reopened.pending_count() == 1
    reopened.close()


def test_same_key_again_replaces_and_requeues(outbox: CloudOutbox) -> None:
    first = outbox.add("alarm", {"state": "raised"}, "a-1")
    outbox.set_outbox_mark(first)
    assert outbox.pending(10) == []
    outbox.add("alarm", {"state": "acknowledged", "by": "ana"}, "a-1")
    [record] = outbox.pending(10)
    assert record.payload == {"state": "acknowledged", "by": "ana"} and record.id > first
    assert outbox.prune(older_than_ms=2**62) == 0  # the new record is not pushed yet


def test_bad_records_are_refused_with_a_reason(outbox: CloudOutbox) -> None:
    with pytest.raises(OutboxError, match="unknown: use one of alarm, defect, event"):
        outbox.add("note", {}, "k")
    with pytest.raises(OutboxError, match="1 to 300 characters"):
        outbox.add("event", {}, "")
    with pytest.raises(OutboxError, match="not JSON"):
        outbox.add("event", {"x": float("nan")}, "k")
    assert outbox.pending_count() == 0


def test_minutes_compare_by_count_and_sum() -> None:
    row = MinuteRow("s", 0, 3, 1.0, 2.0, 4.5)
    assert same_minute((3, 4.5), row) and same_minute((3, 4.5 + 1e-12), row)
    assert not same_minute(None, row)
    assert not same_minute((2, 4.5), row)  # a late reading arrived
    assert not same_minute((3, 4.6), row)


def write_products(store: Store, first_seq: int, values: list[str], t0: int) -> None:
    readings = [
        Reading(device="line", tag="product", ts=t0 + i * S, value=v) for i, v in enumerate(values)
    ]
    last = first_seq + len(values) - 1
    store.write([Batch(v=WIRE_VERSION, gateway="gw", boot="b", first_seq=first_seq,
                       last_seq=last, readings=readings)])  # fmt: skip


def test_only_changes_of_text_series_are_events(tmp_path: Path, outbox: CloudOutbox) -> None:
    store = Store(tmp_path / "edge.sqlite")
    write_products(store, 0, ["A", "A", "B", "B", "A"], T0)
    changes = new_changes(store, outbox, T0, T0 + 60 * S)
    assert [(c.ts - T0) // S for c in changes] == [0, 2, 4]
    assert [c.value for c in changes] == ["A", "B", "A"]
    outbox.record_changes([(c.series, c.ts, c.value) for c in changes])
    assert new_changes(store, outbox, T0, T0 + 60 * S) == []
    # The window moves past the first change: the ledger still knows the value before it.
    write_products(store, 100, ["A", "C"], T0 + 10 * S)
    later = new_changes(store, outbox, T0 + 3 * S, T0 + 60 * S)
    assert [(c.ts - T0) // S for c in later] == [11]
    store.close()
