"""Rules: expressions, the rules file's errors, cron-lite, and the engine's firing semantics."""

from __future__ import annotations

import asyncio
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge_node.alarms import AlarmService, StaticLimits
from edge_node.alarms.config import LimitsEntry
from edge_node.rules.actions import Services
from edge_node.rules.cron import Cron
from edge_node.rules.engine import RuleEngine
from edge_node.rules.expr import Expr, ExprError, compile_template, render
from edge_node.rules.model import RulesFile
from edge_node.rules.store import FiringStore
from factory_common.config import ConfigError, parse_yaml_model
from factory_common.wire import Batch, Quality, Reading
from tests.support.virtual_time import run_virtual

# ---------------------------------------------------------------- expressions


def test_expressions_compute_compare_and_call() -> None:
    ctx = {"value": 4.5, "limits": lambda: {"usl": 3.0}, "x": None, "tags": ["a", "b"]}
    assert Expr("value > limits().usl and value * 2 == 9")(ctx) is True
    assert Expr("'a' in tags and not 'c' in tags")(ctx) is True
    assert Expr("1 if value > 5 else 2")(ctx) == 2
    assert Expr("tags[1] + '!'")(ctx) == "b!"


def test_missing_data_never_fires() -> None:
    ctx = {"x": None, "value": 3}
    assert Expr("x > 1")(ctx) is False
    assert Expr("x < 1")(ctx) is False
    assert Expr("x.usl > 1")(ctx) is False
    assert Expr("x + 1")(ctx) is None
    assert Expr("x == None")(ctx) is True


@pytest.mark.parametrize(
    "text",
    ["__import__('os')", "value.__class__", "(lambda: 1)()", "[v for v in value]", "f(x=1)"],
)
def test_unsafe_or_unknown_constructs_are_refused(text: str) -> None:
    with pytest.raises(ExprError):
        Expr(text, frozenset({"value", "f"}))


def test_unknown_names_are_named() -> None:
    with pytest.raises(ExprError, match=r"unknown name\(s\) \['valeu'\]"):
        Expr("valeu > 3", frozenset({"value"}))


def test_evaluation_errors_say_which_expression() -> None:
    with pytest.raises(ExprError, match="'1 / value': ZeroDivisionError"):
        Expr("1 / value")({"value": 0})


def test_templates_render_only_strings_starting_with_equals() -> None:
    template = compile_template({"a": "=value + 1", "b": ["plain", "=str(value)"], "c": 5})
    assert render(template, {"value": 1, "str": str}) == {"a": 2, "b": ["plain", "1"], "c": 5}


# ---------------------------------------------------------------- the rules file


def test_a_bad_rules_file_names_file_line_and_key() -> None:
    text = """rules:
  - id: r1
    trigger: {reading: {series: "*/x"}}
    when: "valeu > 3"
    actions: [{alarm: {rule: r}}]
  - id: r2
    trigger: {reading: {series: "*/x"}, schedule: {every: 5}}
    actions: [{webhook: {url: "ftp://x"}}]
"""
    with pytest.raises(ConfigError) as info:
        parse_yaml_model(text, RulesFile, "rules.yaml")
    problems = "\n".join(info.value.problems)
    assert "rules.yaml:4: rules[0].when" in problems and "valeu" in problems
    assert "rules.yaml:7: rules[1].trigger" in problems and "exactly one trigger" in problems
    assert "rules.yaml:8: rules[1].actions[0].webhook.url" in problems


def test_cron_schedules() -> None:
    cron = Cron.parse("*/15 8-17 * * 1-5")
    saturday_noon = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
    assert cron.next_after(saturday_noon) == datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
    assert cron.next_after(datetime(2026, 11, 30, 8, 0, 30, tzinfo=UTC)).minute == 15
    sunday = datetime(2026, 11, 29, 0, 0, tzinfo=UTC)
    assert Cron.parse("0 0 * * 7").next_after(sunday - timedelta(hours=1)) == sunday
    # Day and weekday combine with AND: the 13th only when it is a Friday.
    friday_13 = Cron.parse("0 12 13 * 5").next_after(datetime(2026, 1, 1, tzinfo=UTC))
    assert friday_13 == datetime(2026, 2, 13, 12, 0, tzinfo=UTC)
    assert Cron.parse("0 0 29 2 *").next_after(datetime(2097, 1, 1, tzinfo=UTC)).year == 2104
    for bad in ("* * * *", "61 * * * *", "*/0 * * * *", "a * * * *", "* * * * * *"):
        with pytest.raises(ValueError, match="cron"):
            Cron.parse(bad)


