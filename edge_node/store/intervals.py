"""A merged set of inclusive integer ranges: which sequence numbers of a gateway are stored."""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable


class IntervalSet:
    """Sorted, disjoint, non-adjacent inclusive ranges [lo, hi].

    A live gateway's set is one range [first, last]; gaps appear only while a backlog is
    still on its way (live batches overtook it) or where a gateway dropped readings for good.
    """

    __slots__ = ("_his", "_los")

    def __init__(self, ranges: Iterable[tuple[int, int]] = ()) -> None:
        self._los: list[int] = []
        self._his: list[int] = []
        for lo, hi in sorted(ranges):
            self.add(lo, hi)

    def ranges(self) -> list[tuple[int, int]]:
        return list(zip(self._los, self._his, strict=True))

    def copy(self) -> IntervalSet:
        other = IntervalSet()
        other._los = list(self._los)
        other._his = list(self._his)
        return other

    def __len__(self) -> int:
        return len(self._los)

    def __contains__(self, seq: object) -> bool:
        if not isinstance(seq, int):
            return False
        i = bisect_right(self._los, seq) - 1
        return i >= 0 and self._his[i] >= seq

    def missing(self, lo: int, hi: int) -> list[tuple[int, int]]:
        """The parts of [lo, hi] not in the set, in order."""
        out: list[tuple[int, int]] = []
        cursor = lo
        i = max(bisect_right(self._los, lo) - 1, 0)
        while cursor <= hi and i < len(self._los):
            r_lo, r_hi = self._los[i], self._his[i]
            if r_hi < cursor:
                i += 1
                continue
            if r_lo > hi:
                break
            if r_lo > cursor:
                out.append((cursor, r_lo - 1))
            cursor = r_hi + 1
            i += 1
        if cursor <= hi:
            out.append((cursor, hi))
        return out

    def add(self, lo: int, hi: int) -> None:
        """Insert [lo, hi], merging with overlapping or adjacent ranges."""
        if hi < lo:
            raise ValueError(f"empty range [{lo}, {hi}]")
        start = bisect_right(self._his, lo - 2)  # first range that may touch lo
        end = bisect_right(self._los, hi + 1)  # ranges before this index start before hi+2
        if start < end:
            lo = min(lo, self._los[start])
            hi = max(hi, self._his[end - 1])
        self._los[start:end] = [lo]
        self._his[start:end] = [hi]
