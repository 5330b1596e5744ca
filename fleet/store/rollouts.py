"""Persist rollouts step by step, claim gateways transactionally, and keep the audit log."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, replace
from typing import Any

import sqlalchemy as sa

from factory_common.errors import FleetError
from fleet.rollout.model import FINAL, Phase, Policy, Rollout, State, Step
from fleet.rollout.policy import Amount, WindowSpec
from fleet.store.schema import audit, claims, open_engine, rollouts, steps

# Named outside the class: inside it, `list` is StateStore.list.
AuditRows = list[dict[str, Any]]


class ClaimRefused(FleetError, RuntimeError):
    """Another live rollout holds some of the gateways; `holders` maps gateway -> (rollout, who)."""

    def __init__(self, holders: dict[str, tuple[str, str]]) -> None:
        self.holders = holders
        by_rollout: dict[tuple[str, str], list[str]] = {}
        for gw, holder in sorted(holders.items()):
            by_rollout.setdefault(holder, []).append(gw)
        held = "; ".join(
            f"rollout {rid} by {who} holds {', '.join(gws)}"
            for (rid, who), gws in by_rollout.items()
        )
        super().__init__(
            f"gateways already in a live rollout: {held}. Wait for it to finish, or "
            "`fleet rollout abort ID` it, or narrow your selector."
        )


@dataclass(frozen=True)
class RolloutRow:
    """A rollout's header as listed by `fleet rollout status`."""

    id: str
    kind: str
    target: str
    selector: str
    operator: str
    created_at: float
    updated_at: float
    state: str
    wave: int
    waves: int


def policy_to_json(policy: Policy) -> str:
    data = asdict(policy)
    data["canary"] = str(policy.canary)
    data["wave_size"] = str(policy.wave_size)
    data["error_threshold"] = str(policy.error_threshold)
    return json.dumps(data)


def policy_from_json(text: str) -> Policy:
    data = json.loads(text)
    for key in ("canary", "wave_size", "error_threshold"):
        data[key] = Amount.parse(data[key], key)
    data["windows"] = tuple(
        WindowSpec(tuple(w["days"]), w["start_min"], w["end_min"]) for w in data["windows"]
    )
    return Policy(**data)


def _step_row(rollout_id: str, step: Step) -> dict[str, Any]:
    row = asdict(step)
    row["phase"] = step.phase.value
    return {"rollout_id": rollout_id, **row}