@pytest.mark.parametrize("impossible", ["0 0 30 2 *", "0 0 31 4 *", "0 0 31 2,4,6,9,11 *"])
def test_impossible_schedules_are_refused_when_the_rules_load(impossible: str) -> None:
    with pytest.raises(ValueError, match="never matches"):
        Cron.parse(impossible)
    text = (
        f"rules:\n  - id: nightly\n    trigger: {{schedule: {{cron: '{impossible}'}}}}\n"
        "    actions: [{log: {message: hi}}]\n"
    )
    with pytest.raises(ConfigError) as info:
        parse_yaml_model(text, RulesFile, "rules.yaml")
    assert "rules.yaml:3: rules[0].trigger.schedule.cron" in "\n".join(info.value.problems)


# ---------------------------------------------------------------- the engine


class Outbox:
    def __init__(self) -> None:
        self.items: list[tuple[str, dict[str, Any], str]] = []

    def add(self, kind: str, payload: dict[str, Any], key: str) -> None:
        if kind == "explode":
            raise RuntimeError("outbox is broken")
        self.items.append((kind, payload, key))


class Recipes:
    def recipe_for_product(self, product_id: str) -> dict[str, Any] | None:
        return {"name": "black", "product": product_id} if product_id.startswith("P") else None


DEFECT_RULES = """
rules:
  - id: defect
    trigger: {reading: {series: "*/meter1/product_delta_e"}}
    when: "value > coalesce(limits().usl, 3.0)"
    once_per: "latest('measured_product_id')"
    actions:
      - cloud_event:
          kind: defect
          key: "='defect/' + latest('measured_product_id')"
          payload:
            product_id: "=latest('measured_product_id')"
            recipe: "=recipe(latest('measured_product_id'))"
            delta_e: "=value"
  - id: broken
    trigger: {reading: {series: "*/meter1/product_delta_e"}}
    actions: [{cloud_event: {kind: explode, key: k}}]
  - id: divide
    trigger: {reading: {series: "*/meter1/product_delta_e"}}
    when: "1 / (value - value) > 0"
    actions: [{cloud_event: {kind: never, key: k}}]
"""


@pytest.fixture
async def engine(tmp_path: Path) -> RuleEngine:
    alarms = AlarmService(tmp_path / "ops.sqlite")
    firings = FiringStore(tmp_path / "ops.sqlite")
    limits = StaticLimits({"gw/meter1/product_delta_e": LimitsEntry(usl=4.0)})
    services = Services(outbox=Outbox(), alarms=alarms)
    engine = RuleEngine(firings, services, limits=limits, masterdata=Recipes())
    engine.set_rules(parse_yaml_model(DEFECT_RULES, RulesFile))
    yield engine
    await engine.drain()
    firings.close()
    alarms.close()


def poll(ts: int, product: str, delta_e: float, seq: int = 0) -> Batch:
    """One colour meter poll: ID and ΔE share the timestamp, ΔE first (as tags are read)."""
    readings = [
        Reading("meter1", "product_delta_e", ts, delta_e),
        Reading("meter1", "measured_product_id", ts, product),
    ]
    return Batch(1, "gw", "boot", seq, seq + 1, readings)


async def test_defect_rule_fires_once_per_product_with_the_same_polls_id(
    engine: RuleEngine,
) -> None:
    outbox = engine.services.outbox
    assert isinstance(outbox, Outbox)
    batches = [
        poll(1, "P1", 1.0, 0),
        poll(2, "P2", 6.0, 2),  # defect: ΔE above usl 4.0
        poll(3, "P2", 6.0, 4),  # the same product, read again
        poll(4, "P3", 3.5, 6),  # below the master-data limit (but above the rule's 3.0)
        poll(5, "P4", 7.0, 8),
    ]
    engine.process(batches)
    engine.process([poll(2, "P2", 6.0, 2)])  # a redelivery
    await engine.drain()
    assert [(k, p["product_id"], p["delta_e"], key) for k, p, key in outbox.items] == [
        ("defect", "P2", 6.0, "defect/P2"),
        ("defect", "P4", 7.0, "defect/P4"),
    ]
    assert outbox.items[0][1]["recipe"] == {"name": "black", "product": "P2"}
    firings = engine.firings.recent("defect")
    assert [f["key"] for f in firings] == ["P4", "P2"] and {f["outcome"] for f in firings} == {"ok"}
    assert firings[1]["inputs"]["lookups"]["latest(gw/meter1/measured_product_id)"] == "P2"


