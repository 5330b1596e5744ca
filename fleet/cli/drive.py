"""Drive a rollout from the CLI: status feed, backends, runner, rich progress and the summary."""

from __future__ import annotations

import time
from collections.abc import Callable

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from fleet.backends.base import Target
from fleet.backends.dispatch import backends_for
from fleet.cli.common import Exit, emit_json, err, fail, out
from fleet.inventory import Inventory, RolloutDefaults, Window
from fleet.rollout.engine import summary
from fleet.rollout.model import FINAL, Phase, Policy, Rollout, State
from fleet.rollout.policy import Amount, WindowSpec
from fleet.rollout.records import sync_inventory
from fleet.rollout.runner import Runner
from fleet.rollout.targets import resolve
from fleet.status_feed import FeedError, StatusFeed
from fleet.store.lease import LeaseHeld
from fleet.store.rollouts import RolloutRow, StateStore

SETTLED = {Phase.HEALTHY, Phase.FAILED, Phase.REVERTED, Phase.REVERT_FAILED, Phase.SKIPPED}
NEXT_STEP = {
    State.HALTED: "the error threshold was crossed: look at the failed gateways "
    "(`fleet rollout status {id}`, `fleet logs GW`), then `fleet rollout resume {id}` to go on "
    "or `fleet rollout rollback {id}` to return everyone",
    State.PAUSED: "paused: `fleet rollout resume {id}` goes on",
    State.ABORTED: "aborted: `fleet rollout rollback {id}` returns the gateways already updated",
    State.ROLLED_BACK: "every gateway the rollout touched is back on what it ran before",
    State.DONE: "done",
}


def parse_window(text: str) -> WindowSpec:
    """'mon,tue 22:00-04:00' or '22:00-04:00' (every day), UTC."""
    days_part, _, hours = text.strip().rpartition(" ")
    start, sep, end = hours.partition("-")
    days = [d.strip() for d in days_part.split(",") if d.strip()] or [
        "mon",
        "tue",
        "wed",
        "thu",
        "fri",
        "sat",
        "sun",
    ]
    try:
        if not sep:
            raise ValueError
        w = Window(days=days, start=start, end=end)
    except ValueError:
        raise ValueError(f"--window {text!r}: write 'mon,tue 22:00-04:00' (UTC)") from None
    return WindowSpec.parse(list(w.days), w.start, w.end)


def policy_from_options(
    defaults: RolloutDefaults,
    canary: str | None,
    wave_size: str | None,
    max_parallel: int | None,
    error_threshold: str | None,
    gate_timeout: float | None,
    pause: float | None,
    windows: list[str] | None,
    rollback_all: bool,
    receipts: bool,
) -> Policy:
    """The rollout's policy: command-line options over fleet.yaml's defaults."""
    try:
        chosen = (
            tuple(parse_window(w) for w in windows)
            if windows
            else tuple(WindowSpec.parse(list(w.days), w.start, w.end) for w in defaults.windows)
        )
        return Policy(
            canary=Amount.parse(canary or defaults.canary, "--canary"),
            wave_size=Amount.parse(wave_size or defaults.wave_size, "--wave-size"),
            max_parallel=max_parallel or defaults.max_parallel,
            error_threshold=Amount.parse(
                error_threshold or defaults.error_threshold, "--error-threshold"
            ),
            gate_timeout_s=gate_timeout or defaults.gate_timeout_s,
            pause_s=defaults.pause_s if pause is None else pause,
            windows=chosen,
            rollback_all_on_halt=rollback_all,
            drained_depth=defaults.drained_depth,
            require_receipts=receipts,
        )
    except ValueError as exc:
        fail(str(exc))


def previous_versions(inventory: Inventory, gateways: list[str]) -> dict[str, str]:
    """What each gateway runs now: its reported version, else the inventory's record."""
    try:
        feed = StatusFeed(inventory.config.broker).start()
    except FeedError as exc:
        fail(str(exc), Exit.UNREACHABLE)
    try:
        feed.settle()
        heard = feed.snapshot()
    finally:
        feed.stop()
    found = {}
    for gw in gateways:
        status = heard[gw].status if gw in heard else None
        found[gw] = (
            status.version
            if status and status.version
            else inventory.gateways[gw].current_release or ""
        )
    return found


