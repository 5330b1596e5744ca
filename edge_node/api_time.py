"""Time parameters of the HTTP API: parsed and range-checked where they enter, in one place.

The store holds epoch nanoseconds in signed 64-bit integers, never before the epoch: a time
outside that is refused with a 422 naming the parameter and the valid range, rather than
failing deep in the store with an OverflowError (a 500).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import HTTPException, Query

MS = 1_000_000  # ns per ms
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MAX_NS = 2**63 - 1
# Times the store can hold: epoch ns in a signed 64-bit integer, never before the epoch.
MIN_MS = 0
MAX_MS = MAX_NS // MS
TIME_RANGE = f"epoch ms {MIN_MS}..{MAX_MS} or ISO 8601 1970-01-01T00:00:00Z..2262-04-11T23:47:16Z"
# An epoch-ms query parameter; give it to ms_to_ns, which checks the range (FastAPI's own
# ge/le error would name only the bound that was crossed).
EpochMs = Annotated[int | None, Query(description=f"epoch ms, {MIN_MS}..{MAX_MS}")]


def ms_to_ns(value: int | None, what: str) -> int:
    """An EpochMs parameter (None: the epoch) -> epoch ns, or a 422 naming the valid range."""
    if value is None:
        return 0
    if not MIN_MS <= value <= MAX_MS:
        shown = str(value) if len(str(value)) <= 40 else str(value)[:40] + "..."
        raise HTTPException(422, f"{what}={shown} is out of range: give {TIME_RANGE}")
    return value * MS


def parse_time(text: str | None, default_ms: int, what: str) -> int:
    """Epoch milliseconds or ISO 8601 (naive means UTC) -> epoch ns, within TIME_RANGE;
    anything else is a 422 that names the parameter and the valid range."""
    if text is None or text == "":
        return max(MIN_MS, min(default_ms, MAX_MS)) * MS
    stripped = text.strip()
    shown = repr(text if len(text) <= 40 else text[:40] + "...")
    try:
        if stripped.lstrip("-").isdigit():
            ns = int(stripped) * MS
        else:
            moment = datetime.fromisoformat(stripped.replace("Z", "+00:00"))
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=UTC)
            ns = (moment - _EPOCH) // timedelta(microseconds=1) * 1000
    except (ValueError, OverflowError):
        raise HTTPException(422, f"{what}={shown}: give {TIME_RANGE}") from None
    if not MIN_MS * MS <= ns <= MAX_NS:
        raise HTTPException(422, f"{what}={shown} is out of range: give {TIME_RANGE}")
    return ns
