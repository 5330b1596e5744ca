"""Typed board and HAT profiles (header, buses, boot pulls, serial ports) loaded from YAML data."""

from __future__ import annotations

from collections import Counter
from functools import cache
from importlib import resources
from typing import Literal

from pydantic import Field, model_validator

from factory_common.config import ConfigError, StrictModel, parse_yaml_model

PinKind = Literal["gpio", "3v3", "5v", "gnd"]
Pull = Literal["up", "down"]


class Source(StrictModel):
    """A maker's document a profile's facts come from: what it says, and where to read it."""

    title: str
    url: str
    facts: str


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
    """A GPIO that is never free, whatever config.txt enables (e.g. the HAT EEPROM bus)."""

    gpio: int = Field(ge=0)
    reason: str


class Interface(StrictModel):
    """A bus on the header; when the gateway needs it on (config.txt), its GPIOs are taken."""

    gpios: tuple[int, ...]
    enabled: bool
    device: str
    purpose: str
    # The boot-partition lines that switch the bus on (config.txt), for the image build.
    config_txt: tuple[str, ...] = ()


class SerialPort(StrictModel):
    """A serial device node the board offers, and the header GPIOs it uses (none for USB).

    `usable: false` marks a node that exists but must not carry a bus (a debug connector, a
    UART the image leaves off): the checks refuse it with `note` as the reason.
    """

    path: str
    kind: Literal["uart", "usb"]
    gpios: tuple[int, ...] = ()
    usable: bool = True
    note: str = ""


class BootPull(StrictModel):
    """The pull each GPIO has from power-on until the gateway drives it (the SoC's reset state).

    A GPIO in neither list has no documented reset pull: the checks treat it as unknown.
    """

    up: tuple[int, ...] = ()
    down: tuple[int, ...] = ()

    def of(self, gpio: int) -> Pull | None:
        if gpio in self.up:
            return "up"
        if gpio in self.down:
            return "down"
        return None


class Supply(StrictModel):
    """The board's supply as its maker rates it, and the fuse the sheet puts in its feed."""

    rating: str
    fuse: str


class Terminal(StrictModel):
    """A screw terminal as the maker prints it, and what it carries."""

    label: str
    signal: Literal["+", "-", "0V", "shield", "CAN_H", "CAN_L"]
    note: str = ""


class HatPort(SerialPort):
    """A serial port a HAT adds, with its field terminals and on-board switches."""

    terminals: tuple[Terminal, ...] = ()
    isolated: bool = False
    termination: str = ""
    bias: str = ""


class HatProfile(StrictModel):
    """An add-on board: the GPIOs it claims, the buses it needs and the ports it adds."""

    name: str
    title: str
    sources: tuple[Source, ...]
    claims: tuple[ReservedGpio, ...] = ()
    config_txt: tuple[str, ...] = ()
    ports: tuple[HatPort, ...] = ()
    # Header interfaces of the board this HAT uses besides its claims (e.g. uart0).
    uses_interfaces: tuple[str, ...] = ()


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
    boot_pull: BootPull = BootPull()
    supply: Supply = Supply(rating="see the board's manual", fuse="see the board's manual")
    # Lines the image must put in cmdline.txt / keep out of it (no login console on a bus).
    cmdline_remove: tuple[str, ...] = ()
    sources: tuple[Source, ...] = ()
    hats: tuple[HatProfile, ...] = ()

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
        used = [r.gpio for r in self.reserved]
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
        """GPIOs a config must not use, with the reason (reserved, a fitted HAT, an enabled bus)."""
        taken = {r.gpio: r.reason for r in self.reserved}
        for hat in self.hats:
            for claim in hat.claims:
                taken.setdefault(claim.gpio, f"{claim.reason} of the {hat.title}")
        for name, bus in self.interfaces.items():
            if bus.enabled:
                for gpio in bus.gpios:
                    lines = ", ".join(bus.config_txt) or "on"
                    taken.setdefault(gpio, f"{name} is on for the gateway ({lines}; {bus.device})")
        return taken

    def free_gpios(self) -> list[int]:
        taken = self.taken_gpios()
        return sorted(g for g in self.gpio_pins() if g not in taken)

    def all_serial_ports(self) -> tuple[SerialPort, ...]:
        """The board's own ports, then every port a fitted HAT adds."""
        return self.serial_ports + tuple(p for hat in self.hats for p in hat.ports)

    def serial_port(self, path: str) -> SerialPort | None:
        return next((p for p in self.all_serial_ports() if p.path == path), None)

    def hat_port(self, path: str) -> tuple[HatProfile, HatPort] | None:
        """The HAT that provides `path`, with the port's terminal labels and switches."""
        for hat in self.hats:
            for port in hat.ports:
                if port.path == path:
                    return hat, port
        return None

    def config_txt(self) -> list[str]:
        """Every config.txt line the image must carry for this board and its HATs, in order."""
        lines = [line for bus in self.interfaces.values() if bus.enabled for line in bus.config_txt]
        lines += [line for hat in self.hats for line in hat.config_txt]
        return list(dict.fromkeys(lines))

    def with_hats(self, hats: tuple[HatProfile, ...]) -> BoardProfile:
        """This board with `hats` fitted; the title names them so every message does too."""
        if not hats:
            return self
        names = " + ".join(h.title for h in hats)
        title = f"{self.title} + {names}"
        return self.model_copy(update={"hats": self.hats + hats, "title": title})


