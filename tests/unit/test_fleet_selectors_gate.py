"""Label selectors and the health gate: pure functions, no fleet directory needed."""

from __future__ import annotations

import pytest

from fleet.rollout.gate import GateSpec, Observation, evaluate
from fleet.selectors import SelectorError, parse_selector

LABELS = {"id": "gw-01", "site": "plant2", "line": "anodizing", "role": "press"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", True),
        ("line=anodizing,site=plant2", True),
        ("line=anodizing,site=plant1", False),
        ("line==anodizing", True),
        ("role!=oven", True),
        ("role!=press", False),
        ("!beta", True),
        ("role", True),
        ("beta", False),
        ("role in (press, oven),site=plant2", True),
        ("role notin (press,oven)", False),
        ("id in (gw-02,gw-03)", False),
    ],
)
def test_selector_matches(text: str, expected: bool) -> None:
    assert parse_selector(text).matches(LABELS) is expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("line=a,,site=b", "empty requirement"),
        ("role in (a", "unbalanced parentheses"),
        ("role in ()", "lists no values"),
        ("role ~ press", "cannot read 'role ~ press'"),
    ],
)
def test_selector_errors_say_what(text: str, message: str) -> None:
    with pytest.raises(SelectorError, match=message):
        parse_selector(text)


SPEC = GateSpec("release", "2.0", requested_at_ns=100, baseline_seq=50, deadline=60.0)
HEALTHY = Observation(
    online=True, version="2.0", connectors_total=2, connectors_up=2, buffer_depth=3, stored_seq=60
)


def test_gate_passes_only_when_everything_holds() -> None:
    assert evaluate(SPEC, HEALTHY, 10).ok


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"online": False}, "offline"),
        ({"version": "1.0"}, "reports version 1.0, not 2.0"),
        ({"connectors_up": 1}, "1 of 2 connectors down"),
        ({"buffer_depth": 5000}, "buffer not drained"),
        ({"stored_seq": 50}, "receipts have not advanced"),
    ],
)
def test_gate_waits_then_fails_at_the_deadline(change: dict, reason: str) -> None:
    obs = Observation(**{**HEALTHY.__dict__, **change})
    waiting = evaluate(SPEC, obs, 10)
    assert not waiting.done and reason in waiting.reason
    failed = evaluate(SPEC, obs, 60)
    assert failed.done and not failed.ok and reason in failed.reason


def test_gate_fails_at_once_when_unreachable_or_the_agent_went_back() -> None:
    assert evaluate(SPEC, Observation(reachable=False, error="timed out"), 0).reason == (
        "unreachable: timed out"
    )
    back = evaluate(SPEC, Observation(**{**HEALTHY.__dict__, "agent_state": "rolled_back"}), 0)
    assert back.done and not back.ok and "rolled_back" in back.reason
    committed = evaluate(SPEC, Observation(**{**HEALTHY.__dict__, "agent_state": "committed"}), 0)
    assert committed.ok


def test_config_gate_needs_a_restart_after_the_push() -> None:
    spec = GateSpec("config", "abc", requested_at_ns=100, baseline_seq=50, deadline=60.0)
    assert not evaluate(spec, Observation(**{**HEALTHY.__dict__, "started_at_ns": 90}), 0).done
    assert evaluate(spec, Observation(**{**HEALTHY.__dict__, "started_at_ns": 110}), 0).ok
