"""The `fleet` command: a thin index; each command group lives in its own module."""

from __future__ import annotations

from factory_common.cli import FactoryTyper

# FactoryTyper: an uncaught FactoryError becomes its message and exit code (errors.py).
app = FactoryTyper(
    help="Factory edge fleet: inventory, identities, releases, SD images, rollouts.",
    no_args_is_help=True,
    add_completion=False,
)

# One line per command group; each module owns its commands.
from fleet.cli import audit, config, devices, identity, image, release, remote, rollout, status  # noqa: E402

app.add_typer(image.app, name="image")
app.command("init")(devices.init)
app.add_typer(devices.app, name="devices")
app.command("status")(status.status)
app.add_typer(rollout.app, name="rollout")
app.command("audit")(audit.audit)
app.command("ssh")(remote.ssh)
app.command("logs")(remote.logs)
app.command("exec")(remote.exec_)
app.add_typer(config.app, name="config")
app.add_typer(release.app, name="release")
app.add_typer(identity.ca_app, name="ca")
app.command("provision")(identity.provision_command)
app.command("revoke")(identity.revoke_command)
