"""Rollout options over fleet.yaml's defaults, and maintenance windows typed on a command line."""

from __future__ import annotations

import pytest
import typer

from fleet.cli.drive import parse_window, policy_from_options
from fleet.inventory import RolloutDefaults, Window
from fleet.rollout.policy import Amount, WindowSpec


def test_window_with_and_without_days() -> None:
    assert parse_window("mon,tue 22:00-04:30") == WindowSpec(("mon", "tue"), 22 * 60, 4 * 60 + 30)
    every_day = parse_window("12:00-13:00")
    assert len(every_day.days) == 7 and every_day.start_min == 720


@pytest.mark.parametrize("bad", ["mon 25:00-01:00", "mon 22:00", "funday 10:00-11:00"])
def test_a_bad_window_names_itself(bad: str) -> None:
    with pytest.raises(ValueError, match=f"--window '{bad}': write 'mon,tue 22:00-04:00'"):
        parse_window(bad)


def test_options_override_defaults_and_windows_come_from_fleet_yaml() -> None:
    defaults = RolloutDefaults(
        canary="5%", windows=[Window(days=["sat"], start="06:00", end="10:00")]
    )
    policy = policy_from_options(defaults, None, "10", 3, None, None, None, None, True, False)
    assert policy.canary == Amount(5, True) and policy.wave_size == Amount(10, False)
    assert policy.max_parallel == 3 and policy.rollback_all_on_halt and not policy.require_receipts
    assert policy.windows == (WindowSpec(("sat",), 360, 600),)
    with pytest.raises(typer.Exit):  # reported as bad input (exit code 2)
        policy_from_options(defaults, "many", None, None, None, None, None, None, False, True)
