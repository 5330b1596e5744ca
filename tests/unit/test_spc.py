"""SPC rules on known sequences (each fires exactly where expected) and property invariants."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from hypothesis import given
from hypothesis import strategies as st

from edge_node.spc import Limits, SeriesSpc, SpcMonitor

LIMITS = Limits(mean=0.0, sigma=1.0)


def fired(values: list[float], rule: str, limits: Limits = LIMITS) -> list[int]:
    """Indexes of the points at which `rule` is violated."""
    spc = SeriesSpc(limits)
    return [i for i, x in enumerate(values) if any(v.rule == rule for v in spc.update(x))]


def test_rule1_fires_only_on_points_beyond_three_sigma() -> None:
    values = [0.5, 2.9, 3.0, 3.01, -1.0, -3.2, 0.0]
    assert fired(values, "rule1") == [3, 5]
    sides = [v.side for x in values for v in SeriesSpc(LIMITS).update(x) if v.rule == "rule1"]
    assert sides == ["high", "low"]


def test_rule1_uses_explicit_control_limits_when_given() -> None:
    limits = Limits(mean=0.0, sigma=1.0, ucl=2.5, lcl=-4.0)
    assert fired([2.6, -3.5, -4.1], "rule1", limits) == [0, 2]


def test_rule2_two_of_three_beyond_two_sigma_same_side() -> None:
    # 0: beyond; 1: inside; 2: beyond again -> 2 of 3 at index 2.
    assert fired([2.5, 0.0, 2.1, 0.0, 0.0], "rule2") == [2]
    # Opposite sides never combine.
    assert fired([2.5, -2.5, 0.0, 2.5, -2.5], "rule2") == []
    # Too far apart: beyond, inside, inside, beyond is 1 of 3 each time.
    assert fired([2.5, 0.0, 0.0, 2.5], "rule2") == []
    # A point after two beyond points does not itself re-trigger the rule.
    assert fired([-2.2, -2.4, 0.0, -1.0], "rule2") == [1]


def test_rule3_eight_in_a_row_on_one_side() -> None:
    values = [0.1] * 7 + [0.2, 0.3, -0.1]
    assert fired(values, "rule3") == [7, 8]
    # A point exactly on the mean breaks the run.
    assert fired([0.1] * 4 + [0.0] + [0.1] * 7, "rule3") == []
    assert fired([-0.5] * 3 + [0.5] * 8, "rule3") == [10]


def test_rule4_six_points_steadily_rising_or_falling() -> None:
    rising = [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6]
    assert fired(rising, "rule4") == [5, 6]
    falling = [1.0, 0.8, 0.6, 0.4, 0.2, 0.0]
    assert fired(falling, "rule4") == [5]
    # A tie breaks the trend; five rising points are not enough.
    assert fired([0.0, 0.1, 0.2, 0.2, 0.3, 0.4, 0.5, 0.6], "rule4") == []
    # Direction change restarts the count at the turning step.
    assert fired([0.5, 0.4, 0.0, 0.1, 0.2, 0.3, 0.4, 0.5], "rule4") == [7]


def test_spec_limits_alone_without_mean_or_sigma() -> None:
    limits = Limits(lsl=1.0, usl=3.0)
    spc = SeriesSpc(limits)
    found = [[(v.rule, v.side) for v in spc.update(x)] for x in [2.0, 3.5, 0.5, 3.0]]
    assert found == [[], [("spec", "high")], [("spec", "low")], []]


def test_control_limits_give_the_zones_when_mean_and_sigma_are_absent() -> None:
    limits = Limits(lcl=-3.0, ucl=3.0)  # mean 0, sigma 1
    assert fired([2.5, 2.5], "rule2", limits) == [1]


def test_monitor_restarts_a_series_when_its_limits_change() -> None:
    monitor = SpcMonitor()
    for _ in range(7):
        assert monitor.update("s", 0.1, LIMITS) == []
    moved = Limits(mean=0.0, sigma=1.0, version=2)
    assert monitor.update("s", 0.1, moved) == []  # run restarted: 1 of 8, not 8 of 8
    assert monitor.update("s", "text", LIMITS) is None
    assert monitor.update("t", 99.0, None) is None


@dataclass
class Reference:
    """A brute-force evaluator over the whole history, to check the O(1) state against."""

    mean: float
    sigma: float

    def rules_at(self, xs: list[float], i: int) -> set[str]:
        m, s, x = self.mean, self.sigma, xs[i]
        out = set()
        if abs(x - m) > 3 * s:
            out.add("rule1")
        recent = xs[max(0, i - 2) : i + 1]
        side2 = [1 if v > m + 2 * s else -1 if v < m - 2 * s else 0 for v in recent]
        if side2[-1] and side2.count(side2[-1]) >= 2:
            out.add("rule2")
        if i >= 7:
            window = xs[i - 7 : i + 1]
            if all(v > m for v in window) or all(v < m for v in window):
                out.add("rule3")
        if i >= 5:
            window = xs[i - 5 : i + 1]
            steps = [b - a for a, b in itertools.pairwise(window)]
            if all(d > 0 for d in steps) or all(d < 0 for d in steps):
                out.add("rule4")
        return out


small = st.floats(min_value=-5, max_value=5, allow_nan=False).map(lambda v: round(v, 1))


@given(st.lists(small, max_size=60))
def test_incremental_state_matches_brute_force(values: list[float]) -> None:
    spc = SeriesSpc(LIMITS)
    reference = Reference(0.0, 1.0)
    for i, x in enumerate(values):
        got = {v.rule for v in spc.update(x)}
        assert got == reference.rules_at(values, i), (values[: i + 1], got)


@given(st.lists(small, max_size=40))
def test_mirrored_values_swap_sides(values: list[float]) -> None:
    up, down = SeriesSpc(LIMITS), SeriesSpc(LIMITS)
    flip = {"high": "low", "low": "high", "rising": "falling", "falling": "rising"}
    for x in values:
        a = sorted((v.rule, v.side) for v in up.update(x))
        b = sorted((v.rule, flip[v.side]) for v in down.update(-x))
        assert a == b


@given(st.lists(st.floats(min_value=-0.99, max_value=0.99), max_size=40))
def test_points_within_one_sigma_never_violate_the_zone_rules(values: list[float]) -> None:
    spc = SeriesSpc(LIMITS)
    for x in values:
        assert not {v.rule for v in spc.update(x)} & {"rule1", "rule2", "spec"}
