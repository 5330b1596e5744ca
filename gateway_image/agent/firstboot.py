"""First boot: install the artifact from the boot partition into slot A, offline, verified.

`fleet image build` puts the release artifact, the release public key and the gateway config
on the boot partition; first boot calls `install_first_slot` (or `gateway-agent install-first`)
with them. Safe to run again: a root that already has a committed release is left alone.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

from gateway_image.agent.artifact import load_public_keys
from gateway_image.agent.policy import AgentState, Installed
from gateway_image.agent.service import load_state, point_links, save_state
from gateway_image.agent.slots import AgentPaths, check_config, install_release, switch_link
from gateway_image.firmware.config import load_gateway_config

FIRST = "a"


def install_first_slot(
    paths: AgentPaths, artifact: Path, config: Path, release_keys: list[Path] | None = None
) -> AgentState:
    """Verify and install `artifact` into slot A with `config`, and commit it as the release.

    `release_keys`: public keys to trust from now on (copied into the agent's keys folder);
    without them the keys already there are used.
    """
    if paths.state_file.exists():
        return load_state(paths)
    paths.keys_dir.mkdir(parents=True, exist_ok=True)
    for key in release_keys or []:
        shutil.copyfile(key, paths.keys_dir / key.name)
    keys = load_public_keys(paths.trusted_keys())
    paths.data_dir.mkdir(parents=True, exist_ok=True)
    manifest = install_release(paths, FIRST, artifact, keys)
    check_config(paths.slot(FIRST), config)
    text = config.read_bytes()
    paths.config_slot(FIRST).parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(config, paths.config_slot(FIRST))
    committed = Installed(FIRST, manifest.version, FIRST, hashlib.sha256(text).hexdigest())
    point_links(paths, committed)
    switch_link(paths.committed, paths.slot(FIRST))
    gateway = load_gateway_config(config).gateway.id
    state = AgentState(committed=committed, gateway=gateway)
    save_state(paths, state)  # last: until this exists, first boot runs again from the start
    return state
