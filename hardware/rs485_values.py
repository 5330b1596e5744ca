"""RS-485 numbers the sheet, the docs and commissioning share: line load, idle voltage, ohms.

Pure arithmetic, so a test can hold hardware/rs485.md and the printed sheet to one answer.
"""

from __future__ import annotations

TERMINATOR = 120.0  # Ω, the cable's characteristic impedance, at each physical end
BIAS_5V = 560.0  # Ω each side at 5 V (Modbus over serial line asks for 450–650 Ω)
BIAS_3V3 = 390.0  # Ω each side on a 3.3 V transceiver supply
MIN_IDLE = 0.2  # V: receivers see a defined state above 200 mV


def parallel(*ohms: float) -> float:
    return 1.0 / sum(1.0 / r for r in ohms)


def line_ohms(terminators: int = 2) -> float:
    """+ to − with everything off: the terminators in parallel (60 Ω for two)."""
    return TERMINATOR / terminators


def idle_volts(supply: float, bias: float, terminators: int = 2) -> float:
    """+ to − at idle: the bias pair and the terminated line form a divider."""
    line = line_ohms(terminators)
    return supply * line / (2 * bias + line)


def line_to_zero_ohms(bias: float, terminators: int = 2) -> tuple[float, float]:
    """Range of ohms from + or − to 0 V, power off, with a bias pair of `bias` Ω fitted.

    The pull-up goes to a supply rail that, unpowered, may look like anything from a short to
    an open circuit towards 0 V; the two extremes bound what a correct bus reads. With no
    bias fitted only unpowered transceivers load the lines: expect over 1 kΩ.
    """
    line = line_ohms(terminators)
    return parallel(bias, bias + line), bias + line
