"""The rollout's data: its policy, each gateway's step, and the events and actions between them."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from fleet.rollout.policy import Amount, WindowSpec


class Phase(StrEnum):
    PENDING = "pending"  # not asked yet
    REQUESTING = "requesting"  # about to ask (persisted first: on resume, ask again)
    GATING = "gating"  # asked; the health gate runs until its deadline
    HEALTHY = "healthy"
    FAILED = "failed"  # failed its gate or could not be asked; a revert follows
    REVERTING = "reverting"  # about to ask it to return (persisted first)
    REVERTED = "reverted"
    REVERT_FAILED = "revert_failed"  # could not be asked to return (its agent returns alone)
    SKIPPED = "skipped"  # never asked: the rollout halted, aborted or rolled back first


TERMINAL = frozenset(
    {Phase.HEALTHY, Phase.REVERTED, Phase.REVERT_FAILED, Phase.SKIPPED, Phase.FAILED}
)
IN_FLIGHT = frozenset({Phase.REQUESTING, Phase.GATING})


class State(StrEnum):
    RUNNING = "running"
    PAUSED = "paused"  # by an operator: no new gateway is asked
    HALTED = "halted"  # the error threshold was crossed: failed gateways are reverted
    ABORTED = "aborted"  # emergency stop: nobody new is asked, in-flight gates finish
    ROLLING_BACK = "rolling_back"  # every gateway touched goes back
    DONE = "done"
    ROLLED_BACK = "rolled_back"


FINAL = frozenset({State.DONE, State.ROLLED_BACK})
ONE, QUARTER, NONE = Amount(1, False), Amount(25, True), Amount(0, False)


@dataclass(frozen=True)
class Policy:
    canary: Amount = ONE
    wave_size: Amount = QUARTER
    max_parallel: int = 10
    error_threshold: Amount = NONE
    gate_timeout_s: float = 600.0
    pause_s: float = 0.0
    windows: tuple[WindowSpec, ...] = ()
    rollback_all_on_halt: bool = False
    drained_depth: int = 1000
    require_receipts: bool = True


@dataclass(frozen=True)
class Step:
    gateway: str
    wave: int
    previous: str  # what a revert returns to (release version or config hash)
    phase: Phase = Phase.PENDING
    requested_at_ns: int = 0
    baseline_seq: int = 0
    deadline: float = 0.0
    detail: str = ""
    failed: bool = False  # failed its gate or could not be asked (counts against the threshold)
    reverted: bool = False  # a revert was asked for and answered: never asked twice


@dataclass(frozen=True)
class Rollout:
    id: str
    kind: str  # "release" or "config"
    target: str
    policy: Policy
    waves: int
    steps: dict[str, Step] = field(default_factory=dict)
    state: State = State.RUNNING
    wave: int = 0  # the wave now running
    wave_done_at: float = 0.0  # when the previous wave finished (pause_s counts from here)


# ------------------------------------------------------------------ actions (engine -> shell)


@dataclass(frozen=True)
class Request:
    gateway: str


@dataclass(frozen=True)
class Revert:
    gateway: str
    previous: str


@dataclass(frozen=True)
class Check:
    gateways: tuple[str, ...]


@dataclass(frozen=True)
class Wait:
    until: float
    reason: str


Action = Request | Revert | Check | Wait

# ------------------------------------------------------------------ events (shell -> engine)


@dataclass(frozen=True)
class Asking:
    """Persisted before the request is sent."""

    gateway: str


@dataclass(frozen=True)
class Asked:
    gateway: str
    now: float
    now_ns: int
    baseline_seq: int


@dataclass(frozen=True)
class AskFailed:
    gateway: str
    reason: str


@dataclass(frozen=True)
class Gated:
    gateway: str
    ok: bool
    reason: str


@dataclass(frozen=True)
class Returning:
    """Persisted before the revert is sent."""

    gateway: str


@dataclass(frozen=True)
class Returned:
    gateway: str
    ok: bool
    reason: str = ""


@dataclass(frozen=True)
class Operator:
    command: str  # pause, resume, abort, rollback
    now: float = 0.0


Event = Asking | Asked | AskFailed | Gated | Returning | Returned | Operator