def drive(
    inventory: Inventory,
    store: StateStore,
    rollout_id: str,
    operator: str,
    json: bool,
    downgrade: bool = False,
    posted: str = "",
) -> None:
    """Run the rollout to rest, then print the summary and exit with a telling code."""
    rollout = store.load(rollout_id)
    try:
        feed = StatusFeed(inventory.config.broker).start()
    except FeedError as exc:
        fail(str(exc), Exit.UNREACHABLE)
    feed.settle()

    def targets(kind: str, value: str, gateway: str) -> Target:
        target = resolve(inventory.layout, kind, value, gateway)
        if downgrade and kind == "release" and value == rollout.target:
            return Target(target.kind, target.value, target.path, target.sha256, True)
        return target

    try:
        with _progress(rollout, json) as emit:
            runner = Runner(
                store,
                inventory,
                backends_for(inventory, feed, operator),
                feed,
                targets,
                operator,
                emit=emit,
            )
            rollout = runner.run(rollout)
    except LeaseHeld as exc:
        if posted:  # the CLI driving it applies the command just posted: nothing more to do
            out.print(f"rollout {rollout_id} is driven by {exc.holder}, which applies the {posted}")
            return
        fail(str(exc), Exit.REFUSED)
    finally:
        feed.stop()
    sync_inventory(inventory, rollout)
    _finish(rollout, json)


class _progress:
    """Rich progress (gateways settled per wave) or JSON events, as the caller asked."""

    def __init__(self, rollout: Rollout, json: bool) -> None:
        self.rollout, self.json = rollout, json
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=err,
            disable=json,
        )
        self.tasks: dict[int, TaskID] = {}
        self.counted = {g for g, s in rollout.steps.items() if s.phase in SETTLED}

    def __enter__(self) -> Callable[[dict[str, object]], None]:
        self.progress.start()
        for wave in range(self.rollout.waves):
            steps = [s for s in self.rollout.steps.values() if s.wave == wave]
            name = "canary" if wave == 0 else f"wave {wave}"
            done = sum(s.phase in SETTLED for s in steps)
            self.tasks[wave] = self.progress.add_task(name, total=len(steps), completed=done)
        return self.emit

    def emit(self, event: dict[str, object]) -> None:
        if self.json:
            emit_json({"ts": time.time(), **event})
            return
        if event["event"] == "step" and event["phase"] in {p.value for p in SETTLED}:
            if event["gateway"] not in self.counted:  # a failed one settles twice: once here
                self.counted.add(str(event["gateway"]))
                self.progress.advance(self.tasks[int(str(event["wave"]))])
            if event["phase"] != "healthy":
                self.progress.console.print(
                    f"  {event['gateway']}: {event['phase']}: {event['detail']}", highlight=False
                )
        elif event["event"] == "rollout":
            self.progress.console.print(f"rollout {event['rollout']}: {event['state']}")

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()


def _finish(rollout: Rollout, json: bool) -> None:
    counts = summary(rollout)
    next_step = NEXT_STEP.get(rollout.state, "").format(id=rollout.id)
    if json:
        emit_json(
            {
                "event": "summary",
                "rollout": rollout.id,
                "state": rollout.state.value,
                "phases": counts,
                "next": next_step,
            }
        )
    else:
        show_rollout(rollout, False)
        out.print(next_step, highlight=False)
    if rollout.state is State.DONE or rollout.state is State.PAUSED:
        return
    raise typer.Exit(int(Exit.FAILED))


def show_rollout(rollout: Rollout, json: bool) -> None:
    if json:
        emit_json(
            {
                "id": rollout.id,
                "kind": rollout.kind,
                "target": rollout.target,
                "state": rollout.state.value,
                "wave": rollout.wave,
                "waves": rollout.waves,
                "steps": [
                    {
                        "gateway": s.gateway,
                        "wave": s.wave,
                        "phase": s.phase.value,
                        "previous": s.previous,
                        "detail": s.detail,
                    }
                    for s in rollout.steps.values()
                ],
            }
        )
        return
    table = Table(
        "gateway",
        "wave",
        "phase",
        "previous",
        "detail",
        title=f"{rollout.kind} rollout {rollout.id} of {rollout.target}: {rollout.state.value}",
    )
    for s in sorted(rollout.steps.values(), key=lambda s: (s.wave, s.gateway)):
        table.add_row(
            s.gateway, "canary" if s.wave == 0 else str(s.wave), s.phase.value, s.previous, s.detail
        )
    out.print(table)


def show_rollouts(rows: list[RolloutRow], json: bool) -> None:
    if json:
        emit_json([r.__dict__ for r in rows])
        return
    table = Table("id", "kind", "target", "selector", "operator", "state", "wave", "started")
    for r in rows:
        started = time.strftime("%Y-%m-%d %H:%M", time.gmtime(r.created_at))
        table.add_row(
            r.id,
            r.kind,
            r.target,
            r.selector,
            r.operator,
            r.state,
            f"{min(r.wave + 1, r.waves)}/{r.waves}",
            started,
        )
    out.print(table)


def is_live(row: RolloutRow) -> bool:
    return State(row.state) not in FINAL
