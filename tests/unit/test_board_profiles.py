"""Board profiles: every bundled profile loads and describes a real 40-pin Raspberry Pi header."""

from __future__ import annotations

from collections import Counter

import pytest

from factory_common.config import ConfigError, parse_yaml_model
from hardware.profiles import BoardProfile, known_boards, load_board, load_hat, strictest_profile

BOARDS = ["rpi4", "rpi5", "cm4"]

# The physical-pin -> BCM map printed on every Raspberry Pi pinout card since the B+.
HEADER_GPIO = {
    3: 2, 5: 3, 7: 4, 8: 14, 10: 15, 11: 17, 12: 18, 13: 27, 15: 22, 16: 23, 18: 24, 19: 10,
    21: 9, 22: 25, 23: 11, 24: 8, 26: 7, 27: 0, 28: 1, 29: 5, 31: 6, 32: 12, 33: 13, 35: 19,
    36: 16, 37: 26, 38: 20, 40: 21,
}  # fmt: skip
GROUND = {6, 9, 14, 20, 25, 30, 34, 39}


def test_bundled_boards_are_listed() -> None:
    assert set(BOARDS) <= set(known_boards())


@pytest.mark.parametrize("name", BOARDS)
def test_profile_has_the_40_pin_header(name: str) -> None:
    board = load_board(name)
    assert board.name == name
    assert board.logic_voltage == 3.3
    assert [p.pin for p in board.header] == list(range(1, 41))
    assert {p.pin: p.gpio for p in board.header if p.kind == "gpio"} == HEADER_GPIO
    assert {p.pin for p in board.header if p.kind == "gnd"} == GROUND
    assert {p.pin for p in board.header if p.kind == "3v3"} == {1, 17}
    assert {p.pin for p in board.header if p.kind == "5v"} == {2, 4}


@pytest.mark.parametrize("name", BOARDS)
def test_every_gpio_2_to_27_appears_once(name: str) -> None:
    counts = Counter(p.gpio for p in load_board(name).header if p.gpio is not None)
    for gpio in range(2, 28):
        assert counts[gpio] == 1, f"GPIO{gpio} on {name}"


@pytest.mark.parametrize("name", BOARDS)
def test_reserved_and_bus_pins_are_taken(name: str) -> None:
    board = load_board(name)
    taken = board.taken_gpios()
    assert {r.gpio for r in board.reserved} == {0, 1}
    assert "ID_SD" in taken[0] and "ID_SC" in taken[1]
    # The image enables I2C1 (RTC/UPS HATs) and UART0 (RS-485 HAT); SPI0 and 1-Wire stay free.
    assert set(taken) == {0, 1, 2, 3, 14, 15}
    assert "i2c1" in taken[2] and "uart0" in taken[15]
    assert {7, 8, 9, 10, 11, 4} <= set(board.free_gpios())
    assert board.header_pin(17) == 11


@pytest.mark.parametrize("name", BOARDS)
def test_header_uart_is_a_serial_port(name: str) -> None:
    board = load_board(name)
    header_ports = [s.path for s in board.serial_ports if s.gpios == (14, 15)]
    assert "/dev/ttyAMA0" in header_ports
    assert any(s.kind == "usb" for s in board.serial_ports)


def test_unknown_board_lists_known_ones() -> None:
    with pytest.raises(ConfigError) as err:
        load_board("rpi3")
    assert "unknown board 'rpi3'" in str(err.value)
    assert "cm4, rpi4, rpi5" in str(err.value)


def test_inconsistent_profile_is_rejected_with_its_line() -> None:
    text = """\
name: bad
title: Bad
soc: x
logic_voltage: 3.3
gpio_max_ma: 16
header:
  - {pin: 1, kind: gpio, gpio: 4}
  - {pin: 2, kind: gpio, gpio: 4}
"""
    with pytest.raises(ConfigError) as err:
        parse_yaml_model(text, BoardProfile, "bad.yaml")
    assert "GPIO(s) [4] appear on more than one header pin" in str(err.value)


@pytest.mark.parametrize("name", BOARDS)
def test_every_profile_cites_its_makers_documents(name: str) -> None:
    board = load_board(name)
    assert board.sources, f"{name}.yaml names no source"
    assert all(s.url.startswith("https://") and s.facts for s in board.sources)


def test_bcm2711_boot_pulls_and_rp1_unknown() -> None:
    """BCM2711 resets GPIO 0-8 pulled up and 9-27 pulled down; the RP1's are not verified."""
    for name in ("rpi4", "cm4"):
        pull = load_board(name).boot_pull
        assert [pull.of(g) for g in (4, 8, 9, 17, 27)] == ["up", "up", "down", "down", "down"]
    assert all(load_board("rpi5").boot_pull.of(g) is None for g in range(28))


def test_pi5_serial0_and_tty_s0_are_not_bus_ports() -> None:
    rpi5 = load_board("rpi5")
    for path in ("/dev/serial0", "/dev/ttyS0", "/dev/ttyAMA10"):
        port = rpi5.serial_port(path)
        assert port is not None and not port.usable, path
    assert "dtparam=uart0=on" in rpi5.config_txt()
    assert rpi5.supply.fuse.startswith("T5A")


def test_waveshare_2ch_hat_claims_spi1_irq_and_enables() -> None:
    """Waveshare's readme: SCLK 21, data 19/20, CS 18, IRQ 24, EN1 27, EN2 22 (SPI1)."""
    hat = load_hat("waveshare-2ch-rs485")
    assert {c.gpio for c in hat.claims} == {18, 19, 20, 21, 24, 27, 22}
    board = load_board("rpi4").with_hats((hat,))
    assert not {18, 19, 20, 21, 22, 24, 27} & set(board.free_gpios())
    assert "SC16IS752" in board.taken_gpios()[24]
    assert "dtoverlay=sc16is752-spi1,int_pin=24" in board.config_txt()
    port = board.hat_port("/dev/ttySC0")
    assert port is not None and port[1].isolated
    assert {t.label: t.signal for t in port[1].terminals} == {"A": "+", "B": "-", "GND": "0V"}


def test_rs485_can_hat_claims_can_interrupt_and_direction() -> None:
    board = load_board("rpi4").with_hats((load_hat("waveshare-rs485-can"),))
    taken = board.taken_gpios()
    assert "CAN interrupt" in taken[25] and "direction" in taken[4]


def test_strictest_profile_allows_only_what_every_board_allows() -> None:
    strict = strictest_profile()
    assert strict.free_gpios() == load_board("rpi4").free_gpios()
    assert all(strict.boot_pull.of(g) is None for g in range(28))  # the Pi 5 knows none
    usable = {p.path for p in strict.serial_ports if p.usable}
    assert "/dev/ttyAMA0" in usable and "/dev/serial0" not in usable
    serial0 = strict.serial_port("/dev/serial0")
    assert serial0 is not None and serial0.note.startswith("on rpi5:")
