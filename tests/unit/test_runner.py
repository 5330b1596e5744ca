"""Connector runner: schedule without drift, overruns, timeouts, back-off, isolation, health."""

from __future__ import annotations

import asyncio
import random

import pytest
from structlog.testing import capture_logs

from factory_common.wire import Quality, Reading
from gateway_image.firmware.connectors.base import ConnectorError, Emit
from gateway_image.firmware.runner import Backoff, ConnectorRunner, _Health
from tests.support.virtual_time import run_virtual

FAST = Backoff(initial=0.01, cap=0.05)


class Poller:
    """A PollingConnector whose behaviour each test scripts: duration, failures, readings."""

    def __init__(self, name: str = "p", duration: float = 0.0) -> None:
        self.name = name
        self.duration = duration
        self.opens = self.closes = 0
        self.starts: list[float] = []
        self.fail_with: BaseException | None = None
        self.readings = [Reading("d1", "t", 1, 1.0)]

    async def open(self) -> None:
        self.opens += 1

    async def poll(self) -> list[Reading]:
        self.starts.append(asyncio.get_running_loop().time())
        if self.fail_with is not None:
            raise self.fail_with
        await asyncio.sleep(self.duration)
        return list(self.readings)

    async def close(self) -> None:
        self.closes += 1


async def collect(readings: list[Reading]) -> None:
    return None


def runner(connector: object, **kw: object) -> ConnectorRunner:
    kw = {"interval": 0.05, "backoff": FAST} | kw
    return ConnectorRunner(connector, collect, gateway="gw", connector_type="test", **kw)  # type: ignore[arg-type]


async def run_for(seconds: float, *runners: ConnectorRunner) -> None:
    tasks = [asyncio.create_task(r.run()) for r in runners]
    await asyncio.sleep(seconds)
    for task in tasks:
        task.cancel()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert all(isinstance(r, asyncio.CancelledError) for r in results)


def test_fixed_rate_without_drift() -> None:
    poller = Poller(duration=0.02)
    # The runner's own (virtual) clock: a loaded machine's late wake-ups cannot move a tick.
    run_virtual(run_for(0.6, runner(poller)))
    start = poller.starts[0]
    # Each poll starts on the grid start + k * interval: a 20 ms poll adds no drift.
    offsets = [(t - start) / 0.05 for t in poller.starts]
    assert len(offsets) >= 8
    assert all(abs(o - round(o)) < 1e-6 for o in offsets)
    assert round(offsets[-1]) == len(offsets) - 1


def test_overruns_skip_ticks_and_are_counted() -> None:
    poller = Poller(duration=0.12)
    r = runner(poller)
    # On the loop's virtual clock a poll takes exactly its 120 ms whatever the machine's load,
    # so which ticks it misses follows from the schedule alone.
    run_virtual(run_for(0.7, r))
    start = poller.starts[0]
    gaps = [round((b - a) / 0.05) for a, b in zip(poller.starts, poller.starts[1:], strict=False)]
    # A 120 ms poll on a 50 ms schedule starts on every third tick; missed ticks are skipped.
    assert len(poller.starts) == 5 and all(g == 3 for g in gaps)
    # Each finished poll (all but the one cut off at 0.7 s) missed two ticks.
    assert r.overruns == 2 * len(gaps)
    assert all(abs((t - start) / 0.05 - round((t - start) / 0.05)) < 1e-6 for t in poller.starts)


async def test_health_carries_connector_counters_and_overruns() -> None:
    poller = Poller(duration=0.12)
    poller.counters = {"crc_errors": 3}  # type: ignore[attr-defined]
    r = runner(poller)
    await run_for(0.4, r)
    counters = r.health().counters
    assert counters["crc_errors"] == 3
    assert counters["poll_overruns"] == r.overruns > 0


async def test_hanging_poll_times_out_and_reconnects() -> None:
    poller = Poller(duration=10)
    r = runner(poller, poll_timeout=0.05)
    with capture_logs() as logs:
        await run_for(0.4, r)
    health = r.health()
    assert health.state == "down" and "did not finish within 0.05s" in health.last_error
    assert poller.opens >= 2 and poller.closes >= 2 and health.errors >= 2
    assert [e["event"] for e in logs].count("connector unavailable") == 1


async def test_crashing_connector_does_not_disturb_others() -> None:
    bad, good = Poller("bad"), Poller("good")
    bad.fail_with = KeyError("boom")
    r_bad, r_good = runner(bad), runner(good)
    with capture_logs() as logs:
        await run_for(0.5, r_bad, r_good)
    assert r_bad.health().state == "down" and "KeyError" in r_bad.health().last_error
    assert r_good.health().state == "up" and r_good.health().polls >= 8
    down = [e for e in logs if e["event"] == "connector unavailable"]
    assert [e["connector"] for e in down] == ["bad"]
    assert "exc_info" in down[0]  # a bug is logged with its traceback, once


async def test_recovery_logged_once_and_backoff_resets() -> None:
    poller = Poller()
    poller.fail_with = ConnectorError("link down")
    r = runner(poller)
    with capture_logs() as logs:
        task = asyncio.create_task(r.run())
        await asyncio.sleep(0.2)
        assert r.state == "down" and r.backoff.attempt >= 2
        poller.fail_with = None
        await asyncio.sleep(0.3)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    events = [e["event"] for e in logs]
    assert events.count("connector unavailable") == 1
    assert events.count("connector recovered") == 1
    assert r.state == "up" and r.backoff.attempt == 0


