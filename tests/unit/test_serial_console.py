"""A serial console on a bus port, found from the kernel command line (gateway check --probe)."""

from __future__ import annotations

from hardware.console import console_ports, consoles_on_buses
from hardware.profiles import load_board

PI_OS = (
    "coherent_pool=1M 8250.nr_uarts=1 console=serial0,115200 console=tty1 root=PARTUUID=1 rootwait"
)


def test_serial_consoles_are_found_and_screens_ignored() -> None:
    assert console_ports(PI_OS) == [("console=serial0,115200", "/dev/serial0")]
    assert console_ports("console=tty1 console=tty0 quiet") == []
    assert console_ports("console=ttyAMA0,115200n8") == [
        ("console=ttyAMA0,115200n8", "/dev/ttyAMA0")
    ]


def test_console_on_the_header_uart_names_connector_and_fix() -> None:
    """On a Pi 4 serial0 and ttyAMA0 are one UART: a bus on either shares the console."""
    rpi4 = load_board("rpi4")
    ports = [("bath-rs485", "/dev/ttyAMA0"), ("scale", "/dev/ttyUSB0")]
    [(connector, message)] = consoles_on_buses(PI_OS, ports, rpi4, "/proc/cmdline")
    assert connector == "bath-rs485"
    assert message.startswith("serial console on /dev/ttyAMA0: /proc/cmdline has console=serial0")
    assert "connector 'bath-rs485'" in message and "remove 'console=serial0,115200'" in message


def test_pi5_serial0_console_is_the_debug_connector_not_the_bus() -> None:
    rpi5 = load_board("rpi5")
    assert consoles_on_buses(PI_OS, [("bus", "/dev/ttyAMA0")], rpi5, "cmdline.txt") == []
    cmdline = "console=ttyAMA0,115200 root=x"
    assert len(consoles_on_buses(cmdline, [("bus", "/dev/ttyAMA0")], rpi5, "cmdline.txt")) == 1


def test_no_console_no_message() -> None:
    rpi4 = load_board("rpi4")
    cmdline = PI_OS.replace("console=serial0,115200 ", "")
    assert consoles_on_buses(cmdline, [("bus", "/dev/serial0")], rpi4, "/proc/cmdline") == []
