"""GPIO config: debounced digital inputs, pulse counters and digital outputs on BCM pins."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from factory_common.config import StrictModel
from gateway_image.firmware.connectors.tags import Loc, check_name, duplicates, raise_at
from gateway_image.firmware.tag_index import TagInfo
from hardware.claims import PinClaim, SerialClaim
from hardware.profiles import strictest_profile
from hardware.wiring_checks import pin_conflicts

# BCM numbers of the 40-pin header GPIOs (every Pi since the B+).
Bcm = int
_BCM = Field(ge=0, le=27, description="BCM GPIO number, not the physical header pin")
PinFactory = Literal["auto", "mock", "lgpio", "rpigpio", "pigpio", "native"]
# What sits between the pin and the load; it decides the safe idle level and the wiring sheet.
Driver = Literal["relay", "ssr", "opto", "uln2803", "mosfet", "direct"]


class _Named(StrictModel):
    name: str

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return check_name(value, "tag name")


class _InputPin(_Named):
    pin: Bcm = _BCM
    # True: internal pull-up, contact to ground, closed contact reads active (door switch).
    # None: external resistor; then active_high says which level is active.
    pull_up: bool | None = True
    active_high: bool | None = None
    # Seconds the level must stay put before a change counts (contact bounce, EMI spikes).
    bounce_time: float | None = Field(default=0.02, ge=0, le=10)

    @model_validator(mode="after")
    def _active(self) -> _InputPin:
        if self.pull_up is None and self.active_high is None:
            raise_at(
                type(self).__name__,
                [(("active_high",), "pull_up: null (external resistor) needs active_high", None)],
            )
        if self.pull_up is not None and self.active_high is not None:
            raise_at(
                type(self).__name__,
                [(("active_high",), "active_high is only for pull_up: null", self.active_high)],
            )
        return self


class GpioInput(_InputPin):
    """A digital input reported on every (debounced) change: door switch, part present."""


class GpioCounter(_InputPin):
    """A pulse counter (parts counted); reports the count and the rate per minute."""

    rate_tag: str | None = None  # defaults to "<name>_rate"
    rate_window: float = Field(default=60.0, gt=0, le=3600)  # seconds averaged for the rate
    report_interval: float = Field(default=1.0, gt=0, le=3600)
    # Highest pulse rate to count (pulses/s): the wiring check holds bounce_time to it.
    max_hz: float | None = Field(default=None, gt=0)

    @property
    def rate_name(self) -> str:
        return self.rate_tag or f"{self.name}_rate"

    @field_validator("rate_tag")
    @classmethod
    def _rate_tag(cls, value: str | None) -> str | None:
        return None if value is None else check_name(value, "tag name")


class GpioOutput(_Named):
    """A digital output (defect lamp, label printer trigger); writable by commands."""

    pin: Bcm = _BCM
    driver: Driver
    # Many relay boards switch on a LOW input: declare it here, not by inverting commands.
    active_high: bool = True
    initial: bool = False
    # Seconds: a write of true switches on for this long, then off (printer triggers).
    pulse: float | None = Field(default=None, gt=0, le=60)
    # Optional input wired to the load (relay contact, lamp current sense) to verify writes.
    readback_pin: Bcm | None = Field(default=None, ge=0, le=27)
    readback_pull_up: bool = True
    readback_delay: float = Field(default=0.02, ge=0, le=5)
    # An external resistor (about 10 kΩ) holding the pin at this level from power-on until
    # the gateway drives it: it overrides the SoC's weak boot pull (hardware/gpio.md).
    external_pull: Literal["up", "down"] | None = None


class GpioConfig(StrictModel):
    """The Pi's own header pins; one connector per gateway owns them all."""

    type: Literal["gpio"]
    name: str
    device: str | None = None  # the `device` of every Reading; defaults to the connector name
    pin_factory: PinFactory = "auto"
    inputs: list[GpioInput] = []
    counters: list[GpioCounter] = []
    outputs: list[GpioOutput] = []

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return check_name(value, "connector name")

    @field_validator("device")
    @classmethod
    def _device(cls, value: str | None) -> str | None:
        return None if value is None else check_name(value, "device name")

    @property
    def device_name(self) -> str:
        return self.device or self.name

    def pin_claims(self) -> list[PinClaim]:
        """Every GPIO this connector wires, with what the wiring checks and the sheet need."""
        dev = self.device_name
        claims = [
            PinClaim(k.pin, ("inputs", i, "pin"), "input", k.name, dev,
                     pull_up=k.pull_up, bounce_time=k.bounce_time)
            for i, k in enumerate(self.inputs)
        ]  # fmt: skip
        claims += [
            PinClaim(c.pin, ("counters", i, "pin"), "counter", c.name, dev,
                     pull_up=c.pull_up, bounce_time=c.bounce_time, max_hz=c.max_hz)
            for i, c in enumerate(self.counters)
        ]  # fmt: skip
        for i, out in enumerate(self.outputs):
            claims.append(
                PinClaim(out.pin, ("outputs", i, "pin"), "output", out.name, dev,
                         driver=out.driver, active_high=out.active_high,
                         external_pull=out.external_pull)
            )  # fmt: skip
            if out.readback_pin is not None:
                where = ("outputs", i, "readback_pin")
                name = f"{out.name}_readback"
                claims.append(
                    PinClaim(out.readback_pin, where, "readback", name, dev,
                             pull_up=out.readback_pull_up)
                )  # fmt: skip
        return claims

    def serial_port(self) -> SerialClaim | None:
        return None

    def tag_infos(self) -> list[TagInfo]:
        sensed = [*self.inputs, *self.counters]
        infos = [TagInfo(self.name, self.device_name, s.name, s, False, "any") for s in sensed]
        infos += [
            TagInfo(self.name, self.device_name, o.name, o, True, "bool") for o in self.outputs
        ]
        return infos

    def reading_keys(self) -> list[tuple[tuple[str, str], Loc]]:
        keys: list[tuple[tuple[str, str], Loc]] = []
        for key in ("inputs", "counters", "outputs"):
            for i, item in enumerate(getattr(self, key)):
                keys.append(((self.device_name, item.name), (key, i, "name")))
        for i, counter in enumerate(self.counters):
            where = ("counters", i, "rate_tag" if counter.rate_tag else "name")
            keys.append(((self.device_name, counter.rate_name), where))
        return keys

    @model_validator(mode="after")
    def _unique(self) -> GpioConfig:
        # The header pin of a GPIO is the same on every bundled board: name it already here.
        claims = [(c, c.loc) for c in self.pin_claims()]
        problems: list[tuple[Loc, str, Any]] = [
            (p.loc, p.message, p.value)
            for p in pin_conflicts(claims, strictest_profile(), " of this connector")
        ]
        problems += duplicates(((k[1], loc) for k, loc in self.reading_keys()), "tag name")
        if not (self.inputs or self.counters or self.outputs):
            problems.append((("inputs",), "configure at least one input, counter or output", []))
        raise_at("GpioConfig", problems)
        return self