async def test_a_failing_rule_never_affects_the_others(engine: RuleEngine) -> None:
    engine.process([poll(2, "P2", 6.0)])
    await engine.drain()
    status = {r["id"]: r for r in engine.describe()["rules"]}
    assert status["defect"]["fired"] == 1 and status["defect"]["last_outcome"] == "ok"
    assert status["broken"]["last_outcome"] == "error"
    assert "outbox is broken" in status["broken"]["last_error"]
    assert status["divide"]["fired"] == 0 and status["divide"]["errors"] == 1
    assert "ZeroDivisionError" in status["divide"]["last_error"]
    (broken,) = engine.firings.recent("broken")
    assert broken["outcome"] == "error" and "RuntimeError" in broken["error"]


async def test_once_per_keys_survive_a_restart(engine: RuleEngine, tmp_path: Path) -> None:
    engine.process([poll(2, "P2", 6.0)])
    await engine.drain()
    again = RuleEngine(engine.firings, engine.services, limits=None, masterdata=Recipes())
    again.set_rules(parse_yaml_model(DEFECT_RULES, RulesFile))
    again.process([poll(10, "P2", 6.0, 10), poll(11, "P5", 6.0, 12)])
    await again.drain()
    keys = [f["key"] for f in engine.firings.recent("defect")]
    assert keys == ["P5", "P2"]


EVENT_RULES = """
rules:
  - id: end
    trigger: {event: {series: "*/bath1/last_event", to: 4}}
    actions: [{alarm: {rule: ended, message: "='ended after ' + str(previous)"}}]
  - id: on-alarm
    trigger: {alarm: {changes: [raised], rule: ended}}
    actions: [{cloud_event: {kind: seen, key: "=alarm.source", payload: {a: "=alarm.rule"}}}]
"""


async def test_event_and_alarm_triggers(engine: RuleEngine) -> None:
    engine.set_rules(parse_yaml_model(EVENT_RULES, RulesFile))
    listener = asyncio.create_task(engine._alarm_changes())
    await asyncio.sleep(0)
    events = [3, 3, 4, 4, 1, 4]
    readings = [Reading("bath1", "last_event", i + 1, v) for i, v in enumerate(events)]
    readings.append(Reading("bath1", "last_event", 99, 1, quality=Quality.BAD))
    engine.process([Batch(1, "gw", "b", 0, len(readings) - 1, readings)])
    await engine.drain()
    firings = engine.firings.recent("end")
    assert [f["inputs"]["ts"] for f in firings] == [6, 3]  # changes to 4 only
    alarm = engine.services.alarms.find_active("gw/bath1/last_event", "ended")
    assert alarm is not None and alarm.count == 2 and alarm.message == "ended after 1"
    for _ in range(50):
        if engine.services.outbox.items:
            break
        await asyncio.sleep(0.01)
    await engine.drain()
    listener.cancel()
    assert engine.services.outbox.items == [("seen", {"a": "ended"}, "gw/bath1/last_event")]


def test_schedule_trigger_fires_every_interval(tmp_path: Path) -> None:
    text = """
rules:
  - id: tick
    trigger: {schedule: {every: 0.05}}
    actions: [{cloud_event: {kind: tick, key: "=str(ts)"}}]
"""

    async def scenario() -> tuple[int, int]:
        # On virtual time: a loaded machine cannot stretch the sleeps between firings.
        services = Services(outbox=Outbox())
        engine = RuleEngine(FiringStore(tmp_path / "ops.sqlite"), services)
        engine.set_rules(parse_yaml_model(text, RulesFile))
        await asyncio.sleep(0.28)
        engine.set_rules(RulesFile())  # a reload without the rule stops its schedule
        count = len(services.outbox.items)
        await asyncio.sleep(0.12)
        await engine.drain()
        return count, len(services.outbox.items)

    count, later = run_virtual(scenario())
    assert 5 <= count <= 6 and later == count


