"""The rule engine: triggers in, conditions checked, actions run, every firing logged and stored.

- Isolation: each firing runs as its own task under the rule's timeout; an exception or
  timeout is recorded against that rule (status and firing) and never reaches another rule
  or the engine. A condition that raises is counted as that rule's error, not a firing.
- Ordering: readings of one device poll (same device and timestamp) are applied to the
  latest-value table together before any rule sees them, so `latest('measured_product_id')`
  next to a colour reading is the ID measured in the same poll.
- Once per key: `once_per` keys are claimed before the firing task starts and persisted with
  the firing, so a rule fires once per product even across redeliveries and restarts.
- Hot reload: the file's mtime and size are watched; a file that does not validate keeps the
  previous rules, and the error (file:line: key: problem) is logged and shown in status().
"""

from __future__ import annotations

import asyncio
import os
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from edge_node.alarms.feed import Feed
from edge_node.alarms.monitor import LimitsSource
from edge_node.alarms.service import AlarmChange
from edge_node.rules.actions import Services, run_action
from edge_node.rules.context import Lookups
from edge_node.rules.cron import Cron
from edge_node.rules.model import RulesFile
from edge_node.rules.store import FiringStore
from edge_node.rules.triggers import (
    KEYS_REMEMBERED,
    CompiledRule,
    alarm_firings,
    claim,
    device_polls,
    reading_firings,
    schedule_context,
)
from factory_common.config import ConfigError, load_yaml_model
from factory_common.logs import get_logger
from factory_common.wire import Batch, now_ns


@dataclass
class RuleStatus:
    fired: int = 0
    errors: int = 0
    busy: int = 0
    running: int = 0
    last_fired: int | None = None
    last_outcome: str = ""
    last_error: str = ""


