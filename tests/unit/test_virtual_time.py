"""The tests' virtual-time loop: timers cost no wall time, threads' work costs no virtual time."""

from __future__ import annotations

import asyncio
import time

from tests.support.virtual_time import run_virtual


def test_a_long_sleep_takes_no_wall_time() -> None:
    async def main() -> float:
        await asyncio.sleep(3600)
        return asyncio.get_running_loop().time()

    started = time.monotonic()
    assert run_virtual(main()) == 3600
    assert time.monotonic() - started < 60  # an hour of virtual time, not of the machine's


def test_the_clock_stands_still_while_a_thread_works() -> None:
    async def main() -> tuple[list[str], float]:
        seen: list[str] = []

        async def timer() -> None:
            await asyncio.sleep(0.05)
            seen.append("timer")

        task = asyncio.create_task(timer())
        await asyncio.to_thread(time.sleep, 0.3)  # real work that outlasts the timer's wait
        seen.append(f"thread at {asyncio.get_running_loop().time():.2f}")
        await task
        return seen, asyncio.get_running_loop().time()

    seen, end = run_virtual(main())
    assert seen == ["thread at 0.00", "timer"] and end == 0.05
