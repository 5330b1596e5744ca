"""Wiring checks over a gateway's connectors and its board: catch wiring mistakes before power-on.

Each check is a pure function returning problems that name the devices involved and the config
location (so the loader can print file:line). The checks read only what connector configs
claim (hardware/claims.py), so this module imports nothing from the gateway firmware and the
config package can call it from its own validator.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from factory_common.config import ConfigError, format_path
from hardware.claims import Loc, PinClaim, SerialClaim, WiringProblem
from hardware.profiles import BoardProfile, HatProfile, load_board, load_hat, strictest_profile
from hardware.serial_checks import serial_problems

# What sits between a pin and its load, by how it keeps the Pi's side apart from the field's.
# Isolating: the module's input is an LED (opto, SSR) or an opto-coupled relay input.
ISOLATING_DRIVERS = {"relay", "ssr", "opto"}
# Non-isolating: a ULN2803 or MOSFET switches the load's 0 V side, so its ground is the field
# 0 V and the Pi's GND at once; that bridges the isolation every other interface keeps.
BRIDGING_DRIVERS = {"uln2803", "mosfet"}
NO_DRIVER = {"direct", "none"}


class Connector(Protocol):
    """What the checks need of a connector config: its claims, never its field names."""

    @property
    def name(self) -> str: ...

    def pin_claims(self) -> Sequence[PinClaim]: ...

    def serial_port(self) -> SerialClaim | None: ...


@dataclass(frozen=True)
class Placed:
    """A pin claim with the index of its connector, for full config locations."""

    index: int
    claim: PinClaim

    @property
    def loc(self) -> Loc:
        return ("connectors", self.index, *self.claim.loc)


def resolve_board(
    board: str | None, hats: Sequence[str] = ()
) -> tuple[BoardProfile, list[WiringProblem]]:
    """The named board with its HATs fitted, or the strictest profile when none is named."""
    problems: list[WiringProblem] = []
    profile = strictest_profile()
    if board is not None:
        try:
            profile = load_board(board)
        except ConfigError as exc:
            problems.append(WiringProblem(("gateway", "board"), "; ".join(exc.problems), board))
    fitted: list[HatProfile] = []
    for i, name in enumerate(hats):
        try:
            fitted.append(load_hat(name))
        except ConfigError as exc:
            problems.append(WiringProblem(("gateway", "hats", i), "; ".join(exc.problems), name))
    problems += hats_overlap(fitted, profile)
    return profile.with_hats(tuple(fitted)), problems


def hats_overlap(hats: Sequence[HatProfile], board: BoardProfile) -> list[WiringProblem]:
    """Two HATs wired to one GPIO cannot both be fitted."""
    owner: dict[int, str] = {}
    problems = []
    for i, hat in enumerate(hats):
        for claim in hat.claims:
            if claim.gpio in owner:
                message = (
                    f"the {hat.title} and the {owner[claim.gpio]} both use "
                    f"{pin_name(claim.gpio, board)}: fit only one of them"
                )
                problems.append(WiringProblem(("gateway", "hats", i), message, hat.name))
            owner.setdefault(claim.gpio, hat.title)
    return problems


def wiring_problems(
    board_name: str | None,
    hats: Sequence[str],
    connectors: Sequence[Connector],
    board: BoardProfile | None = None,
) -> list[WiringProblem]:
    """Every wiring problem of these connectors on the named board (or on `board` if given)."""
    problems: list[WiringProblem] = []
    if board is None:
        board, problems = resolve_board(board_name, hats)
    claims = [Placed(i, c) for i, conn in enumerate(connectors) for c in conn.pin_claims()]
    problems += shared_pins(claims, board)
    problems += board_pins(claims, board)
    problems += output_drivers(claims)
    problems += boot_states(claims, board)
    problems += counter_rates(claims)
    ports = [(i, port) for i, c in enumerate(connectors) if (port := c.serial_port()) is not None]
    problems += serial_problems(ports, [c.name for c in connectors], board)
    return problems


def pin_name(gpio: int, board: BoardProfile) -> str:
    pin = board.header_pin(gpio)
    return f"GPIO{gpio} (header pin {pin})" if pin is not None else f"GPIO{gpio}"


def shared_pins(claims: Iterable[Placed], board: BoardProfile) -> list[WiringProblem]:
    """Two things wired to one GPIO, anywhere in the config."""
    return pin_conflicts(((p.claim, p.loc) for p in claims), board)


def pin_conflicts(
    claims: Iterable[tuple[PinClaim, Loc]], board: BoardProfile, scope: str = ""
) -> list[WiringProblem]:
    """Two things wired to one GPIO: each later claim names the first, both by device and pin."""
    first: dict[int, tuple[PinClaim, Loc]] = {}
    problems = []
    for claim, loc in claims:
        if claim.gpio not in first:
            first[claim.gpio] = (claim, loc)
            continue
        other, other_loc = first[claim.gpio]
        message = (
            f"{pin_name(claim.gpio, board)} is wired to two things: {claim.who} and "
            f"{other.who} (at {format_path(other_loc)}{scope}); give one of them a free pin"
        )
        problems.append(WiringProblem(loc, message, claim.gpio))
    return problems


def board_pins(claims: Iterable[Placed], board: BoardProfile) -> list[WiringProblem]:
    """Pins the board does not have, or reserves for the HAT EEPROM, a HAT or an enabled bus."""
    taken = board.taken_gpios()
    free = ", ".join(str(g) for g in board.free_gpios())
    problems = []
    for placed in claims:
        gpio = placed.claim.gpio
        if board.header_pin(gpio) is None:
            why = f"{board.title} ({board.name}) has no GPIO{gpio} on its header"
        elif gpio in taken:
            why = f"{pin_name(gpio, board)} is reserved on {board.title}: {taken[gpio]}"
        else:
            continue
        message = f"{placed.claim.who}: {why}; free GPIOs are {free}"
        problems.append(WiringProblem(placed.loc, message, gpio))
    return problems


def output_drivers(claims: Iterable[Placed]) -> list[WiringProblem]:
    """Outputs need an isolating driver: nothing, or a low-side switch, between pin and load
    either kills the pin or joins the Pi's GND to the field 0 V."""
    problems = []
    for placed in claims:
        claim = placed.claim
        if claim.role != "output" or claim.driver in ISOLATING_DRIVERS:
            continue
        loc = (*placed.loc[:-1], "driver")
        if claim.driver in BRIDGING_DRIVERS:
            message = (
                f"{claim.who} on GPIO{claim.gpio} names driver {claim.driver!r}, which is not "
                "isolating: its ground is the field 0 V and the Pi's GND at once, bridging the "
                "isolation every other interface keeps (hardware/gpio.md); drive the load "
                "through a relay module with an opto-coupled input (relay), an SSR (ssr) or an "
                "opto-coupler output (opto)"
            )
        else:
            message = (
                f"{claim.who} on GPIO{claim.gpio} has no driver between pin and load: a pin "
                "gives 3.3 V and a few mA and must not drive a coil, lamp or buzzer; wire it "
                "through a relay module, SSR or opto output and name that driver"
            )
        problems.append(WiringProblem(loc, message, claim.driver))
    return problems