class RuleEngine:
    def __init__(
        self,
        firings: FiringStore,
        services: Services,
        *,
        path: Path | None = None,
        feed: Feed | None = None,
        limits: LimitsSource | None = None,
        masterdata: Any = None,
        reload_interval: float = 1.0,
    ) -> None:
        self.path = path
        self.firings = firings
        self.services = services
        self.feed = feed
        self.reload_interval = reload_interval
        self.lookups = Lookups(limits, masterdata)
        self.rules: dict[str, CompiledRule] = {}
        self.status: dict[str, RuleStatus] = {}
        self.loaded_at: int | None = None
        self.error: list[str] | None = None
        self._stamp: tuple[int, int] | None = None
        self._index: dict[str, list[CompiledRule]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._schedules: list[asyncio.Task[None]] = []
        self._log = get_logger(component="rules")

    # ------------------------------------------------------------ loading

    def seed_latest(self, values: Iterable[tuple[str, int, Any]]) -> None:
        """Start from the store's latest values, so events after a restart are real changes."""
        for name, ts, value in values:
            self.lookups.latest[name] = (ts, value)

    def load(self) -> bool:
        """(Re)load the rules file; on any problem keep the rules in force and record why."""
        if self.path is None:
            return False
        try:
            stamp = os.stat(self.path)
            self._stamp = (stamp.st_mtime_ns, stamp.st_size)
            parsed = load_yaml_model(self.path, RulesFile)
        except (ConfigError, OSError) as exc:
            problems = exc.problems if isinstance(exc, ConfigError) else [f"{self.path}: {exc}"]
            self.error = problems
            self._log.error("rules_invalid", path=str(self.path), problems=problems,
                            kept=sorted(self.rules))  # fmt: skip
            return False
        self.set_rules(parsed)
        return True

    def set_rules(self, parsed: RulesFile) -> None:
        previous = self.rules
        rules = {}
        for rule in parsed.rules:
            compiled = CompiledRule.of(rule)
            old = previous.get(rule.id)
            keys = old.keys if old else self.firings.keys(rule.id, KEYS_REMEMBERED)
            compiled.keys = OrderedDict.fromkeys(keys)
            rules[rule.id] = compiled
            self.status.setdefault(rule.id, RuleStatus())
        self.rules, self._index = rules, {}
        self.error, self.loaded_at = None, now_ns()
        self._restart_schedules()
        self._log.info("rules_loaded", path=str(self.path), rules=sorted(rules))

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self.reload_interval)
            try:
                stat = os.stat(self.path) if self.path else None
            except OSError:
                stat = None
            stamp = (stat.st_mtime_ns, stat.st_size) if stat else None
            if stamp != self._stamp:
                self.load()
                self._stamp = stamp

    # ------------------------------------------------------------ running

    async def run(self) -> None:
        """Watch the file, consume readings and alarm changes, run schedules; until cancelled."""
        self.load()
        async with httpx.AsyncClient() as http:
            self.services.http = http
            try:
                async with asyncio.TaskGroup() as group:
                    if self.path is not None:
                        group.create_task(self._watch(), name="rules-watch")
                    if self.feed is not None:
                        group.create_task(self._consume(self.feed), name="rules-feed")
                    if self.services.alarms is not None:
                        group.create_task(self._alarm_changes(), name="rules-alarms")
                    await asyncio.Event().wait()  # schedules and firings need the client too
            finally:
                for task in [*self._schedules, *self._tasks]:
                    task.cancel()
                await asyncio.gather(*self._schedules, *self._tasks, return_exceptions=True)

    async def _consume(self, feed: Feed) -> None:
        while True:
            self.process(await feed.get())

    async def drain(self) -> None:
        """Wait for the firings in progress (tests, shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    def process(self, batches: Sequence[Batch]) -> None:
        for batch in batches:
            for poll in device_polls(batch.readings):
                firings = reading_firings(batch.gateway, poll, self.lookups.latest, self._rules_for)
                for rule, trigger, ctx in firings:
                    self._dispatch(rule, trigger, ctx)

    def _rules_for(self, name: str) -> list[CompiledRule]:
        found = self._index.get(name)
        if found is None:
            found = self._index[name] = [
                r for r in self.rules.values() if r.rule.enabled and r.matches_series(name)
            ]
        return found

    async def _alarm_changes(self) -> None:
        assert self.services.alarms is not None
        async for change in self.services.alarms.subscribe():
            self._on_alarm(change)

    def _on_alarm(self, change: AlarmChange) -> None:
        for rule, trigger, ctx in alarm_firings(list(self.rules.values()), change):
            self._dispatch(rule, trigger, ctx)

    def _restart_schedules(self) -> None:
        for task in self._schedules:
            task.cancel()
        self._schedules = []
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return  # loaded before run(): run() calls load() again inside the loop
        for rule in self.rules.values():
            spec = rule.rule.trigger.schedule
            if spec is not None and rule.rule.enabled:
                self._schedules.append(asyncio.create_task(self._schedule(rule, spec.every,
                                                                          spec.cron)))  # fmt: skip

    async def _schedule(self, rule: CompiledRule, every: float | None, cron: str | None) -> None:
        """Fire a schedule rule until cancelled. A fault in one round is this rule's error
        (counted, logged once, retried a minute later): the task never dies unseen."""
        parsed = Cron.parse(cron) if cron else None
        while True:
            try:
                if parsed is not None:
                    now = datetime.now(UTC)
                    await asyncio.sleep((parsed.next_after(now) - now).total_seconds())
                else:
                    await asyncio.sleep(every or 60.0)
                self._dispatch(rule, "schedule", schedule_context())
            except Exception as exc:  # the isolation boundary, as for every trigger
                status = self.status[rule.rule.id]
                self._rule_error(rule.rule.id, status, f"schedule: {type(exc).__name__}: {exc}")
                await asyncio.sleep(60.0)

    # ------------------------------------------------------------ firing

    def _dispatch(self, rule: CompiledRule, trigger: str, base: dict[str, Any]) -> None:
        """Check the conditions now (in order); start the actions as their own task."""
        rule_id = rule.rule.id
        status = self.status[rule_id]
        seen: dict[str, Any] = {}
        ctx = base | self.lookups.functions(base["series"], seen)
        ctx |= {"rule": rule_id, "trigger": trigger, "key": None}
        try:
            if not all(condition(ctx) for condition in rule.when):
                return
            key_value = rule.once_per(ctx) if rule.once_per is not None else None
        except Exception as exc:  # the isolation boundary: any error is this rule's
            self._rule_error(rule_id, status, f"condition: {type(exc).__name__}: {exc}")
            return
        go, key = claim(rule, key_value)
        if not go:
            return
        ctx["key"] = key_value
        # Actions run in a task, later: freeze the latest values they will look up.
        ctx |= self.lookups.functions(base["series"], seen, dict(self.lookups.latest))
        inputs = {k: base[k] for k in ("series", "value", "previous", "ts")} | {
            "lookups": seen, "key": key_value, "alarm": base["alarm"],
        }  # fmt: skip
        if status.running >= rule.rule.max_running:
            self._busy(rule, trigger, key, inputs)
            return
        status.running += 1
        task = asyncio.get_running_loop().create_task(self._fire(rule, trigger, ctx, inputs, key))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _busy(self, rule: CompiledRule, trigger: str, key: str | None, inputs: Any) -> None:
        rule_id, status = rule.rule.id, self.status[rule.rule.id]
        if key is not None:
            del rule.keys[key]  # not fired: the next reading with this key tries again
        status.busy += 1
        firing = self.firings.start(rule_id, trigger, key, inputs, now_ns())
        self.firings.finish(firing, [], "busy", "too many firings in progress", now_ns())
        self._log.warning("rule_busy", rule=rule_id, running=status.running)

    async def _fire(
        self, rule: CompiledRule, trigger: str, ctx: dict[str, Any], inputs: Any, key: str | None
    ) -> None:
        rule_id, status = rule.rule.id, self.status[rule.rule.id]
        firing = self.firings.start(rule_id, trigger, key, inputs, now_ns())
        results: list[dict[str, Any]] = []
        outcome, error = "cancelled", ""
        try:
            async with asyncio.timeout(rule.rule.timeout):
                for action in rule.actions:
                    results.append(await run_action(action, ctx, self.services))
            outcome = "ok" if all(r.get("ok") for r in results) else "failed"
            error = "; ".join(r.get("detail", "") for r in results if not r.get("ok"))
        except TimeoutError:
            outcome, error = "timeout", f"actions did not finish within {rule.rule.timeout:g} s"
        except Exception as exc:  # the isolation boundary: any error is this rule's
            outcome, error = "error", f"{type(exc).__name__}: {exc}"
        finally:
            status.running -= 1
            status.fired += 1
            status.last_fired, status.last_outcome = now_ns(), outcome
            if outcome not in ("ok", "cancelled"):
                status.errors += 1
                status.last_error = error
            self.firings.finish(firing, results, outcome, error, now_ns())
            self._log.info(
                "rule_fired", rule=rule_id, trigger=trigger, key=ctx["key"], inputs=inputs,
                actions=results, outcome=outcome, error=error or None,
            )  # fmt: skip

    def _rule_error(self, rule_id: str, status: RuleStatus, error: str) -> None:
        status.errors += 1
        if error != status.last_error:  # once per distinct error, not once per reading
            self._log.warning("rule_error", rule=rule_id, error=error)
        status.last_error = error

    # ------------------------------------------------------------ status

    def describe(self) -> dict[str, Any]:
        rules = []
        for rule_id, compiled in self.rules.items():
            rule, status = compiled.rule, self.status[rule_id]
            rules.append({
                "id": rule_id, "description": rule.description, "enabled": rule.enabled,
                "trigger": rule.trigger.model_dump(exclude_none=True, by_alias=True),
                "when": rule.when, "once_per": rule.once_per,
                "actions": [a.kind for a in rule.actions],
            } | vars(status))  # fmt: skip
        return {
            "path": str(self.path) if self.path else None,
            "loaded_at": self.loaded_at,
            "error": self.error,
            "rules": rules,
            "feed": self.feed.stats() if self.feed else None,
        }
