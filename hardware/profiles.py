"""Typed board profiles (header pins, buses, reserved pins, serial ports) loaded from YAML data."""

from __future__ import annotations

from collections import Counter
from functools import cache
from importlib import resources
from typing import Literal

from pydantic import Field, model_validator

from factory_common.config import ConfigError, StrictModel, parse_yaml_model

PinKind = Literal["gpio", "3v3", "5v", "gnd"]


class HeaderPin(StrictModel):
    """One physical pin of the header: a GPIO (BCM number) or a supply/ground pin."""

    pin: int = Field(ge=1)
    kind: PinKind
    gpio: int | None = Field(default=None, ge=0)
    functions: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _gpio_iff_kind(self) -> HeaderPin:
        if (self.kind == "gpio") != (self.gpio is not None):
            raise ValueError(f"pin {self.pin}: a `gpio` number is given exactly when kind is gpio")
        return self


class ReservedGpio(StrictModel):
    """A GPIO that is never free, whatever the image enables (e.g. the HAT EEPROM bus)."""

    gpio: int = Field(ge=0)
    reason: str


class Interface(StrictModel):
    """A bus on the header; when the gateway image enables it, its GPIOs are taken."""

    gpios: tuple[int, ...]
    enabled: bool
    device: str
    purpose: str


class SerialPort(StrictModel):
    """A serial device node the board offers, and the header GPIOs it uses (none for USB)."""

    path: str
    kind: Literal["uart", "usb"]
    gpios: tuple[int, ...] = ()
    note: str = ""


class BoardProfile(StrictModel):
    """Everything the config checks and the wiring sheet need to know about one board."""

    name: str
    title: str
    soc: str
    logic_voltage: float = Field(gt=0)
    gpio_max_ma: float = Field(gt=0)
    header: tuple[HeaderPin, ...]
    reserved: tuple[ReservedGpio, ...] = ()
    interfaces: dict[str, Interface] = Field(default_factory=dict)
    serial_ports: tuple[SerialPort, ...] = ()

    @model_validator(mode="after")
    def _consistent(self) -> BoardProfile:
        pins = [p.pin for p in self.header]
        if sorted(pins) != list(range(1, len(pins) + 1)):
            raise ValueError("header pins must be numbered 1..N, each exactly once")
        twice = [
            g
            for g, n in Counter(p.gpio for p in self.header if p.gpio is not None).items()
            if n > 1
        ]
        if twice:
            raise ValueError(f"GPIO(s) {sorted(twice)} appear on more than one header pin")
        known = set(self.gpio_pins())
        used = [g for r in self.reserved for g in [r.gpio]]
        used += [g for i in self.interfaces.values() for g in i.gpios]
        used += [g for s in self.serial_ports for g in s.gpios]
        missing = sorted(set(used) - known)
        if missing:
            raise ValueError(f"GPIO(s) {missing} are referenced but not on the header")
        return self

    def gpio_pins(self) -> dict[int, int]:
        """BCM GPIO number -> physical header pin."""
        return {p.gpio: p.pin for p in self.header if p.gpio is not None}

    def header_pin(self, gpio: int) -> int | None:
        return self.gpio_pins().get(gpio)

    def taken_gpios(self) -> dict[int, str]:
        """GPIOs a config must not use, with the reason (reserved or used by an enabled bus)."""
        taken = {r.gpio: r.reason for r in self.reserved}
        for name, bus in self.interfaces.items():
            if bus.enabled:
                for gpio in bus.gpios:
                    taken.setdefault(gpio, f"{name} is enabled in the gateway image ({bus.device})")
        return taken

    def free_gpios(self) -> list[int]:
        taken = self.taken_gpios()
        return sorted(g for g in self.gpio_pins() if g not in taken)


@cache
def _bundled() -> tuple[str, ...]:
    folder = resources.files("hardware.boards")
    names = (e.name.removesuffix(".yaml") for e in folder.iterdir() if e.name.endswith(".yaml"))
    return tuple(sorted(names))


def known_boards() -> list[str]:
    """Names of the bundled profiles (the YAML files under hardware/boards/)."""
    return list(_bundled())


@cache  # profiles are frozen models, and every config validation asks for one
def load_board(name: str) -> BoardProfile:
    """Load a bundled board profile by name; an unknown name lists the known ones."""
    known = known_boards()
    if name not in known:
        raise ConfigError(
            "board profiles",
            [
                f"unknown board {name!r}: known boards are {', '.join(known)} "
                "(add hardware/boards/<name>.yaml for a new carrier)"
            ],
        )
    source = resources.files("hardware.boards").joinpath(f"{name}.yaml")
    profile = parse_yaml_model(source.read_text(encoding="utf-8"), BoardProfile, f"{name}.yaml")
    if profile.name != name:
        raise ConfigError(
            f"{name}.yaml", [f"{name}.yaml: name is {profile.name!r}, expected {name!r}"]
        )
    return profile
