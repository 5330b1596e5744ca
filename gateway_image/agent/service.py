"""The update agent's shell: carries out what policy.py decides, persisting each state first.

Order of every update: persist the next state, then act (switch a link, restart the gateway),
so whatever is found on disk after a power cut names the step that may be half-done, and
`policy.recover` ends it on a working release. The commit point is the write of the state
naming the trial as committed; until then any restart returns to the previous release.
"""

from __future__ import annotations

import shutil
import tempfile
import time
import urllib.request
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import msgspec

from factory_common import wire
from factory_common.logs import get_logger
from gateway_image.agent import policy
from gateway_image.agent.artifact import ArtifactError, load_public_keys
from gateway_image.agent.health import assess
from gateway_image.agent.link import AgentLink
from gateway_image.agent.policy import AgentState, Installed, Recovery, Verdict
from gateway_image.agent.requests import next_request
from gateway_image.agent.slots import (
    AgentPaths,
    InstallError,
    check_config,
    install_release,
    switch_link,
    write_atomic,
    write_config,
)
from gateway_image.agent.supervisor import Supervisor


def load_state(paths: AgentPaths) -> AgentState:
    try:
        return msgspec.json.decode(paths.state_file.read_bytes(), type=AgentState)
    except FileNotFoundError:
        raise FileNotFoundError(
            f"no agent state at {paths.state_file}: install a first release with "
            "`gateway-agent install-first ARTIFACT CONFIG`"
        ) from None


def save_state(paths: AgentPaths, state: AgentState) -> None:
    write_atomic(paths.state_file, msgspec.json.encode(state))


def point_links(paths: AgentPaths, running: Installed) -> None:
    switch_link(paths.current, paths.slot(running.slot))
    switch_link(paths.active_config, paths.config_slot(running.config))