async def test_slow_actions_time_out_and_busy_rules_record_it(engine: RuleEngine) -> None:
    class SlowOutbox(Outbox):
        async def add(self, kind: str, payload: dict[str, Any], key: str) -> None:
            await asyncio.sleep(5)

    engine.services.outbox = SlowOutbox()
    text = """
rules:
  - id: slow
    trigger: {reading: {series: "*"}}
    timeout: 0.1
    max_running: 1
    actions: [{cloud_event: {kind: k, key: k}}]
"""
    engine.set_rules(parse_yaml_model(text, RulesFile))
    engine.process([poll(1, "P1", 1.0)])  # two readings: the second finds the first running
    await engine.drain()
    outcomes = sorted(f["outcome"] for f in engine.firings.recent("slow"))
    assert outcomes == ["busy", "timeout"]


async def test_hot_reload_keeps_the_previous_rules_on_a_bad_file(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(EVENT_RULES)
    firings = FiringStore(tmp_path / "ops.sqlite")
    engine = RuleEngine(firings, Services(), path=path, reload_interval=0.02)
    task = asyncio.create_task(engine.run())
    try:
        await _until(lambda: set(engine.rules) == {"end", "on-alarm"})
        path.write_text(EVENT_RULES.replace("to: 4", "to: [4"))
        os.utime(path, ns=(1, 1))  # a different mtime even on coarse clocks
        await _until(lambda: engine.error is not None)
        assert set(engine.rules) == {"end", "on-alarm"}
        assert engine.error[0].startswith(f"{path}:4: not valid YAML")
        path.write_text(DEFECT_RULES)
        await _until(lambda: "defect" in engine.rules)
        assert engine.error is None and engine.describe()["rules"][0]["id"] == "defect"
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        firings.close()


async def _until(condition: Any, seconds: float = 3.0) -> None:
    async with asyncio.timeout(seconds):
        while not condition():  # noqa: ASYNC110 - the engine has no event for "reloaded"
            await asyncio.sleep(0.01)


async def test_a_key_refused_while_busy_fires_on_its_next_reading(engine: RuleEngine) -> None:
    release = asyncio.Event()

    class GatedOutbox(Outbox):
        async def add(self, kind: str, payload: dict[str, Any], key: str) -> None:
            await release.wait()
            self.items.append((kind, payload, key))

    engine.services.outbox = GatedOutbox()
    text = """
rules:
  - id: once
    trigger: {reading: {series: "*/meter1/product_delta_e"}}
    once_per: "latest('measured_product_id')"
    max_running: 1
    actions: [{cloud_event: {kind: k, key: "=key"}}]
"""
    engine.set_rules(parse_yaml_model(text, RulesFile))
    engine.process([poll(1, "P1", 5.0, 0), poll(2, "P2", 5.0, 2)])  # P2 finds P1 running
    await asyncio.sleep(0)
    release.set()
    await engine.drain()
    engine.process([poll(3, "P2", 5.0, 4), poll(4, "P2", 5.0, 6)])  # P2 again: fires now, once
    await engine.drain()
    assert [key for _, _, key in engine.services.outbox.items] == ["P1", "P2"]
    outcomes = sorted((f["key"], f["outcome"]) for f in engine.firings.recent("once"))
    assert outcomes == [("P1", "ok"), ("P2", "busy"), ("P2", "ok")]


def test_edge_node_check_validates_the_rules_file(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from edge_node.cli import app

    config = tmp_path / "edge.yaml"
    config.write_text("edge: {id: e}\nrules: {path: rules.yaml}\n")
    (tmp_path / "rules.yaml").write_text(DEFECT_RULES)
    args = ["check", str(config), "--data-dir", str(tmp_path)]
    ok = CliRunner().invoke(app, args)
    assert ok.exit_code == 0 and "3 rules: defect, broken, divide" in ok.output
    (tmp_path / "rules.yaml").write_text(DEFECT_RULES.replace("value > coalesce", "value >> x"))
    bad = CliRunner().invoke(app, args)
    assert bad.exit_code == 2 and f"{tmp_path / 'rules.yaml'}:5: rules[0].when" in bad.output


@given(
    st.integers(-50, 50),
    st.integers(-50, 50),
    st.sampled_from(["+", "-", "*", "<", "<=", "==", "!=", ">", ">=", "and", "or"]),
)
def test_expressions_agree_with_python_on_numbers(a: int, b: int, op: str) -> None:
    text = f"a {op} b"
    assert Expr(text)({"a": a, "b": b}) == eval(text, {}, {"a": a, "b": b})
