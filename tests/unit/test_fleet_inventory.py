"""The inventory: errors name file, line and key; devices commands keep the directory valid."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from factory_common.config import ConfigError
from fleet.cli import app
from fleet.inventory import init_fleet_dir, load_inventory
from fleet.layout import FleetLayout


@pytest.fixture
def layout(tmp_path: Path) -> FleetLayout:
    layout = FleetLayout(tmp_path / "plant2")
    init_fleet_dir(layout, "plant2")
    return layout


def test_errors_name_file_line_and_key_for_every_bad_entry(layout: FleetLayout) -> None:
    layout.gateway_file("gw-01").write_text("id: gw-01\nsite: plant2\nboard: rpi9\n")
    layout.gateway_file("gw-02").write_text("id: gw-03\n")
    layout.gateway_file("gw-04").write_text("id: gw-04\nlabels: {a: 1}\nbackend: ftp\n")
    with pytest.raises(ConfigError) as caught:
        load_inventory(layout)
    problems = caught.value.problems
    assert problems[0].startswith(
        f"{layout.gateway_file('gw-01')}:3: board: Value error, unknown board 'rpi9'"
    )
    assert problems[1] == f"{layout.gateway_file('gw-02')}:1: id: 'gw-03' must match the file name"
    assert any(p.startswith(f"{layout.gateway_file('gw-04')}:3: backend:") for p in problems)
    assert any(p.startswith(f"{layout.gateway_file('gw-04')}:2: labels.a:") for p in problems)


def test_fleet_yaml_typos_are_errors(layout: FleetLayout) -> None:
    layout.fleet_file.write_text("name: x\ndefaults:\n  canray: 2\n")
    with pytest.raises(ConfigError, match=r"fleet.yaml:3: defaults.canray: unknown key"):
        load_inventory(layout)


def test_devices_add_label_list_remove(layout: FleetLayout) -> None:
    root = ["-C", str(layout.root), "--operator", "alice"]
    cli = CliRunner()
    add = ["devices", "add", "gw-01", "--line", "anodizing", "--label", "role=press", *root]
    assert cli.invoke(app, add).exit_code == 0
    assert cli.invoke(app, ["devices", "add", "gw-02", "--line", "oven", *root]).exit_code == 0
    assert cli.invoke(app, ["devices", "label", "gw-02", "beta=yes", *root]).exit_code == 0
    listed = cli.invoke(
        app, ["devices", "list", "beta,line in (oven)", "--json", "-C", str(layout.root)]
    )
    assert [g["id"] for g in json.loads(listed.stdout)] == ["gw-02"]
    bad = cli.invoke(app, ["devices", "list", "line=(", "-C", str(layout.root)])
    assert bad.exit_code == 2 and "unbalanced parentheses" in bad.output
    missing = cli.invoke(app, ["devices", "show", "gw-09", "-C", str(layout.root)])
    assert missing.exit_code == 2 and "no gateway 'gw-09'" in missing.output
    assert cli.invoke(app, ["devices", "remove", "gw-01", *root]).exit_code == 0
    assert sorted(load_inventory(layout).gateways) == ["gw-02"]
    bad_id = cli.invoke(app, ["devices", "add", "gw/1", *root])
    assert bad_id.exit_code == 2 and "invalid gateway id" in bad_id.output
