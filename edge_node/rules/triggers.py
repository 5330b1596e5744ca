"""Which rules a reading, an alarm change or a schedule tick triggers (pure: no tasks, no I/O).

The engine (engine.py) owns loading, tasks, timeouts and the firing log; this module only
decides, from plain data, which (rule, trigger, context) firings an input asks for, and
whether a `once_per` key is new. So triggers are tested without an event loop.
"""

from __future__ import annotations

import fnmatch
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from edge_node.alarms.service import AlarmChange
from edge_node.rules.actions import CompiledAction, compile_action
from edge_node.rules.expr import Expr
from edge_node.rules.model import NAMES, EventTrigger, Rule
from edge_node.rules.store import to_json
from edge_node.store.model import series_name
from factory_common.wire import Quality, Reading, now_ns

KEYS_REMEMBERED = 10_000  # once_per keys kept per rule

Context = dict[str, Any]
Firing = tuple["CompiledRule", str, Context]  # (rule, trigger kind, context)
Latest = dict[str, tuple[int, Any]]  # series -> (ts, value) of its newest good reading


@dataclass
class CompiledRule:
    rule: Rule
    when: list[Expr]
    once_per: Expr | None
    actions: list[CompiledAction]
    keys: OrderedDict[str, None] = field(default_factory=OrderedDict)

    @classmethod
    def of(cls, rule: Rule) -> CompiledRule:
        once = Expr(rule.once_per, NAMES) if rule.once_per else None
        actions = [compile_action(a) for a in rule.actions]
        return cls(rule, [Expr(text, NAMES) for text in rule.when], once, actions)

    def matches_series(self, name: str) -> bool:
        spec = self.rule.trigger.reading or self.rule.trigger.event
        return spec is not None and fnmatch.fnmatchcase(name, spec.series)


def is_event(spec: EventTrigger, ctx: Context) -> bool:
    value, previous = ctx["value"], ctx["previous"]
    return (
        value != previous
        and (spec.to is None or value == spec.to)
        and (spec.from_ is None or previous == spec.from_)
    )


def device_polls(readings: Sequence[Reading]) -> Iterator[Sequence[Reading]]:
    """Runs of readings from one device poll (same device and timestamp), in order: applied
    together, so a rule sees the product ID measured in the same poll as the colour."""
    start = 0
    while start < len(readings):
        end = start + 1
        first = readings[start]
        while end < len(readings) and (readings[end].ts, readings[end].device) == (
            first.ts, first.device,
        ):  # fmt: skip
            end += 1
        yield readings[start:end]
        start = end


def reading_context(gateway: str, name: str, r: Reading, previous: Any) -> Context:
    return {
        "value": r.value, "previous": previous, "ts": r.ts, "series": name,
        "gateway": gateway, "device": r.device, "tag": r.tag, "quality": r.quality.value,
        "alarm": None,
    }  # fmt: skip


def reading_firings(
    gateway: str,
    poll: Sequence[Reading],
    latest: Latest,
    rules_for: Callable[[str], list[CompiledRule]],
) -> list[Firing]:
    """The firings one device poll asks for; `latest` is brought up to date first."""
    fresh = []
    for reading in poll:
        name = series_name(gateway, reading.device, reading.tag)
        last = latest.get(name)
        if last is not None and reading.ts <= last[0]:
            continue  # a redelivered or older reading: seen already
        good = reading.quality is not Quality.BAD
        fresh.append((name, reading, last[1] if last else None, last is not None, good))
        if good:
            latest[name] = (reading.ts, reading.value)
    firings: list[Firing] = []
    for name, reading, previous, known, good in fresh:
        ctx = reading_context(gateway, name, reading, previous)
        for rule in rules_for(name):
            trigger = rule.rule.trigger
            if trigger.reading and (good or trigger.reading.include_bad):
                firings.append((rule, "reading", ctx))
            elif trigger.event and good and known and is_event(trigger.event, ctx):
                firings.append((rule, "event", ctx))
    return firings


def alarm_firings(rules: Iterable[CompiledRule], change: AlarmChange) -> list[Firing]:
    alarm = change.alarm
    gateway, _, rest = alarm.source.partition("/")
    device, _, tag = rest.partition("/")
    firings: list[Firing] = []
    for rule in rules:
        spec = rule.rule.trigger.alarm
        if (
            spec is None or not rule.rule.enabled or change.kind not in spec.changes
            or not fnmatch.fnmatchcase(alarm.source, spec.source)
            or not fnmatch.fnmatchcase(alarm.rule, spec.rule)
        ):  # fmt: skip
            continue
        ctx = {
            "value": alarm.value, "previous": None, "ts": now_ns(), "series": alarm.source,
            "gateway": gateway, "device": device, "tag": tag, "quality": "good",
            "alarm": alarm.as_dict() | {"change": change.kind},
        }  # fmt: skip
        firings.append((rule, "alarm", ctx))
    return firings


def schedule_context() -> Context:
    return {
        "value": None, "previous": None, "ts": now_ns(), "series": "",
        "gateway": "", "device": "", "tag": "", "quality": "good", "alarm": None,
    }  # fmt: skip


def claim(rule: CompiledRule, key_value: Any) -> tuple[bool, str | None]:
    """(fire?, key): without once_per always; with it only for a new, non-empty key."""
    if rule.once_per is None:
        return True, None
    if key_value is None:
        return False, None  # no key yet (e.g. no product measured): nothing to fire for
    key = to_json(key_value)
    if key in rule.keys:
        return False, key  # fired for this key already
    rule.keys[key] = None
    while len(rule.keys) > KEYS_REMEMBERED:
        rule.keys.popitem(last=False)
    return True, key
