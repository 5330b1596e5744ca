"""One CLI drives a rollout at a time: a lease in the rollout's row, renewed while it runs.

A second `fleet rollout resume` while the first still runs would send every request twice
and race on the state; it is refused, naming the holder. A holder that died (kill -9, a
closed laptop) frees the lease when it expires, or at once when it ran on this machine and its
process is gone.
"""

from __future__ import annotations

import os
import socket
import time

import sqlalchemy as sa

from factory_common.errors import FleetError
from fleet.store.schema import rollouts

LEASE_S = 30.0


class LeaseHeld(FleetError, RuntimeError):
    """Another CLI is driving the rollout; `holder` names it ("who@host:pid")."""

    def __init__(self, message: str, holder: str) -> None:
        super().__init__(message)
        self.holder = holder


def driver_name(operator: str) -> str:
    return f"{operator}@{socket.gethostname()}:{os.getpid()}"


def _dead_here(holder: str) -> bool:
    """The holder ran on this machine and its process no longer exists."""
    host, _, pid = holder.rpartition("@")[2].rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def take(engine: sa.Engine, rollout_id: str, driver: str, now: float | None = None) -> None:
    """Take or renew the lease; raise LeaseHeld naming the live holder."""
    now = time.time() if now is None else now
    row = rollouts.c
    free = sa.or_(row.driver.is_(None), row.driver == driver, row.driver_until < now)
    with engine.begin() as conn:
        done = conn.execute(
            rollouts.update()
            .where(row.id == rollout_id, free)
            .values(driver=driver, driver_until=now + LEASE_S)
        )
        if done.rowcount:
            return
        holder = conn.execute(
            sa.select(row.driver, row.driver_until).where(row.id == rollout_id)
        ).first()
        if holder is None:
            raise KeyError(f"no rollout {rollout_id!r}: see `fleet rollout status`")
        if _dead_here(holder.driver):
            conn.execute(
                rollouts.update()
                .where(row.id == rollout_id, row.driver == holder.driver)
                .values(driver=driver, driver_until=now + LEASE_S)
            )
            return
    raise LeaseHeld(
        f"rollout {rollout_id} is being driven by {holder.driver} (lease until "
        f"{time.strftime('%H:%M:%S', time.localtime(holder.driver_until))}): pause, abort or "
        "roll it back from here (the running CLI applies it), or resume once it has stopped",
        holder.driver,
    )


def release(engine: sa.Engine, rollout_id: str, driver: str) -> None:
    with engine.begin() as conn:
        conn.execute(
            rollouts.update()
            .where(rollouts.c.id == rollout_id, rollouts.c.driver == driver)
            .values(driver=None, driver_until=0.0)
        )
