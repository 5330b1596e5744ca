"""Wiring sheet section for the GPIO header: opto input modules and isolated output modules.

One isolation story, drawn the same everywhere: the field side (24 V, field 0 V) and the Pi
side (3.3 V, Pi GND) meet only inside an opto-coupler or a relay/SSR input. Every module row
lists both sides' supply terminals.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hardware import wiring_svg as draw
from hardware.claims import PinClaim
from hardware.profiles import BoardProfile
from hardware.sheet_parts import (
    P24,
    PI_3V3,
    PI_GND,
    PI_SIGNAL,
    SENSOR_P,
    SENSOR_SIG,
    SENSOR_Z,
    Z24,
    Section,
    Step,
    Terminals,
    Wire,
)
from hardware.wiring_checks import max_countable_hz

CHANNELS = 8  # per opto input module (8-channel PC817 boards, DIN opto terminals in blocks)
MODULE_NAMES = {"relay": "relay module", "ssr": "SSR", "opto": "opto output module"}


def _pin(board: BoardProfile, gpio: int) -> str:
    return f"header pin {board.header_pin(gpio)} (GPIO{gpio})"


def gpio_section(
    c: Any, board: BoardProfile, strip: Terminals, uart: Sequence[draw.PinUse]
) -> Section:
    """Header pins in use; each input through an opto channel, each output through its module."""
    claims = list(c.pin_claims())
    title = f"GPIO header on {board.title} (connector {c.name})"
    drawn = [draw.PinUse(k.gpio, k.role, k.name) for k in claims] + list(uart)
    section = Section(c.name, title, draw.gpio_header(board, drawn, title))
    grounds = [p.pin for p in board.header if p.kind == "gnd"]
    sensed = [k for k in claims if k.role != "output"]
    for m in range((len(sensed) + CHANNELS - 1) // CHANNELS):
        _opto_supply(section, f"OM{m + 1}", grounds[m % len(grounds)])
    for n, claim in enumerate(sensed):
        _input_rows(section, board, strip, claim, f"OM{n // CHANNELS + 1}", n % CHANNELS + 1)
    for n, claim in enumerate(k for k in claims if k.role == "output"):
        _output_rows(section, board, strip, claim, f"K{n + 1}", grounds[(n + 1) % len(grounds)])
    section.settings.append(
        ("Isolation", "field 24 V / field 0 V only on module field terminals; Pi 3V3 / GND only "
                      "on module logic terminals; never a wire between field 0 V and Pi GND")
    )  # fmt: skip
    return section


def _opto_supply(section: Section, module: str, gnd_pin: int) -> None:
    section.wires += [
        Wire("3.3 V", "header pin 1 (3V3)", f"{module} VCC (Pi side)", PI_3V3, "never 5 V"),
        Wire("GND", f"header pin {gnd_pin} (GND)", f"{module} GND (Pi side)", PI_GND),
    ]


def _input_rows(
    section: Section, board: BoardProfile, strip: Terminals, k: PinClaim, module: str, ch: int
) -> None:
    terminal = strip.take("X2")
    section.wires += [
        Wire("+24 V", strip.plus, f"{k.name} sensor/contact +", SENSOR_P, "field side"),
        Wire("signal", f"{k.name} sensor/contact output", terminal, SENSOR_SIG),
        Wire("signal", terminal, f"{module} IN{ch}+ (field side)", SENSOR_SIG),
        Wire("0 V", f"{module} IN{ch}− (field side)", strip.zero, SENSOR_Z, "field 0 V"),
        Wire("out", f"{module} OUT{ch} (Pi side)", _pin(board, k.gpio), PI_SIGNAL, _pull(k)),
    ]
    expected = "on: pin reads about 0 V; off: about 3.3 V (inverting opto)"
    if k.role == "counter":
        limit = max_countable_hz(k.bounce_time or 0.0)
        section.notes.append(
            f"Counter {k.name!r}: bounce_time {k.bounce_time:g} s counts at most {limit:g} "
            "pulses/s; electronic sensors only above about 25 pulses/s."
        )
        expected = "the count rises by exactly the pulses given (count 10 by hand)"
    section.steps.append(
        Step(f"Operate {k.name}: volts {module} IN{ch}+ to field 0 V, then "
             f"{_pin(board, k.gpio)} to GND", f"over 15 V at the input; {expected}")
    )  # fmt: skip


def _output_rows(
    section: Section, board: BoardProfile, strip: Terminals, k: PinClaim, module: str, gnd: int
) -> None:
    kind = MODULE_NAMES.get(str(k.driver), str(k.driver))
    terminal = strip.take("X2")
    if k.active_high:
        logic = [
            Wire("out", _pin(board, k.gpio), f"{module} {kind} IN+ (Pi side)", PI_SIGNAL),
            Wire("GND", f"header pin {gnd} (GND)", f"{module} {kind} IN− (Pi side)", PI_GND),
        ]
    else:  # active low: the pin sinks the input LED's current, 3V3 feeds its anode
        logic = [
            Wire("3.3 V", "header pin 17 (3V3)", f"{module} {kind} IN+ (Pi side)", PI_3V3),
            Wire("out", _pin(board, k.gpio), f"{module} {kind} IN− (Pi side)", PI_SIGNAL,
                 "low = on"),
        ]  # fmt: skip
    section.wires += [
        *logic,
        Wire("+24 V", strip.plus, f"{module} {kind} A1 / + supply (field side)", P24),
        Wire("0 V", f"{module} {kind} A2 / − supply (field side)", strip.zero, Z24),
        Wire("+24 V", strip.plus, f"{module} {kind} contact COM (11)", P24),
        Wire("load", f"{module} {kind} contact NO (14)", terminal, SENSOR_SIG),
        Wire("load", terminal, f"{k.name} load +", SENSOR_SIG),
        Wire("0 V", f"{k.name} load −", strip.zero, SENSOR_Z, "field 0 V"),
    ]
    pull = k.external_pull or board.boot_pull.of(k.gpio) or "unknown"
    section.steps += [
        Step(f"Power-on, gateway stopped: {k.name}", f"off (GPIO{k.gpio} pulled {pull} at boot)"),
        Step(f"Command {k.name} on from the edge, then off",
             f"{module} switches; {k.name} on, then off; the command is acknowledged"),
    ]  # fmt: skip


def _pull(k: PinClaim) -> str:
    if k.pull_up is None:
        return "module's own pull-up"
    return "internal pull-up" if k.pull_up else "internal pull-down"
