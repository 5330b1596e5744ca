"""Building blocks of the wiring sheet: wires, test steps, sections, terminal strips, cables.

Cable types and core colours are one house convention, printed on every sheet's legend so a
plant with its own convention can cross them out and write theirs.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

# Cables, each with a code the wire rows use with the core colour. DC control circuits in
# dark blue follow EN 60204-1 (13.2.4); mains cores IEC 60445 (L brown, N blue, PE
# green-yellow); 3-wire sensor cores IEC 60947-5-2 (BN +24 V, BK signal, BU 0 V).
LEGEND = (
    ("C1", "Mains (electrician only)", "3G1.5 mm² H05VV-F: L brown, N blue, PE green-yellow"),
    ("C2", "Protective earth", "H07V-K 2.5 mm² green-yellow"),
    ("C3", "24 V DC in the cabinet", "H05V-K 0.75 mm²: +24 V dark blue, 0 V dark blue-white"),
    ("C4", "5 V to the Pi", "USB-C lead, or 0.75 mm² red (+5 V) / black (0 V), under 1 m"),
    ("C5", "Pi side: header to modules", "0.25 mm² ≤ 30 cm: 3V3 red, GND black, signals white"),
    ("C6", "Field signals", "LiYY 3×0.5 mm² grey: BN +24 V, BK signal, BU 0 V"),
    ("C7", "RS-485 bus", "Belden 3106A: pair for + and − (tag them), third core 0 V, shield"),
    ("C8", "RS-232", "null-modem cable DB9F–DB9F, shielded, ≤ 15 m"),
    ("C9", "Ethernet", "Cat6 S/FTP patch cable, ≤ 90 m"),
)
MAINS_L, MAINS_N, PE_WIRE = "C1 brown", "C1 blue", "C2 green-yellow"
P24, Z24 = "C3 dark blue", "C3 dark blue-white"
P5, Z5 = "C4 red", "C4 black"
PI_3V3, PI_GND, PI_SIGNAL = "C5 red", "C5 black", "C5 white"
SENSOR_P, SENSOR_SIG, SENSOR_Z = "C6 BN", "C6 BK", "C6 BU"
BUS_PAIR, BUS_ZERO, BUS_SHIELD = "C7 pair", "C7 third core", "C7 shield"
RS232, ETHERNET = "C8", "C9"


@dataclass(frozen=True)
class Wire:
    """One connection to make and tick: terminal to terminal, with its cable and core."""

    signal: str
    start: str
    end: str
    cable: str = ""
    note: str = ""


@dataclass(frozen=True)
class Step:
    """One test to run and record: what to do, what a correct circuit shows."""

    action: str
    expected: str


@dataclass
class Section:
    """One circuit of the sheet: a drawing, its wires, switch settings and its tests."""

    slug: str
    title: str
    svg: ET.Element | None
    wires: list[Wire] = field(default_factory=list)
    settings: list[tuple[str, str]] = field(default_factory=list)
    steps: list[Step] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


class Terminals:
    """Numbers cabinet terminals strip by strip (X1 power, X2 field I/O, X3 buses) in order.

    X1 starts with the field +24 V and 0 V distribution terminals (bridged blocks, one wire
    per clamp), which every field circuit names as `plus` and `zero`.
    """

    def __init__(self) -> None:
        self._next: dict[str, int] = {}
        self.plus = self.take("X1") + " (+24 V)"
        self.zero = self.take("X1") + " (0 V)"

    def take(self, strip: str) -> str:
        number = self._next.get(strip, 1)
        self._next[strip] = number + 1
        return f"{strip}:{number}"
