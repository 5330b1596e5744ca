"""Trustworthy gateway timestamps: is the clock NTP-synchronised, and did it just jump?

Synchronisation comes from the kernel (adjtimex(2) with no modes set: read-only, needs no
privilege), the same source `timedatectl show -p NTPSynchronized` uses, and it covers
systemd-timesyncd, chrony and ntpd alike. Where adjtimex is unavailable the answer is False:
an unknown clock must not be presented as a trusted one.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import time
from collections.abc import Callable

TIME_ERROR = 5  # adjtimex return value: clock not synchronised
STA_UNSYNC = 0x0040
# Kernel maxerror is in microseconds; systemd treats >= 16 s as "not synchronised".
MAX_ERROR_US = 16_000_000
CACHE_SECONDS = 5.0


class _Timex(ctypes.Structure):
    # struct timex from <sys/timex.h>; c_long matches the kernel's long on 32 and 64 bit.
    _fields_ = [
        ("modes", ctypes.c_uint),
        ("offset", ctypes.c_long),
        ("freq", ctypes.c_long),
        ("maxerror", ctypes.c_long),
        ("esterror", ctypes.c_long),
        ("status", ctypes.c_int),
        ("constant", ctypes.c_long),
        ("precision", ctypes.c_long),
        ("tolerance", ctypes.c_long),
        ("time_sec", ctypes.c_long),
        ("time_usec", ctypes.c_long),
        ("tick", ctypes.c_long),
        ("ppsfreq", ctypes.c_long),
        ("jitter", ctypes.c_long),
        ("shift", ctypes.c_int),
        ("stabil", ctypes.c_long),
        ("jitcnt", ctypes.c_long),
        ("calcnt", ctypes.c_long),
        ("errcnt", ctypes.c_long),
        ("stbcnt", ctypes.c_long),
        ("tai", ctypes.c_int),
        ("_reserved", ctypes.c_int * 16),  # 11 in the header; spare room costs nothing
    ]


def synced_from_timex(state: int, status: int, maxerror_us: int) -> bool:
    """The kernel's view, read the way systemd reads it."""
    if state < 0 or state == TIME_ERROR:
        return False
    if status & STA_UNSYNC:
        return False
    return maxerror_us < MAX_ERROR_US


def kernel_ntp_synced() -> bool | None:
    """True/False from adjtimex(2); None where it cannot be asked (not Linux, no libc)."""
    path = ctypes.util.find_library("c")
    if path is None:
        return None
    try:
        libc = ctypes.CDLL(path, use_errno=True)
        adjtimex = libc.adjtimex
    except (OSError, AttributeError):
        return None
    tx = _Timex()
    state = adjtimex(ctypes.byref(tx))
    return synced_from_timex(state, tx.status, tx.maxerror)


class _SyncCache:
    def __init__(self, source: Callable[[], bool | None]) -> None:
        self.source = source
        self.value = False
        self.checked_at: float | None = None

    def get(self) -> bool:
        now = time.monotonic()
        if self.checked_at is None or now - self.checked_at >= CACHE_SECONDS:
            self.value = bool(self.source())  # unknown -> False
            self.checked_at = now
        return self.value


_cache = _SyncCache(kernel_ntp_synced)


def clock_synced() -> bool:
    """Whether the gateway clock is NTP-synchronised now (cached for a few seconds)."""
    return _cache.get()


class ClockWatch:
    """Detects wall-clock jumps: wall time moving differently from monotonic time.

    Call `check()` once per poll cycle. NTP slews of a few ms per second stay far below the
    threshold; a step (NTP first sync after boot with no RTC, a manual `date -s`, a VM
    resume) shows up as a jump of its size, in seconds (negative: the clock went back).
    """

    def __init__(
        self,
        threshold: float = 1.0,
        wall: Callable[[], float] = time.time,
        mono: Callable[[], float] = time.monotonic,
    ) -> None:
        self.threshold = threshold
        self.jumps = 0
        self._wall, self._mono = wall, mono
        self._last: tuple[float, float] | None = None

    def check(self) -> float | None:
        """The jump since the previous call, in seconds, if larger than the threshold."""
        wall, mono = self._wall(), self._mono()
        last, self._last = self._last, (wall, mono)
        if last is None:
            return None
        jump = (wall - last[0]) - (mono - last[1])
        if abs(jump) <= self.threshold:
            return None
        self.jumps += 1
        return jump