def _names(package: str) -> tuple[str, ...]:
    folder = resources.files(package)
    names = (e.name.removesuffix(".yaml") for e in folder.iterdir() if e.name.endswith(".yaml"))
    return tuple(sorted(names))


@cache
def _bundled() -> tuple[str, ...]:
    return _names("hardware.boards")


def known_boards() -> list[str]:
    """Names of the bundled profiles (the YAML files under hardware/boards/)."""
    return list(_bundled())


@cache
def known_hats() -> tuple[str, ...]:
    """Names of the bundled HAT profiles (hardware/boards/hats/*.yaml)."""
    return _names("hardware.boards.hats")


def _unknown(kind: str, name: str, known: tuple[str, ...] | list[str], hint: str) -> ConfigError:
    return ConfigError(
        f"{kind} profiles",
        [f"unknown {kind} {name!r}: known {kind}s are {', '.join(known)} ({hint})"],
    )


@cache  # profiles are frozen models, and every config validation asks for one
def load_board(name: str) -> BoardProfile:
    """Load a bundled board profile by name; an unknown name lists the known ones."""
    if name not in known_boards():
        raise _unknown("board", name, known_boards(), "add hardware/boards/<name>.yaml")
    source = resources.files("hardware.boards").joinpath(f"{name}.yaml")
    profile = parse_yaml_model(source.read_text(encoding="utf-8"), BoardProfile, f"{name}.yaml")
    if profile.name != name:
        raise ConfigError(
            f"{name}.yaml", [f"{name}.yaml: name is {profile.name!r}, expected {name!r}"]
        )
    return profile


@cache
def load_hat(name: str) -> HatProfile:
    """Load a bundled HAT profile by name; an unknown name lists the known ones."""
    if name not in known_hats():
        raise _unknown("HAT", name, known_hats(), "add hardware/boards/hats/<name>.yaml")
    source = resources.files("hardware.boards.hats").joinpath(f"{name}.yaml")
    return parse_yaml_model(source.read_text(encoding="utf-8"), HatProfile, f"{name}.yaml")


def _merged_port(path: str, boards: list[BoardProfile]) -> SerialPort:
    """One port as the strictest board sees it: usable only where every board can use it."""
    found = [(b, b.serial_port(path)) for b in boards]
    have = [(b, p) for b, p in found if p is not None]
    first = have[0][1]
    blocked = [(b, p) for b, p in have if not p.usable]
    blocked += [(b, first) for b, p in found if p is None]
    if not blocked:
        return first
    board, port = blocked[0]
    why = port.note if not port.usable else "the board has no such port"
    note = f"on {board.name}: {why}"
    return first.model_copy(update={"usable": False, "note": note})


@cache
def strictest_profile() -> BoardProfile:
    """Every bundled board at once: a pin or port is allowed only where all boards allow it.

    Configs that do not name `gateway.board` are checked against this, so a config that
    passes without a board passes on any board it is later mounted on.
    """
    boards = [load_board(n) for n in known_boards()]
    header = boards[0].header
    if any(b.gpio_pins() != boards[0].gpio_pins() for b in boards):
        raise ConfigError("board profiles", ["bundled boards differ in their header pinout"])
    reserved: dict[int, str] = {}
    for board in boards:
        for gpio, reason in board.taken_gpios().items():
            reserved.setdefault(gpio, f"{reason} (on {board.name})")
    paths = dict.fromkeys(p.path for b in boards for p in b.serial_ports)
    pulls = [b.boot_pull for b in boards]
    gpios = sorted(boards[0].gpio_pins())
    names = ", ".join(b.name for b in boards)
    return BoardProfile(
        name="strictest",
        title=f"the strictest profile (no gateway.board set: {names} at once)",
        soc="any",
        logic_voltage=min(b.logic_voltage for b in boards),
        gpio_max_ma=min(b.gpio_max_ma for b in boards),
        header=header,
        reserved=tuple(ReservedGpio(gpio=g, reason=r) for g, r in sorted(reserved.items())),
        serial_ports=tuple(_merged_port(path, boards) for path in paths),
        boot_pull=BootPull(
            up=tuple(g for g in gpios if all(p.of(g) == "up" for p in pulls)),
            down=tuple(g for g in gpios if all(p.of(g) == "down" for p in pulls)),
        ),
        cmdline_remove=tuple(dict.fromkeys(c for b in boards for c in b.cmdline_remove)),
    )
