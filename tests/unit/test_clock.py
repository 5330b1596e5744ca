"""Clock trust: NTP synchronisation from the kernel, and wall-clock jumps flagged per poll."""

from __future__ import annotations

import asyncio
import shutil
import subprocess

from structlog.testing import capture_logs

from factory_common.wire import Quality, Reading
from gateway_image.firmware import clock
from gateway_image.firmware.clock import (
    MAX_ERROR_US,
    STA_UNSYNC,
    TIME_ERROR,
    ClockWatch,
    _SyncCache,
    kernel_ntp_synced,
    synced_from_timex,
)
from gateway_image.firmware.runner import Backoff, ConnectorRunner


def test_kernel_state_is_read_like_systemd() -> None:
    assert synced_from_timex(0, 0, 1000)  # TIME_OK, synchronised, 1 ms max error
    assert not synced_from_timex(TIME_ERROR, 0, 1000)
    assert not synced_from_timex(-1, 0, 1000)  # the call itself failed
    assert not synced_from_timex(0, STA_UNSYNC | 0x1, 1000)
    assert not synced_from_timex(0, 0, MAX_ERROR_US)


def test_real_adjtimex_answers_and_agrees_with_timedatectl_where_it_runs() -> None:
    synced = kernel_ntp_synced()
    assert isinstance(synced, bool)  # this is Linux: adjtimex is always there
    tool = shutil.which("timedatectl")
    if tool is None:
        return
    out = subprocess.run(
        [tool, "show", "-p", "NTPSynchronized", "--value"], capture_output=True, text=True
    )
    if out.returncode == 0 and out.stdout.strip() in ("yes", "no"):
        assert synced == (out.stdout.strip() == "yes")


def test_unknown_sync_state_reads_false_and_is_cached() -> None:
    calls: list[int] = []

    def source() -> bool | None:
        calls.append(1)
        return None

    cache = _SyncCache(source)
    assert cache.get() is False
    assert cache.get() is False
    assert len(calls) == 1  # asked once per CACHE_SECONDS, not per batch
    assert isinstance(clock.clock_synced(), bool)


class FakeClock:
    def __init__(self) -> None:
        self.wall, self.mono = 1_700_000_000.0, 100.0

    def advance(self, seconds: float, jump: float = 0.0) -> None:
        self.mono += seconds
        self.wall += seconds + jump


def watch(fake: FakeClock, threshold: float = 1.0) -> ClockWatch:
    return ClockWatch(threshold, wall=lambda: fake.wall, mono=lambda: fake.mono)


def test_jumps_over_the_threshold_are_reported_with_their_size_and_counted() -> None:
    fake = FakeClock()
    w = watch(fake)
    assert w.check() is None  # first observation: nothing to compare with
    fake.advance(1.0, jump=0.005)  # an NTP slew: not a jump
    assert w.check() is None
    fake.advance(1.0, jump=3600.0)  # first sync after a boot without RTC
    assert w.check() == 3600.0
    fake.advance(1.0, jump=-5.0)  # the clock went back
    assert w.check() == -5.0
    fake.advance(1.0)
    assert w.check() is None
    assert w.jumps == 2


class Poller:
    name = "p"

    def __init__(self, fake: FakeClock) -> None:
        self.fake = fake
        self.polls = 0

    async def open(self) -> None:
        return None

    async def poll(self) -> list[Reading]:
        self.polls += 1
        self.fake.advance(0.05, jump=10.0 if self.polls == 3 else 0.0)
        return [Reading("d", "ok", self.polls, 1.0), Reading("d", "bad", 1, None, Quality.BAD)]

    async def close(self) -> None:
        return None


async def test_runner_flags_the_cycle_of_a_jump_and_counts_it_in_health() -> None:
    fake = FakeClock()
    got: list[list[Reading]] = []
    five = asyncio.Event()

    async def sink(readings: list[Reading]) -> None:
        got.append(readings)
        if len(got) >= 5:
            five.set()

    poller = Poller(fake)
    r = ConnectorRunner(
        poller,
        sink,
        gateway="gw",
        connector_type="t",
        interval=0.02,
        backoff=Backoff(0.01, 0.02),
        clock=watch(fake),
    )
    with capture_logs() as logs:
        task = asyncio.create_task(r.run())
        await asyncio.wait_for(five.wait(), 5)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    flagged = [i for i, batch in enumerate(got) if batch[0].quality is Quality.UNCERTAIN]
    assert flagged == [2]  # only the third poll, the one during which the clock jumped
    assert got[2][0].reason == "clock_jump"
    assert got[2][1].quality is Quality.BAD  # bad stays bad
    assert r.health().clock_jumps == 1
    assert [e["jump_s"] for e in logs if e["event"] == "clock_jump"] == [10.0]
