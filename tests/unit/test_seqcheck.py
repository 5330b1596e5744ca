"""The seq-jump check: a batch claiming seqs its gateway cannot have issued yet is refused."""

from __future__ import annotations

from pathlib import Path

import pytest
from structlog.testing import capture_logs

from edge_node.config import parse_edge_config
from edge_node.ingest import Incoming, Ingest
from edge_node.seqcheck import (
    CLOCK_AHEAD_S,
    MAX_RATE,
    STATUS_GAP_S,
    Known,
    SeqCheck,
    bound,
)
from edge_node.store import Store
from factory_common.wire import (
    WIRE_VERSION,
    Batch,
    GatewayStatus,
    Reading,
    data_topic,
    encode,
    status_topic,
)

S = 1_000_000_000  # ns
NOW = 1_780_000_000 * S  # an edge clock reading (2026)
HEADROOM = MAX_RATE * STATUS_GAP_S  # what a gateway can issue between status and batch
TOP = 2**63 - 1  # the highest seq the wire carries


def test_the_bound_is_the_known_seq_plus_what_could_be_issued_since() -> None:
    known = Known(5_000, NOW)
    assert bound(known, NOW) == 5_000 + HEADROOM
    assert bound(known, NOW + 10 * S) == 5_000 + HEADROOM + 10 * MAX_RATE
    # The edge's clock stepped back: no less than at the moment it learned the seq.
    assert bound(known, NOW - 3600 * S) == 5_000 + HEADROOM


def test_a_batch_within_the_bound_passes_and_one_beyond_is_refused() -> None:
    check = SeqCheck()
    check.status("gw1", ts=NOW, last_seq=1_000, now=NOW)
    assert check.batch("gw1", 1_000 + HEADROOM, NOW) is None  # the extreme that still fits
    jump = check.batch("gw1", 1_000 + 2 * HEADROOM + 1, NOW)
    assert jump is not None and jump.bound == 1_000 + 2 * HEADROOM
    assert jump.known == Known(1_000 + HEADROOM, NOW)  # raised by the batch let through
    # A refused batch teaches nothing: the same claim is refused again.
    assert check.batch("gw1", 1_000 + 2 * HEADROOM + 1, NOW) is not None


def test_the_top_of_the_seq_space_is_refused_and_going_back_is_not_a_jump() -> None:
    check = SeqCheck()
    check.status("gw1", ts=NOW, last_seq=TOP - HEADROOM, now=NOW)
    assert check.batch("gw1", TOP, NOW) is None  # a gateway really near the top
    assert check.batch("gw1", 0, NOW) is None  # seqs below the known ones: a backlog, not a jump
    other = SeqCheck()
    other.status("gw2", ts=NOW, last_seq=0, now=NOW)
    assert other.batch("gw2", TOP, NOW) is not None


