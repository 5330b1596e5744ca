"""Alarm lifecycle, de-duplication, persistence, live push; SPC monitoring raises and clears."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_node.alarms import (
    AlarmChange,
    AlarmError,
    AlarmService,
    Feed,
    LimitsEntry,
    Monitor,
    StaticLimits,
)
from factory_common.wire import Batch, Quality, Reading


@pytest.fixture
def alarms(tmp_path: Path) -> AlarmService:
    service = AlarmService(tmp_path / "alarms.sqlite")
    yield service
    service.close()


def test_lifecycle_raised_acknowledged_cleared(alarms: AlarmService) -> None:
    alarm = alarms.raise_("gw/bath1/temp", "spc.rule1", "too hot", value=31.5, ts=100)
    assert (alarm.state, alarm.active, alarm.value, alarm.raised_at) == ("raised", True, 31.5, 100)
    acked = alarms.acknowledge(alarm.id, "olga")
    assert (acked.state, acked.acked_by) == ("acknowledged", "olga")
    assert acked.acked_at is not None
    again = alarms.acknowledge(alarm.id, "piet")  # idempotent: the first who/when stays
    assert (again.acked_by, again.acked_at) == ("olga", acked.acked_at)
    cleared = alarms.clear(alarm.id, by="monitor")
    assert (cleared.state, cleared.cleared_by, cleared.active) == ("cleared", "monitor", False)
    assert alarms.active() == []


def test_cleared_before_acknowledged_stays_until_acknowledged(alarms: AlarmService) -> None:
    alarm = alarms.raise_("s", "r", "m")
    assert alarms.clear(alarm.id).state == "cleared_unacked"
    assert [a.id for a in alarms.unacknowledged()] == [alarm.id]
    assert alarms.acknowledge(alarm.id, "olga").state == "cleared"
    assert alarms.unacknowledged() == []


def test_one_active_alarm_per_source_and_rule(alarms: AlarmService) -> None:
    first = alarms.raise_("s", "r", "once", value=1)
    second = alarms.raise_("s", "r", "twice", value=2)
    other = alarms.raise_("s", "other", "m")
    assert second.id == first.id and second.count == 2 and second.value == 2
    assert other.id != first.id
    alarms.clear(first.id)
    third = alarms.raise_("s", "r", "after clear")
    assert third.id not in (first.id, other.id) and third.count == 1
    assert {a.id for a in alarms.active()} == {third.id, other.id}


def test_unknown_id_is_an_error(alarms: AlarmService) -> None:
    with pytest.raises(AlarmError, match="no alarm with id 99"):
        alarms.acknowledge(99, "olga")


def test_alarms_survive_a_restart(tmp_path: Path) -> None:
    service = AlarmService(tmp_path / "a.sqlite")
    alarm = service.raise_("s", "r", "m", details={"side": "high"})
    service.acknowledge(alarm.id, "olga")
    service.close()
    reopened = AlarmService(tmp_path / "a.sqlite")
    (found,) = reopened.active()
    assert (found.id, found.state, found.acked_by, found.details) == (
        alarm.id, "acknowledged", "olga", {"side": "high"},
    )  # fmt: skip
    assert reopened.raise_("s", "r", "m").id == alarm.id  # still de-duplicated
    reopened.close()


def test_history_filters_by_time_and_source(alarms: AlarmService) -> None:
    a = alarms.raise_("s1", "r", "m", ts=10)
    b = alarms.raise_("s2", "r", "m", ts=20)
    assert [x.id for x in alarms.history(since=0)] == [b.id, a.id]
    assert [x.id for x in alarms.history(since=15)] == [b.id]
    assert [x.id for x in alarms.history(source="s1")] == [a.id]


async def test_subscribers_see_every_change_in_order(alarms: AlarmService) -> None:
    seen: list[AlarmChange] = []

    async def listen() -> None:
        async for change in alarms.subscribe():
            seen.append(change)
            if len(seen) == 3:
                return

    task = asyncio.create_task(listen())
    await asyncio.sleep(0)  # let the subscriber register
    alarm = alarms.raise_("s", "r", "m")
    alarms.raise_("s", "r", "m")  # a repeat is not a change
    alarms.acknowledge(alarm.id, "olga")
    await asyncio.to_thread(alarms.clear, alarm.id)  # from a worker thread, as sync routes do
    await asyncio.wait_for(task, 2)
    assert [(c.kind, c.alarm.id) for c in seen] == [
        ("raised", alarm.id), ("acknowledged", alarm.id), ("cleared", alarm.id),
    ]  # fmt: skip
    assert seen[-1].alarm.state == "cleared"


class Outbox:
    def __init__(self) -> None:
        self.items: dict[str, tuple[str, dict]] = {}

    def add(self, kind: str, payload: dict, key: str) -> None:
        self.items[key] = (kind, payload)


def test_changes_go_to_the_cloud_outbox(tmp_path: Path) -> None:
    outbox = Outbox()
    service = AlarmService(tmp_path / "a.sqlite", outbox=outbox)
    alarm = service.raise_("s", "r", "m")
    service.clear(alarm.id)
    service.acknowledge(alarm.id, "olga")
    assert list(outbox.items) == [f"alarm-{alarm.id}"]  # the cloud keeps the newest state
    kind, payload = outbox.items[f"alarm-{alarm.id}"]
    assert (kind, payload["state"], payload["series"], payload["acknowledged_by"]) == (
        "alarm", "cleared", "s", "olga",
    )  # fmt: skip
    service.close()


# ---------------------------------------------------------------- monitoring


def batch(values: list[float | str], tag: str = "temp", start_ts: int = 1, seq: int = 0) -> Batch:
    readings = [
        Reading("bath1", tag, start_ts + i, v) for i, v in enumerate(values)
    ]  # one reading per ns
    return Batch(1, "gw", "boot", seq, seq + len(readings) - 1, readings)


def monitor_for(alarms: AlarmService) -> Monitor:
    limits = StaticLimits({"gw/bath1/temp": LimitsEntry(mean=20.0, sigma=1.0, usl=24.0)})
    return Monitor(alarms, limits, Feed("monitor", depth=2))


def test_monitor_raises_and_clears_spc_alarms(alarms: AlarmService) -> None:
    monitor = monitor_for(alarms)
    monitor.process([batch([20.0, 23.5, 20.0])])  # rule 1 at the 2nd point, gone at the 3rd
    (alarm,) = alarms.history()
    assert (alarm.source, alarm.rule, alarm.state, alarm.value) == (
        "gw/bath1/temp", "spc.rule1", "cleared_unacked", 23.5,
    )  # fmt: skip
    monitor.process([batch([25.0, 25.5], start_ts=10, seq=3)])  # spec + rule1 + rule2, held
    active = {a.rule for a in alarms.active()}
    assert active == {"spc.spec", "spc.rule1", "spc.rule2"}
    assert alarms.find_active("gw/bath1/temp", "spc.rule1").count == 1  # not once per point


def test_monitor_skips_redelivered_bad_and_unlimited_readings(alarms: AlarmService) -> None:
    monitor = monitor_for(alarms)
    monitor.process([batch([20.0, 20.1])])
    monitor.process([batch([30.0, 30.0])])  # same timestamps again: a redelivery
    bad = Reading("bath1", "temp", 50, 99.0, quality=Quality.BAD)
    monitor.process([Batch(1, "gw", "b", 9, 9, [bad])])
    monitor.process([batch([99.0], tag="pressure", start_ts=60, seq=10)])  # no limits
    assert alarms.history() == [] and monitor.checked == 2


def test_monitor_resumes_active_alarms_after_a_restart(alarms: AlarmService) -> None:
    monitor_for(alarms).process([batch([30.0])])
    assert {a.rule for a in alarms.active()} == {"spc.spec", "spc.rule1"}
    monitor_for(alarms).process([batch([20.0], start_ts=5, seq=1)])  # a new process
    assert alarms.active() == []


async def test_feed_is_bounded_and_counts_drops() -> None:
    feed = Feed("x", depth=1)
    feed.offer([batch([1.0, 2.0])])
    feed.offer([batch([3.0], seq=2), batch([4.0], seq=3)])
    assert feed.stats() | {} == {
        "queued": 1, "offered": 2, "dropped_batches": 2, "dropped_readings": 2,
    }  # fmt: skip
    assert len((await feed.get())[0].readings) == 2


# ---------------------------------------------------------------- invariants

operations = st.lists(
    st.tuples(
        st.sampled_from(["raise", "ack", "clear"]),
        st.sampled_from(["s1", "s2"]),
        st.sampled_from(["r1", "r2"]),
    ),
    max_size=30,
)


@settings(max_examples=50, deadline=None)
@given(operations)
def test_any_sequence_keeps_one_active_alarm_per_source_and_rule(ops: list) -> None:
    service = AlarmService(Path(":memory:"))
    try:
        for op, source, rule in ops:
            found = service.find_active(source, rule)
            if op == "raise":
                service.raise_(source, rule, "m")
            elif found is not None and op == "ack":
                service.acknowledge(found.id, "olga")
            elif found is not None:
                service.clear(found.id)
        active = service.active()
        assert len({(a.source, a.rule) for a in active}) == len(active)
        for alarm in service.history():
            assert alarm.state in {"raised", "acknowledged", "cleared_unacked", "cleared"}
            assert (alarm.acked_at is None) == (alarm.acked_by is None)
            assert alarm.cleared_at is None or alarm.cleared_at >= alarm.raised_at
        raises = sum(1 for op, *_ in ops if op == "raise")
        assert sum(a.count for a in service.history()) == raises  # every raise counted once
    finally:
        service.close()


async def test_end_subscriptions_finishes_streams_at_shutdown(alarms: AlarmService) -> None:
    seen: list[str] = []

    async def listen() -> None:
        async for change in alarms.subscribe():
            seen.append(change.kind)

    task = asyncio.create_task(listen())
    await asyncio.sleep(0)
    alarms.raise_("s", "r", "m")
    alarms.end_subscriptions()
    await asyncio.wait_for(task, 2)  # ends, after delivering what was queued
    assert seen == ["raised"]
    assert [c async for c in alarms.subscribe()] == []  # later subscriptions end at once


async def test_a_replica_follows_changes_another_process_made(tmp_path: Path) -> None:
    writer = AlarmService(tmp_path / "shared.sqlite")  # the ingest process
    replica = AlarmService(tmp_path / "shared.sqlite")  # an API replica on the same file
    seen: list[tuple[str, int]] = []

    async def listen() -> None:
        async for change in replica.subscribe():
            seen.append((change.kind, change.alarm.id))

    follower = asyncio.create_task(replica.follow(interval=0.02))
    listener = asyncio.create_task(listen())
    try:
        await asyncio.sleep(0.05)
        alarm = writer.raise_("s", "r", "m")
        replica.acknowledge(alarm.id, "olga")  # the replica's own change: published once
        writer.clear(alarm.id)
        async with asyncio.timeout(2):
            while len(seen) < 3:  # noqa: ASYNC110 - the follower polls the file
                await asyncio.sleep(0.02)
        await asyncio.sleep(0.1)
    finally:
        follower.cancel()
        listener.cancel()
        await asyncio.gather(follower, listener, return_exceptions=True)
        writer.close()
        replica.close()
    # Each change once (the replica's own acknowledgement is not echoed by the follower).
    expected = [("acknowledged", alarm.id), ("cleared", alarm.id), ("raised", alarm.id)]
    assert sorted(seen) == expected
