"""Failed-login throttle: too many failures for one user name or one client address in a window
and further attempts are refused (HTTP 429) without checking the password."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable


class LoginLimiter:
    """Sliding window per key; keys are "user:<name>" and "ip:<address>"."""

    def __init__(
        self,
        max_failures: int,
        window_s: float,
        ip_factor: int = 4,  # operators of one line may share an address (a NAT, a kiosk)
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_failures = max_failures
        self.window_s = window_s
        self.ip_factor = ip_factor
        self._clock = clock
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _limit(self, key: str) -> int:
        return self.max_failures * (self.ip_factor if key.startswith("ip:") else 1)

    def _recent(self, key: str, now: float) -> deque[float]:
        times = self._failures.get(key, deque())
        while times and times[0] <= now - self.window_s:
            times.popleft()
        if not times:
            self._failures.pop(key, None)
        return times

    def retry_after(self, user: str, ip: str) -> float:
        """Seconds until another attempt is allowed; 0 if allowed now."""
        now = self._clock()
        wait = 0.0
        with self._lock:
            for key in (f"user:{user}", f"ip:{ip}"):
                times = self._recent(key, now)
                if len(times) >= self._limit(key):
                    wait = max(wait, times[-self._limit(key)] + self.window_s - now)
        return wait

    def failed(self, user: str, ip: str) -> None:
        now = self._clock()
        with self._lock:
            for key in (f"user:{user}", f"ip:{ip}"):
                times = self._recent(key, now)
                times.append(now)
                self._failures[key] = times

    def succeeded(self, user: str) -> None:
        # The address keeps its count: one right password must not reset guessing of others.
        with self._lock:
            self._failures.pop(f"user:{user}", None)
