"""Rule triggers as plain data: which firings a poll asks for, and once-per keys."""

from __future__ import annotations

from typing import Any

from edge_node.rules.model import Rule
from edge_node.rules.triggers import (
    KEYS_REMEMBERED,
    CompiledRule,
    claim,
    device_polls,
    reading_firings,
)
from factory_common.wire import Quality, Reading

ALARM = [{"alarm": {"rule": "test.hit"}}]


def rule(trigger: dict[str, Any], **extra: Any) -> CompiledRule:
    return CompiledRule.of(
        Rule.model_validate({"id": "r", "trigger": trigger, "actions": ALARM, **extra})
    )


def reading(device: str, tag: str, ts: int, value: Any, quality: Quality = Quality.GOOD) -> Reading:
    return Reading(device, tag, ts, value, quality, "" if quality is Quality.GOOD else "down")


def test_one_device_poll_is_one_group() -> None:
    readings = [reading("m1", "a", 1, 1), reading("m1", "b", 1, 2), reading("m2", "a", 1, 3),
                reading("m1", "a", 2, 4)]  # fmt: skip
    assert [len(group) for group in device_polls(readings)] == [2, 1, 1]


def test_event_fires_on_a_change_to_the_value_and_not_on_redelivery() -> None:
    running = rule({"event": {"series": "gw/plc/state", "to": 2}})
    latest: dict[str, tuple[int, Any]] = {"gw/plc/state": (1, 1)}

    def rules_for(name: str) -> list[CompiledRule]:
        return [running] if running.matches_series(name) else []

    fired = reading_firings("gw", [reading("plc", "state", 2, 2)], latest, rules_for)
    assert [(kind, ctx["previous"], ctx["value"]) for _, kind, ctx in fired] == [("event", 1, 2)]
    assert latest["gw/plc/state"] == (2, 2)
    assert reading_firings("gw", [reading("plc", "state", 2, 2)], latest, rules_for) == []
    assert reading_firings("gw", [reading("plc", "state", 3, 2)], latest, rules_for) == []


def test_bad_readings_trigger_only_rules_that_ask_for_them() -> None:
    plain = rule({"reading": {"series": "*/m1/t"}})
    with_bad = rule({"reading": {"series": "*/m1/t", "include_bad": True}})
    bad = [reading("m1", "t", 5, None, Quality.BAD)]
    latest: dict[str, tuple[int, Any]] = {}
    fired = reading_firings("gw", bad, latest, lambda _name: [plain, with_bad])
    assert [r for r, _, _ in fired] == [with_bad]
    assert latest == {}  # a bad reading is not the latest value


def test_once_per_claims_each_key_once_and_forgets_the_oldest() -> None:
    keyed = rule({"reading": {"series": "*"}}, once_per="value")
    assert claim(keyed, None) == (False, None)
    assert claim(keyed, "P-1") == (True, '"P-1"')
    assert claim(keyed, "P-1") == (False, '"P-1"')
    for i in range(KEYS_REMEMBERED):
        claim(keyed, f"K-{i}")
    assert claim(keyed, "P-1") == (True, '"P-1"')  # long forgotten: fires again
    assert claim(rule({"reading": {"series": "*"}}), "x") == (True, None)