class Agent:
    def __init__(
        self,
        paths: AgentPaths,
        gateway: str,
        supervisor: Supervisor,
        link: AgentLink | None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.paths = paths
        self.gateway = gateway
        self.supervisor = supervisor
        self.link = link
        self.clock = clock
        self.state = load_state(paths)
        self.log = get_logger(component="agent", gateway=gateway)

    # ------------------------------------------------------------ steps

    def _set(self, state: AgentState) -> None:
        save_state(self.paths, state)  # before anything acts on it
        self.state = state
        self.log.info(
            "agent_state", phase=state.phase.value, request=state.request, detail=state.detail
        )
        self.publish()

    def publish(self) -> None:
        if self.link is None:
            return
        s = self.state
        target = s.trial.release if s.trial else ""
        self.link.publish(
            wire.UpdateState(
                v=wire.WIRE_VERSION,
                gateway=self.gateway,
                ts=wire.now_ns(),
                phase=s.phase,
                release=s.committed.release,
                slot=s.committed.slot,
                config_sha256=s.committed.config_sha256,
                request=s.request,
                action=s.action,
                target=target,
                detail=s.detail,
                crashes=s.crashes,
            )
        )

    def start(self) -> None:
        """At agent start: end whatever a restart interrupted, then run the gateway."""
        for leftover in self.paths.root.glob(".[wic]*-*"):  # scratch of an interrupted step
            if leftover.is_dir() and leftover.name.startswith(
                (".wheels-", ".incoming-", ".config-")
            ):
                shutil.rmtree(leftover, ignore_errors=True)
        recovery = policy.recover(self.state)
        if recovery is Recovery.ABANDON:
            self._set(
                policy.ended(
                    self.state,
                    wire.UpdatePhase.FAILED,
                    "interrupted by a restart before the switch; ask again",
                )
            )
        elif recovery is Recovery.ROLLBACK:
            self._rollback("the agent restarted during the trial (power cut or kill)")
            return
        point_links(self.paths, self.state.committed)
        switch_link(self.paths.committed, self.paths.slot(self.state.committed.slot))
        self.supervisor.restart()
        self.publish()

    def step(self) -> None:
        """One turn of the loop: watch the gateway, judge a trial, or take the next request."""
        crashes = self.supervisor.poll()
        if self.state.phase is wire.UpdatePhase.TRIAL:
            if crashes != self.state.crashes:
                self._set(replace(self.state, crashes=crashes))
            self._judge()
            return
        waiting = next_request(self.paths.requests)
        if waiting is not None:
            path, request = waiting
            if isinstance(request, wire.WireError):
                self.log.warning("agent_request_unreadable", error=str(request))
            else:
                self.handle(request)
            path.unlink(missing_ok=True)

    def _judge(self) -> None:
        trial = self.state.trial
        assert trial is not None
        statuses = self.link.recent_statuses() if self.link else []
        health = assess(statuses, trial.release, self.state.switched_at_ns)
        verdict, reason = policy.judge(self.state, health.healthy, health.reason, self.clock())
        if verdict is Verdict.COMMIT:
            self._set(policy.commit(self.state))  # the commit point
            switch_link(self.paths.committed, self.paths.slot(self.state.committed.slot))
        elif verdict is Verdict.ROLLBACK:
            self._rollback(reason)

    def _rollback(self, reason: str) -> None:
        self._set(policy.rolling_back(self.state, reason))
        point_links(self.paths, self.state.committed)
        self.supervisor.restart()
        self._set(policy.rolled_back(self.state))

    # ------------------------------------------------------------ requests

    def handle(self, request: wire.UpdateRequest) -> None:
        if request.id in self.state.seen:
            self.publish()  # answered already: say where it ended, do nothing twice
            return
        refusal = policy.check_request(self.state, request)
        if refusal:
            state = policy.begin(self.state, request)
            self._set(policy.ended(state, wire.UpdatePhase.REFUSED, refusal))
            return
        self._set(policy.begin(self.state, request))
        try:
            trial = self._prepare(request)
        except ArtifactError as exc:
            self._set(policy.ended(self.state, wire.UpdatePhase.REFUSED, str(exc)))
            return
        except (InstallError, OSError) as exc:
            self._set(policy.ended(self.state, wire.UpdatePhase.FAILED, str(exc)))
            return
        self._set(policy.switching(self.state, trial, self.clock(), request.health_timeout_s))
        point_links(self.paths, trial)
        self.supervisor.restart()
        self._set(policy.on_trial(self.state))

    def _prepare(self, request: wire.UpdateRequest) -> Installed:
        """Install into the inactive slot (or config slot); the gateway keeps running."""
        state = self.state
        if request.action is wire.UpdateAction.ROLLBACK:
            return policy.trial_for(state, request)
        self._set(policy.installing(state))
        state = self.state
        inactive = policy.other(state.committed.slot)
        if request.action is wire.UpdateAction.CONFIG:
            other_config = policy.other(state.committed.config)
            sha = write_config(
                self.paths, other_config, request.config, self.paths.slot(state.committed.slot)
            )
            return policy.trial_for(state, request, sha)
        keys = load_public_keys(self.paths.trusted_keys())
        with tempfile.TemporaryDirectory(dir=self.paths.root, prefix=".incoming-") as scratch:
            artifact = fetch(request.artifact, Path(scratch))
            manifest = install_release(
                self.paths,
                inactive,
                artifact,
                keys,
                running=state.committed.release,
                downgrade=request.downgrade,
                sha256=request.sha256,
            )
        check_config(self.paths.slot(inactive), self.paths.config_slot(state.committed.config))
        release = request.release or manifest.version
        if release != manifest.version:
            raise ArtifactError(f"the request names {release}, the artifact is {manifest.version}")
        return policy.trial_for(state, msgspec.structs.replace(request, release=release))


def fetch(artifact: str, scratch: Path) -> Path:
    """A path on the gateway as is; an http(s) URL downloaded into `scratch` first."""
    if not artifact.startswith(("http://", "https://")):
        path = Path(artifact)
        if not path.is_file():
            raise InstallError(f"no artifact at {path}: upload it first")
        return path
    target = scratch / "artifact.release.tar"
    with urllib.request.urlopen(artifact, timeout=60) as response, target.open("wb") as out:
        shutil.copyfileobj(response, out)
    return target