def boot_states(claims: Iterable[Placed], board: BoardProfile) -> list[WiringProblem]:
    """An output whose load is on at the pin's power-on pull fires at every boot."""
    problems = []
    taken = board.taken_gpios()
    for placed in claims:
        claim = placed.claim
        if claim.role != "output" or claim.gpio in taken or board.header_pin(claim.gpio) is None:
            continue  # board_pins already refuses the pin itself
        on = "up" if claim.active_high else "down"
        pull = claim.external_pull or board.boot_pull.of(claim.gpio)
        polarity = "active high" if claim.active_high else "active low"
        if pull is None:
            why = (
                f"{board.title} documents no power-on pull for GPIO{claim.gpio}, so the load "
                "may switch on at every boot"
            )
        elif pull == on:
            source = "external_pull" if claim.external_pull else "the board"
            why = f"{source} pulls GPIO{claim.gpio} {pull} from power-on until the gateway starts"
        else:
            continue
        off = "down" if claim.active_high else "up"
        message = (
            f"{claim.who} ({polarity}) would switch its load on at boot: {why}; fit a "
            f"10 kΩ resistor from the pin to {'GND' if off == 'down' else '3V3'} and set "
            f"external_pull: {off}, or move it to a pin pulled {off} at boot (hardware/gpio.md)"
        )
        problems.append(WiringProblem(placed.loc, message, claim.gpio))
    return problems


def max_countable_hz(bounce_time: float) -> float:
    """A pulse and the gap after it must each outlast the debounce: one period is 2 x bounce."""
    return float("inf") if bounce_time <= 0 else 1.0 / (2.0 * bounce_time)


def counter_rates(claims: Iterable[Placed]) -> list[WiringProblem]:
    """A counter expecting more pulses per second than its debounce lets through."""
    problems = []
    for placed in claims:
        claim = placed.claim
        if claim.role != "counter" or claim.max_hz is None:
            continue
        limit = max_countable_hz(claim.bounce_time or 0.0)
        if claim.max_hz <= limit:
            continue
        message = (
            f"{claim.who} expects up to {claim.max_hz:g} pulses/s but its bounce_time of "
            f"{claim.bounce_time:g} s counts at most {limit:g} pulses/s (each pulse and gap "
            f"must last the bounce time); lower bounce_time to at most "
            f"{1 / (2 * claim.max_hz):g} s for a bounce-free (electronic) sensor, or count with "
            "a counter module read over Modbus"
        )
        problems.append(WiringProblem((*placed.loc[:-1], "max_hz"), message, claim.max_hz))
    return problems