async def test_device_health_from_reading_quality() -> None:
    poller = Poller()
    poller.readings = [
        Reading("d1", "a", 1, 1),
        Reading("d1", "b", 1, None, Quality.BAD, "exception 2"),
        Reading("d2", "a", 1, None, Quality.BAD, "unit 2 did not respond"),
        Reading("d3", "a", 5, 3),
    ]
    r = runner(poller)
    with capture_logs() as logs:
        await run_for(0.2, r)
    health = r.health()
    assert health.state == "degraded"
    assert health.devices["d1"].state == "degraded"
    assert health.devices["d2"].state == "down"
    assert health.devices["d2"].last_error == "unit 2 did not respond"
    assert health.devices["d3"].state == "up" and health.devices["d3"].last_success == 5
    assert health.readings == 4 * health.polls
    assert [e["device"] for e in logs if e["event"] == "device unavailable"] == ["d2"]


def test_one_device_batches_go_up_degraded_and_down() -> None:
    """A batch of one device (most polls) takes its own path through the health record."""
    h = _Health("c", "modbus_tcp")
    good, bad = Reading("d", "a", 7, 1), Reading("d", "b", 9, None, Quality.BAD, "exception 2")
    assert h.record([good, good]) == [("d", "starting", h.devices["d"])]
    assert (h.devices["d"].state, h.devices["d"].last_success, h.all_good) == ("up", 7, True)
    h.record([good, bad])
    assert (h.devices["d"].state, h.devices["d"].last_success, h.all_good) == ("degraded", 9, False)
    h.record([bad])
    assert (h.devices["d"].state, h.devices["d"].last_success) == ("down", 9)
    assert h.devices["d"].errors == 2 and h.devices["d"].last_error == "exception 2"
    assert h.readings == 5


class Streamer:
    """A StreamingConnector that fails on its first run, then emits and waits."""

    def __init__(self, quiet: bool = False) -> None:
        self.name = "s"
        self.runs = 0
        self.quiet = quiet

    async def run(self, emit: Emit) -> None:
        self.runs += 1
        if self.runs == 1 and not self.quiet:
            raise ConnectorError("port vanished")
        if not self.quiet:
            await emit([Reading("scanner", "code", 1, "ABC")])
        await asyncio.Event().wait()


async def test_streaming_connector_restarted_with_backoff() -> None:
    got: list[Reading] = []

    async def sink(readings: list[Reading]) -> None:
        got.extend(readings)

    streamer = Streamer()
    r = ConnectorRunner(streamer, sink, gateway="gw", connector_type="serial", backoff=FAST)
    await run_for(0.3, r)
    assert streamer.runs == 2
    assert [g.value for g in got] == ["ABC"]
    assert r.health().state == "up" and r.health().errors == 1


async def test_quiet_stream_counts_as_up_after_settling() -> None:
    r = runner(Streamer(quiet=True), settle=0.05)
    await run_for(0.2, r)
    assert r.state == "up"


async def test_failing_sink_is_not_a_device_failure() -> None:
    async def broken(readings: list[Reading]) -> None:
        raise OSError("disk full")

    poller = Poller()
    r = ConnectorRunner(poller, broken, gateway="gw", connector_type="t", interval=0.05)
    with capture_logs() as logs:
        await run_for(0.3, r)
    assert r.state == "up" and poller.opens == 1
    assert r.health().last_error == "sink: disk full"
    assert [e["event"] for e in logs].count("sink refused readings") == 1


@pytest.mark.parametrize("seed", range(5))
def test_backoff_grows_with_jitter_and_caps(seed: int) -> None:
    b = Backoff(initial=0.5, cap=30.0, rng=random.Random(seed))
    delays = [b.next_delay() for _ in range(12)]
    for n, delay in enumerate(delays):
        base = min(30.0, 0.5 * 2**n)
        assert base / 2 <= delay <= base
    assert max(delays) <= 30.0
    b.reset()
    assert b.next_delay() <= 0.5


async def test_going_down_sends_one_bad_reading_per_tag_once_per_outage() -> None:
    poller = Poller()
    poller.readings = [Reading("d1", "t", 1, 1.0), Reading("d2", "streamed", 1, 5)]
    got: list[Reading] = []

    async def sink(readings: list[Reading]) -> None:
        got.extend(readings)

    r = ConnectorRunner(poller, sink, gateway="gw", connector_type="test", interval=0.02,
                        backoff=FAST, tags=[("d1", "t"), ("d1", "configured")])  # fmt: skip

    async def until(condition: object) -> None:
        async with asyncio.timeout(30):
            while not condition():  # type: ignore[operator]  # noqa: ASYNC110 - polled state
                await asyncio.sleep(0.01)

    task = asyncio.create_task(r.run())
    try:
        await until(lambda: len(got) >= 2)
        poller.fail_with = ConnectorError("no route to host")
        await until(lambda: r.backoff.attempt >= 3)  # failed again and again: still one notice
        bad = [x for x in got if x.quality is Quality.BAD]
        assert sorted((x.device, x.tag) for x in bad) == [
            ("d1", "configured"),
            ("d1", "t"),
            ("d2", "streamed"),
        ]
        assert all(x.value is None and x.reason == "connector down: no route to host" for x in bad)
        poller.fail_with = None
        seen = len(got)
        await until(lambda: any(x.quality is Quality.GOOD for x in got[seen:]))
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
