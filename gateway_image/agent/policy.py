"""The update agent's decisions as a pure state machine: no I/O, tested in microseconds.

The shell (service.py) persists every state this module returns *before* acting on it, so a
power cut at any moment restarts the agent in a state that says what was under way; `recover`
then decides how to end on a working release. A trial interrupted by a restart is returned,
never committed: nothing proved the new release healthy, and the old one was.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import StrEnum

from factory_common.wire import TERMINAL_PHASES, UpdateAction, UpdatePhase, UpdateRequest

# Gateway exits during one trial that count as a crash loop (systemd's default burst is 5).
CRASH_LOOP = 3
# Request ids remembered so a request delivered twice (QoS 1) is not carried out twice.
REMEMBERED = 50


@dataclass(frozen=True)
class Installed:
    """What a gateway runs: a release in a slot, with a config in a config slot."""

    slot: str
    release: str
    config: str
    config_sha256: str = ""


@dataclass(frozen=True)
class AgentState:
    committed: Installed
    gateway: str = ""
    phase: UpdatePhase = UpdatePhase.IDLE
    # The committed combination before the last commit, while its slots still hold it.
    previous: Installed | None = None
    trial: Installed | None = None
    request: str = ""
    action: UpdateAction | None = None
    # Wall-clock seconds: a trial's deadline must survive a restart of the agent.
    deadline: float = 0.0
    switched_at_ns: int = 0
    crashes: int = 0
    detail: str = ""
    seen: tuple[str, ...] = field(default=())

    @property
    def running(self) -> Installed:
        """What the gateway should be running now."""
        in_trial = self.phase in (UpdatePhase.SWITCHING, UpdatePhase.TRIAL)
        return self.trial if in_trial and self.trial else self.committed


def other(slot: str) -> str:
    return "b" if slot == "a" else "a"


class Verdict(StrEnum):
    WAIT = "wait"
    COMMIT = "commit"
    ROLLBACK = "rollback"


def check_request(state: AgentState, request: UpdateRequest) -> str | None:
    """Why a request cannot start now (None: it can)."""
    if state.phase not in TERMINAL_PHASES:
        return f"busy with request {state.request!r} ({state.phase.value})"
    if request.action is UpdateAction.ROLLBACK and state.previous is None:
        return "nothing to return to: no earlier release or config is kept"
    if request.action is UpdateAction.INSTALL and request.release == state.committed.release:
        return f"release {request.release} is already the committed one"
    return None


def begin(state: AgentState, request: UpdateRequest) -> AgentState:
    phase = UpdatePhase.VERIFYING if request.action is not UpdateAction.ROLLBACK else state.phase
    seen = (*state.seen, request.id)[-REMEMBERED:]
    return replace(
        state,
        phase=phase,
        request=request.id,
        action=request.action,
        detail="",
        seen=seen,
        crashes=0,
        trial=None,
    )


def installing(state: AgentState) -> AgentState:
    # The inactive slot is about to be overwritten: what it held can no longer be returned to.
    previous, now = state.previous, state.committed
    if previous and (
        (state.action is UpdateAction.INSTALL and previous.slot == other(now.slot))
        or (state.action is UpdateAction.CONFIG and previous.config == other(now.config))
    ):
        previous = None
    return replace(state, phase=UpdatePhase.INSTALLING, previous=previous)


def trial_for(state: AgentState, request: UpdateRequest, config_sha256: str = "") -> Installed:
    """The combination a request puts on trial."""
    now = state.committed
    if request.action is UpdateAction.INSTALL:
        return Installed(other(now.slot), request.release, now.config, now.config_sha256)
    if request.action is UpdateAction.CONFIG:
        return Installed(now.slot, now.release, other(now.config), config_sha256)
    assert state.previous is not None  # check_request refuses a rollback without one
    return state.previous


def switching(state: AgentState, trial: Installed, now: float, timeout: float) -> AgentState:
    return replace(
        state,
        phase=UpdatePhase.SWITCHING,
        trial=trial,
        deadline=now + timeout,
        switched_at_ns=int(now * 1e9),
        crashes=0,
    )


def on_trial(state: AgentState) -> AgentState:
    return replace(state, phase=UpdatePhase.TRIAL)


def judge(state: AgentState, healthy: bool, reason: str, now: float) -> tuple[Verdict, str]:
    """Commit once healthy; return on a crash loop or when the deadline passes unhealthy."""
    if state.crashes >= CRASH_LOOP:
        return Verdict.ROLLBACK, f"crash loop: the gateway exited {state.crashes} times"
    if healthy:
        return Verdict.COMMIT, ""
    if now >= state.deadline:
        return Verdict.ROLLBACK, f"not healthy before the deadline: {reason}"
    return Verdict.WAIT, reason


def commit(state: AgentState) -> AgentState:
    assert state.trial is not None
    return replace(
        state,
        phase=UpdatePhase.COMMITTED,
        previous=state.committed,
        committed=state.trial,
        trial=None,
        detail="",
    )


def rolling_back(state: AgentState, reason: str) -> AgentState:
    return replace(state, phase=UpdatePhase.ROLLING_BACK, detail=reason)


def rolled_back(state: AgentState) -> AgentState:
    return replace(state, phase=UpdatePhase.ROLLED_BACK, trial=None)


def ended(state: AgentState, phase: UpdatePhase, reason: str) -> AgentState:
    """A request refused or failed before any switch: the committed release never stopped."""
    return replace(state, phase=phase, detail=reason, trial=None)


class Recovery(StrEnum):
    NONE = "none"  # idle or finished: run the committed release
    ABANDON = "abandon"  # interrupted before the switch: the committed release is untouched
    ROLLBACK = "rollback"  # interrupted after the switch: return to the committed release


def recover(state: AgentState) -> Recovery:
    """What to do with the state found at start (after a crash, kill -9 or power cut)."""
    if state.phase in TERMINAL_PHASES:
        return Recovery.NONE
    if state.phase in (UpdatePhase.VERIFYING, UpdatePhase.INSTALLING):
        return Recovery.ABANDON
    return Recovery.ROLLBACK