def test_without_a_status_the_ledger_bounds_it_and_with_neither_the_seq_seeding_does() -> None:
    check = SeqCheck()
    check.seed("gw1", Known(70, NOW - 60 * S))  # only the stored ledger: last heard 60 s ago
    assert check.batch("gw1", 70 + HEADROOM + 60 * MAX_RATE, NOW) is None
    check.seed("gw2", None)  # nothing stored at all: first contact
    assert check.known("gw2") is None
    # A new buffer starts its seqs at the gateway's clock in microseconds: above that (beyond
    # the clock skew allowed) no gateway can be yet.
    assert check.batch("gw2", NOW // 1000, NOW) is None
    fresh = SeqCheck()
    assert fresh.batch("gw3", NOW // 1000 + CLOCK_AHEAD_S * 1_000_000 + 1, NOW) is not None
    assert fresh.batch("gw3", TOP, NOW) is not None


def test_a_last_will_says_nothing_and_an_idle_gateways_status_renews_the_bound() -> None:
    check = SeqCheck()
    check.status("gw1", ts=NOW, last_seq=500, now=NOW)
    check.status("gw1", ts=0, last_seq=0, now=NOW + S)  # the broker's last will: no counters
    assert check.known("gw1") == Known(500, NOW)
    # An hour later an idle gateway still says 500: it issued nothing meanwhile.
    later = NOW + 3600 * S
    check.status("gw1", ts=later, last_seq=500, now=later)
    assert check.batch("gw1", 500 + HEADROOM + 1, later) is not None
    # An older status (queued in the broker) does not lower what is known.
    check.status("gw1", ts=NOW, last_seq=100, now=later)
    assert check.known("gw1") == Known(500, later)


def test_a_new_boot_with_a_new_buffer_is_let_through_after_its_status() -> None:
    """A lost buffer file restarts the counter at the gateway's clock in us: far above the old
    seqs. The new boot's status comes first on connect; until it does, its batches are early."""
    check = SeqCheck()
    check.status("gw1", ts=NOW, last_seq=1_000, now=NOW)
    reseeded = NOW // 1000 + 5_000_000
    early = check.batch("gw1", reseeded + 10, NOW + S)
    assert early is not None  # the new boot's status was not seen yet: refused, sent again
    check.status("gw1", ts=NOW + 2 * S, last_seq=reseeded + 10, now=NOW + 2 * S)
    assert check.batch("gw1", reseeded + 10, NOW + 2 * S) is None  # the re-send is stored


# ------------------------------------------------------------------ in ingest


@pytest.fixture
def ingest(tmp_path: Path):
    store = Store(tmp_path / "ts.sqlite")
    yield Ingest(parse_edge_config("edge: {id: e}\n"), store)
    store.close()


def _batch(first: int, boot: str = "b", n: int = 1) -> Incoming:
    readings = [Reading(device="d", tag="t", ts=first + i, value=1.0) for i in range(n)]
    message = Batch(WIRE_VERSION, "gw1", boot, first, first + n - 1, readings)
    return Incoming(1, data_topic("gw1"), encode(message), 1, 1)


def _status(last_seq: int) -> Incoming:
    message = GatewayStatus(WIRE_VERSION, "gw1", True, ts=NOW, last_seq=last_seq)
    return Incoming(1, status_topic("gw1"), encode(message), 1, 1)


def test_ingest_refuses_a_jump_counts_it_per_gateway_and_logs_once_per_boot(
    ingest: Ingest,
) -> None:
    forged = 10**15 + 10**12  # gw1 is at 1,000: a thousand billion seqs ahead
    items = [_status(1_000), _batch(990, n=11)]
    items += [_batch(forged, boot) for boot in ("x", "x", "y")]
    items += [_batch(1_001)]
    with capture_logs() as logs:
        batches, statuses, _ = ingest._decode_all(items)
    assert [b.first_seq for b in batches] == [990, 1_001] and len(statuses) == 1
    assert ingest.stats.as_dict()["rejected"] == {"gw1": {"seq_jump": 3}}
    logged = [entry for entry in logs if entry["event"] == "seq_jump_refused"]
    assert [(entry["boot"], entry["known_seq"]) for entry in logged] == [("x", 1_000), ("y", 1_000)]


def test_ingest_takes_what_is_known_from_the_store_after_a_restart(tmp_path: Path) -> None:
    store = Store(tmp_path / "ts.sqlite")
    try:
        status = GatewayStatus(WIRE_VERSION, "gw1", True, ts=NOW, last_seq=2_000)
        reading = Reading(device="d", tag="t", ts=1, value=1.0)
        store.write([Batch(WIRE_VERSION, "gw1", "b", 50, 50, [reading])], [status])
        restarted = Ingest(parse_edge_config("edge: {id: e}\n"), store)
        batches, _, _ = restarted._decode_all([_batch(2**62)])
        assert batches == []
        assert restarted.stats.rejected[("gw1", "seq_jump")] == 1
        known = restarted.seqs.known("gw1")
        assert known is not None and known.seq == 2_000
    finally:
        store.close()
