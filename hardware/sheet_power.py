"""The power and protection section every wiring sheet starts with: supply, breaker, PE, fuses.

Mains rows are marked for a qualified electrician; the technician's work starts at the 24 V
terminals once the electrician has signed the mains part off.
"""

from __future__ import annotations

from hardware.profiles import BoardProfile
from hardware.sheet_parts import (
    MAINS_L,
    MAINS_N,
    P5,
    P24,
    PE_WIRE,
    Z5,
    Z24,
    Section,
    Step,
    Terminals,
    Wire,
)

ELECTRICIAN = "qualified electrician only"
# 24 V feed of the isolated DC/DC that makes the Pi's 5 V: a 30 W converter draws about
# 1.4 A at 24 V (30 W / 0.88 / 24 V), so a 2 A slow fuse carries it with its inrush.
DCDC_FUSE = "F1 T2A slow-blow"
FIELD_FUSE = "F2 T2A slow-blow (re-size if field loads exceed 1.5 A)"


def power_section(board: BoardProfile, strip: Terminals, leaves_cabinet: bool) -> Section:
    """Mains to 24 V, 24 V to the Pi through an isolated DC/DC, field 24 V, PE and SPDs."""
    section = Section("power", "Power and protection", None)
    plus, zero = strip.plus, strip.zero
    section.wires += [
        Wire("L", "feeder L", "Q1 breaker → 24 V supply L", MAINS_L, ELECTRICIAN),
        Wire("N", "feeder N", "24 V supply N", MAINS_N, ELECTRICIAN),
        Wire("PE", "feeder PE", "PE bar", PE_WIRE, ELECTRICIAN),
        Wire("PE", "PE bar", "24 V supply PE terminal", PE_WIRE, ELECTRICIAN),
        Wire("PE", "PE bar", "DIN rail and mounting plate (bonding)", PE_WIRE, ELECTRICIAN),
        Wire("+24 V", "24 V supply +V", f"{DCDC_FUSE} → DC/DC +Vin", P24, "feeds the Pi only"),
        Wire("0 V", "24 V supply −V", "DC/DC −Vin", Z24),
        Wire("+5 V", "DC/DC +Vout", f"F3 {board.supply.fuse} → Pi 5 V (USB-C or pin 2)", P5),
        Wire("0 V Pi", "DC/DC −Vout", "Pi GND (header pin 6)", Z5, "isolated from field 0 V"),
        Wire("+24 V", "24 V supply +V", f"{FIELD_FUSE} → {plus}", P24, "field +24 V"),
        Wire("0 V", "24 V supply −V", zero, Z24, "field 0 V"),
    ]
    section.settings += [
        ("Q1 breaker", f"rating and curve chosen by the electrician for the supply's inrush "
                       f"and the feeder cable ({ELECTRICIAN})"),
        ("Pi supply", board.supply.rating),
        ("Isolation", "the DC/DC is isolated (e.g. Mean Well DDR-30G-5): Pi GND never meets "
                      "field 0 V; every crossing is an opto, relay or isolated RS-485 port"),
        ("Touch protection", "mains terminals covered (finger-safe, IP2X) before the door "
                             "is opened by anyone but the electrician"),
    ]  # fmt: skip
    if leaves_cabinet:
        section.wires.append(
            Wire("SPD", "RS-485 +, −, 0 V where the cable leaves the cabinet",
                 "surge protective device for data lines (e.g. Phoenix Contact PLUGTRAB, "
                 "Dehn BLITZDUCTOR); its earth to the PE bar", PE_WIRE,
                 "at both cabinets, shortest earth lead")
        )  # fmt: skip
    section.steps += [
        Step(f"Mains part: breaker, PE continuity and insulation tested ({ELECTRICIAN})",
             "signed below under electrical sign-off before 24 V work starts"),
        Step(f"24 V on: measure {plus} to {zero}", "23.5–24.5 V DC"),
        Step("Pi on: measure header pin 2 to pin 6 under load", "5.0–5.25 V DC"),
        Step(f"Power off: ohms from Pi GND (header pin 6) to field 0 V ({zero})",
             "open (over 1 MΩ): the isolation holds"),
        Step("After 10 minutes running: vcgencmd get_throttled", "throttled=0x0"),
    ]  # fmt: skip
    return section
