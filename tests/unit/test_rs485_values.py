"""RS-485 arithmetic, and the docs and commissioning list printing the same figures."""

from __future__ import annotations

from pathlib import Path

import pytest

from hardware.rs485_values import BIAS_3V3, BIAS_5V, idle_volts, line_ohms, line_to_zero_ohms

DOCS = Path(__file__).parents[2] / "hardware"


def test_terminated_line_and_idle_voltage() -> None:
    assert line_ohms(2) == 60
    assert idle_volts(5.0, BIAS_5V) == pytest.approx(0.254, abs=1e-3)
    assert idle_volts(3.3, BIAS_3V3) == pytest.approx(0.236, abs=1e-3)
    assert idle_volts(5.0, 680) < 0.22  # just enough: no margin


def test_line_to_zero_with_a_560_ohm_bias_pair() -> None:
    """A correct bus with 560 Ω bias reads about 300-620 Ω from either line to 0 V, power off."""
    low, high = line_to_zero_ohms(BIAS_5V)
    assert round(low) == 294 and high == 620


@pytest.mark.parametrize("page", ["rs485.md", "commissioning.md", "troubleshooting.md"])
def test_docs_print_the_bias_figures(page: str) -> None:
    text = (DOCS / page).read_text(encoding="utf-8")
    assert "300–620 Ω" in text and "over 1 kΩ" in text
    assert "> 1 kΩ" not in text  # the old figure, wrong once the 560 Ω bias is fitted