class StateStore:
    """The fleet's state database; every write is one short transaction."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = open_engine(url)

    def close(self) -> None:
        self.engine.dispose()

    # ------------------------------------------------------------ claims and creation

    def create(self, rollout: Rollout, selector: str, operator: str) -> None:
        """Claim every gateway and store the new rollout, atomically; or raise ClaimRefused."""
        now = time.time()
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    claims.insert(),
                    [
                        {
                            "gateway": gw,
                            "rollout_id": rollout.id,
                            "operator": operator,
                            "claimed_at": now,
                        }
                        for gw in sorted(rollout.steps)
                    ],
                )
                conn.execute(
                    rollouts.insert().values(
                        **self._header(rollout, now),
                        selector=selector,
                        operator=operator,
                        created_at=now,
                    )
                )
                conn.execute(
                    steps.insert(), [_step_row(rollout.id, s) for s in rollout.steps.values()]
                )
        except sa.exc.IntegrityError:
            raise ClaimRefused(self.holders(rollout.steps)) from None
        self.audit(
            operator,
            f"{rollout.kind} rollout start",
            rollout.id,
            "started",
            f"{rollout.target} to {len(rollout.steps)} gateways ({selector or 'all'})",
        )

    def holders(self, gateways: Iterable[str]) -> dict[str, tuple[str, str]]:
        wanted = list(gateways)
        query = sa.select(claims).where(claims.c.gateway.in_(wanted))
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        return {r.gateway: (r.rollout_id, r.operator) for r in rows}

    # ------------------------------------------------------------ saving and loading

    @staticmethod
    def _header(rollout: Rollout, now: float) -> dict[str, Any]:
        return {
            "id": rollout.id,
            "kind": rollout.kind,
            "target": rollout.target,
            "updated_at": now,
            "state": rollout.state.value,
            "policy": policy_to_json(rollout.policy),
            "waves": rollout.waves,
            "wave": rollout.wave,
            "wave_done_at": rollout.wave_done_at,
        }

    def save(
        self,
        rollout: Rollout,
        changed: Iterable[str],
        notes: Iterable[tuple[str, str, str, str, str]] = (),
    ) -> None:
        """Write the header, the `changed` steps and audit `notes` in one transaction, so the
        audit log can never lag behind the state it describes."""
        header = self._header(rollout, time.time())
        del header["id"], header["kind"], header["target"], header["policy"]
        with self.engine.begin() as conn:
            conn.execute(rollouts.update().where(rollouts.c.id == rollout.id).values(**header))
            for gw in changed:
                row = _step_row(rollout.id, rollout.steps[gw])
                del row["rollout_id"], row["gateway"]
                conn.execute(
                    steps.update()
                    .where(steps.c.rollout_id == rollout.id, steps.c.gateway == gw)
                    .values(**row)
                )
            for operator, action, subject, result, detail in notes:
                conn.execute(
                    audit.insert().values(
                        ts=time.time(),
                        operator=operator,
                        action=action,
                        subject=subject,
                        result=result,
                        detail=detail,
                    )
                )
            if rollout.state in FINAL or rollout.state is State.ABORTED:
                self._release_settled(conn, rollout)

    @staticmethod
    def _release_settled(conn: sa.Connection, rollout: Rollout) -> None:
        """Free the claims of gateways the rollout will not touch again."""
        busy = {Phase.REQUESTING, Phase.GATING, Phase.REVERTING}
        done = [
            gw
            for gw, s in rollout.steps.items()
            if s.phase not in busy and not (s.failed and not s.reverted)
        ]
        if rollout.state is State.ABORTED and len(done) < len(rollout.steps):
            return
        conn.execute(claims.delete().where(claims.c.rollout_id == rollout.id))

    def load(self, rollout_id: str) -> Rollout:
        with self.engine.connect() as conn:
            head = conn.execute(sa.select(rollouts).where(rollouts.c.id == rollout_id)).first()
            if head is None:
                raise KeyError(f"no rollout {rollout_id!r}: see `fleet rollout status`")
            rows = conn.execute(
                sa.select(steps).where(steps.c.rollout_id == rollout_id).order_by(steps.c.gateway)
            ).all()
        loaded = {
            r.gateway: Step(
                gateway=r.gateway,
                wave=r.wave,
                previous=r.previous,
                phase=Phase(r.phase),
                requested_at_ns=r.requested_at_ns,
                baseline_seq=r.baseline_seq,
                deadline=r.deadline,
                detail=r.detail,
                failed=bool(r.failed),
                reverted=bool(r.reverted),
            )
            for r in rows
        }
        rollout = Rollout(
            head.id, head.kind, head.target, policy_from_json(head.policy), head.waves, loaded
        )
        return replace(
            rollout, state=State(head.state), wave=head.wave, wave_done_at=head.wave_done_at
        )

    def rollouts(self, live_only: bool = False) -> list[RolloutRow]:
        query = sa.select(rollouts).order_by(rollouts.c.created_at.desc())
        if live_only:
            query = query.where(rollouts.c.state.notin_([s.value for s in FINAL]))
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        return [
            RolloutRow(
                r.id,
                r.kind,
                r.target,
                r.selector,
                r.operator,
                r.created_at,
                r.updated_at,
                r.state,
                r.wave,
                r.waves,
            )
            for r in rows
        ]

    # ------------------------------------------------------------ operator commands

    def post_command(self, rollout_id: str, command: str, operator: str) -> None:
        """Queue pause/resume/abort/rollback for the CLI driving the rollout (or the next run)."""
        with self.engine.begin() as conn:
            result = conn.execute(
                rollouts.update()
                .where(rollouts.c.id == rollout_id)
                .values(command=command, command_by=operator)
            )
        if result.rowcount == 0:
            raise KeyError(f"no rollout {rollout_id!r}: see `fleet rollout status`")
        self.audit(operator, f"rollout {command}", rollout_id, "requested", "")

    def take_command(self, rollout_id: str) -> tuple[str, str] | None:
        with self.engine.begin() as conn:
            row = conn.execute(
                sa.select(rollouts.c.command, rollouts.c.command_by).where(
                    rollouts.c.id == rollout_id
                )
            ).first()
            if row is None or row.command is None:
                return None
            conn.execute(
                rollouts.update()
                .where(rollouts.c.id == rollout_id)
                .values(command=None, command_by=None)
            )
        return row.command, row.command_by or "?"

    # ------------------------------------------------------------ audit

    def audit(self, operator: str, action: str, subject: str, result: str, detail: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                audit.insert().values(
                    ts=time.time(),
                    operator=operator,
                    action=action,
                    subject=subject,
                    result=result,
                    detail=detail,
                )
            )

    def audit_log(self, subject: str | None = None, limit: int = 1000) -> AuditRows:
        query = sa.select(audit).order_by(audit.c.id)
        if subject:
            query = query.where(audit.c.subject == subject)
        with self.engine.connect() as conn:
            rows = conn.execute(query.limit(limit)).all()
        return [dict(r._mapping) for r in rows]
