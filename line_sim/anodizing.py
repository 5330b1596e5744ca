"""A pure, seedable model of the paper's anodizing line: one bath, its controls and instruments.

Nothing here does I/O or reads the clock: `step(dt)` advances simulated time, so tests drive
the line deterministically and the Modbus server decides how fast time runs.

Physics, deliberately simple but shaped like the real thing (Type II sulfuric anodizing):
- Bath temperature is a first-order thermal mass: heat from a P-controlled heater, the
  exothermic anodizing current while a product is in the bath, and loss to an ambient that
  drifts slowly. The measured value adds sensor noise.
- Acid concentration (g/L) falls as products are processed (drag-out) and slowly by
  evaporation/consumption; a dosing pump brings it back when it crosses the low limit.
- Colour is CIE L*a*b*. The dye bath loses strength with use (its L* rises), so products
  drift off target; temperature and concentration errors shift the product colour too.
  With `defect_probability` a product gets a defect-level shift (a sealing or dye fault).
- Equipment cycles: RUN -> PROCESS_START (a new product ID) -> PROCESS_END (colour measured)
  -> idle -> next product; now and then the line STOPs for a while and RUNs again.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from enum import IntEnum


class State(IntEnum):
    """The equipment state register (unit 1, input register 4)."""

    STOPPED = 0
    IDLE = 1  # running, no product in the bath
    PROCESSING = 2  # a product is in the bath


class EventCode(IntEnum):
    """The last-event register (unit 1, input register 7); 0 until the first event."""

    NONE = 0
    RUN = 1
    STOP = 2
    PROCESS_START = 3
    PROCESS_END = 4


@dataclass(frozen=True)
class Recipe:
    """Target product colour (L*a*b*) and the anodizing time of one recipe."""

    name: str
    lab: tuple[float, float, float]
    cycle_time: float


RECIPES: dict[int, Recipe] = {
    1: Recipe("black", (26.0, 0.4, -0.8), 24.0),
    2: Recipe("blue", (42.0, -4.5, -28.0), 20.0),
    3: Recipe("red", (38.0, 45.0, 22.0), 20.0),
}


@dataclass(frozen=True)
class LineParams:
    """Everything tunable about the line; defaults give a lively demo (a product every ~30 s)."""

    seed: int | None = None
    defect_probability: float = 0.05
    stop_probability: float = 0.02  # per finished product: the line stops for maintenance
    stop_duration: float = 15.0  # seconds stopped
    idle_time: float = 6.0  # seconds between products
    product_prefix: str = "P2611"
    first_product: int = 1
    setpoint: float = 20.0  # bath temperature setpoint, °C
    ambient: float = 18.0  # °C, drifts around this
    concentration_nominal: float = 190.0  # g/L sulfuric acid
    concentration_low: float = 175.0  # dosing starts below this
    delta_e_limit: float = 3.0  # a product with ΔE*ab above this is a defect
    temperature_noise: float = 0.05
    # Instruments report in steps, not exact floats: the temperature transmitter in 0.05 °C,
    # and the acid analyser takes a sample every 10 s and holds it. Besides being how such
    # instruments behave, it keeps SPC's trend rule (6 points steadily rising) from firing on
    # sensor noise alone at a 1 s poll.
    temperature_resolution: float = 0.05
    analyser_interval: float = 10.0
    pressure_nominal: float = 35.0  # kPa, air agitation
    recipe: int = 1


@dataclass(frozen=True)
class Event:
    """An equipment event, as the line emits it (the gateway sees it as register changes)."""

    t: float
    code: EventCode
    product_id: str


@dataclass(frozen=True)
class Snapshot:
    """What the instruments and the PLC show at one moment (measured, with noise)."""

    t: float
    state: State
    last_event: EventCode
    event_count: int
    product_id: str  # product in the bath, or the last one when idle ("" before the first)
    bath_temperature: float
    setpoint: float
    heater_output: float  # percent
    pressure: float  # kPa
    concentration: float  # g/L
    dosing: bool
    bath_lab: tuple[float, float, float]
    product_lab: tuple[float, float, float]  # last measured product
    delta_e: float  # last measured product vs recipe target
    measured_product_id: str
    defect: bool  # last measured product is over the ΔE limit
    delta_e_limit: float
    products_done: int
    defects: int
    recipe: int
    cycle_time: float
    run_enable: bool
    defect_lamp: bool
    labels_printed: int
    label_request: bool
    calibration_request: bool


@dataclass
class _Plant:
    """True (noise-free) physical state."""

    temperature: float
    concentration: float
    dye_strength: float = 1.0  # 1.0 = fresh dye bath; falls with every product
    ambient_offset: float = 0.0
    colour_drift: tuple[float, float, float] = (0.0, 0.0, 0.0)  # instrument drift
    pressure_drift: float = 0.0


@dataclass
class _Control:
    """Operator- and gateway-writable settings."""

    setpoint: float
    recipe: int
    cycle_time: float
    delta_e_limit: float
    run_enable: bool = True
    defect_lamp: bool = False
    labels_printed: int = 0
    label_request: bool = False
    label_printing: float = 0.0  # seconds the printer has worked on the requested label
    calibration_request: bool = False


@dataclass
class _Sequence:
    state: State = State.STOPPED
    timer: float = 0.0  # seconds left in the current phase
    last_event: EventCode = EventCode.NONE
    event_count: int = 0
    next_product: int = 1
    product_id: str = ""
    products_done: int = 0
    defects: int = 0
    stopped_for_maintenance: bool = False
    events: list[Event] = field(default_factory=list)


SETPOINT_RANGE = (10.0, 30.0)
CYCLE_TIME_RANGE = (5.0, 3600.0)
DELTA_E_LIMIT_RANGE = (0.5, 20.0)
# How long the simulated printer takes over a defect label; the PLC holds the trigger bit
# meanwhile, as a PLC driving a printer does until the printer reports it done.
LABEL_PRINT_S = 0.5


class AnodizingLine:
    """The anodizing line. Call `step(dt)`; read `snapshot()`; write with the `set_*` methods."""

    def __init__(self, params: LineParams | None = None) -> None:
        self.params = params or LineParams()
        self.rng = random.Random(self.params.seed)
        p = self.params
        self.t = 0.0
        self.plant = _Plant(temperature=p.setpoint - 0.5, concentration=p.concentration_nominal)
        self.control = _Control(
            setpoint=p.setpoint,
            recipe=p.recipe,
            cycle_time=RECIPES[p.recipe].cycle_time,
            delta_e_limit=p.delta_e_limit,
        )
        self.seq = _Sequence(timer=1.0, next_product=p.first_product)
        self.heater = 0.0
        self.dosing = False
        target = RECIPES[p.recipe].lab
        self.product_lab: tuple[float, float, float] = target
        self.delta_e = 0.0
        self.measured_product_id = ""
        self.defect = False
        self._analysis = (-math.inf, self.plant.concentration)  # (sample time, value held)

    # ---- writes (setpoints, recipe, coils) ------------------------------------------------
    def set_setpoint(self, value: float) -> None:
        self.control.setpoint = _checked("setpoint", value, SETPOINT_RANGE)

    def set_cycle_time(self, seconds: float) -> None:
        self.control.cycle_time = _checked("cycle_time", seconds, CYCLE_TIME_RANGE)

    def set_delta_e_limit(self, value: float) -> None:
        self.control.delta_e_limit = _checked("delta_e_limit", value, DELTA_E_LIMIT_RANGE)

    def set_recipe(self, number: int) -> None:
        if number not in RECIPES:
            raise ValueError(f"recipe {number} is unknown; known recipes: {sorted(RECIPES)}")
        self.control.recipe = number
        self.control.cycle_time = RECIPES[number].cycle_time

    def set_run_enable(self, on: bool) -> None:
        self.control.run_enable = on

    def set_defect_lamp(self, on: bool) -> None:
        self.control.defect_lamp = on

    def request_label(self, on: bool = True) -> None:
        """The label printer trigger, like a PLC trigger bit: it stays set while the label
        prints (LABEL_PRINT_S) and is cleared when the label is out. A writer then reads back
        what it wrote however busy its machine is; clearing it early cancels the label."""
        self.control.label_request = on

    def request_calibration(self, on: bool = True) -> None:
        """Zero the colour meter's drift on the next step (a pulse, like the label trigger)."""
        self.control.calibration_request = on

    # ---- time -------------------------------------------------------------------------------
    def step(self, dt: float) -> list[Event]:
        """Advance simulated time by dt seconds; returns the events that happened."""
        if dt <= 0:
            raise ValueError(f"dt must be positive, got {dt}")
        self.t += dt
        self.seq.events = []
        self._scan_triggers(dt)
        self._sequence(dt)
        self._thermal(dt)
        self._chemistry(dt)
        self._drift(dt)
        return list(self.seq.events)

    def _scan_triggers(self, dt: float) -> None:
        c = self.control
        c.label_printing = c.label_printing + dt if c.label_request else 0.0
        if c.label_request and c.label_printing >= LABEL_PRINT_S - 1e-9:  # summed steps
            c.labels_printed += 1
            c.label_request = False
            c.label_printing = 0.0
        if self.control.calibration_request:
            self.plant.colour_drift = (0.0, 0.0, 0.0)
            self.control.calibration_request = False

    def _emit(self, code: EventCode) -> None:
        self.seq.last_event = code
        self.seq.event_count += 1
        self.seq.events.append(Event(self.t, code, self.seq.product_id))

    def _sequence(self, dt: float) -> None:
        s = self.seq
        if s.state is not State.STOPPED and not self.control.run_enable:
            if s.state is State.PROCESSING:  # an aborted product still leaves the bath
                self._finish_product()
            s.state = State.STOPPED
            s.stopped_for_maintenance = False
            self._emit(EventCode.STOP)
            return
        s.timer -= dt
        if s.timer > 0:
            return
        if s.state is State.STOPPED:
            if self.control.run_enable:
                s.state, s.timer = State.IDLE, self.params.idle_time
                self._emit(EventCode.RUN)
        elif s.state is State.IDLE:
            s.product_id = f"{self.params.product_prefix}-{s.next_product:06d}"
            s.next_product += 1
            s.state, s.timer = State.PROCESSING, self.control.cycle_time
            self._emit(EventCode.PROCESS_START)
        else:
            self._finish_product()
            if self.rng.random() < self.params.stop_probability:
                s.state, s.timer = State.STOPPED, self.params.stop_duration
                s.stopped_for_maintenance = True
                self._emit(EventCode.STOP)
            else:
                s.state, s.timer = State.IDLE, self.params.idle_time

    def _finish_product(self) -> None:
        self._emit(EventCode.PROCESS_END)
        self.seq.products_done += 1
        self._measure_product()
        # Drag-out: every product carries acid and dye out of the bath.
        self.plant.concentration -= self.rng.uniform(0.6, 1.2)
        self.plant.dye_strength = max(0.5, self.plant.dye_strength - 0.004)

    def _measure_product(self) -> None:
        target = RECIPES[self.control.recipe].lab
        temp_error = self.plant.temperature - self.control.setpoint
        conc_error = (self.plant.concentration - self.params.concentration_nominal) / 10.0
        fade = (1.0 - self.plant.dye_strength) * 12.0  # weaker dye -> lighter product
        shift = [
            fade + 0.8 * temp_error - 0.3 * conc_error,
            -0.2 * temp_error,
            0.3 * temp_error + 0.2 * conc_error,
        ]
        if self.rng.random() < self.params.defect_probability:
            # A dye or sealing fault: a large shift in a random direction, ΔE 4..9.
            size = self.rng.uniform(4.0, 9.0)
            direction = [self.rng.gauss(0, 1) for _ in range(3)]
            norm = math.sqrt(sum(d * d for d in direction)) or 1.0
            shift = [s + size * d / norm for s, d in zip(shift, direction, strict=True)]
        noise = [self.rng.gauss(0, 0.15) for _ in range(3)]
        drift = self.plant.colour_drift
        lab = tuple(t + s + n + d for t, s, n, d in zip(target, shift, noise, drift, strict=True))
        self.product_lab = (lab[0], lab[1], lab[2])
        self.delta_e = math.dist(self.product_lab, target)
        self.measured_product_id = self.seq.product_id
        self.defect = self.delta_e > self.control.delta_e_limit
        if self.defect:
            self.seq.defects += 1

    def _thermal(self, dt: float) -> None:
        p, plant = self.params, self.plant
        error = self.control.setpoint - plant.temperature
        # P control with a small bias: the heater is the only source of heat while idle.
        self.heater = min(100.0, max(0.0, 30.0 + 120.0 * error))
        process_heat = 0.012 if self.seq.state is State.PROCESSING else 0.0
        ambient = p.ambient + plant.ambient_offset
        dtemp = 0.0006 * self.heater - 0.009 * (plant.temperature - ambient) + process_heat
        plant.temperature += dtemp * dt

    def _chemistry(self, dt: float) -> None:
        p, plant = self.params, self.plant
        plant.concentration -= 0.002 * dt  # consumption and evaporation losses
        if plant.concentration < p.concentration_low:
            self.dosing = True
        if self.dosing:
            plant.concentration += 0.8 * dt
            if plant.concentration >= p.concentration_nominal:
                self.dosing = False
                # Dosing adds fresh dye too.
                plant.dye_strength = min(1.0, plant.dye_strength + 0.08)

    def _drift(self, dt: float) -> None:
        """Slow random walks: ambient temperature, colour meter and pressure sensor drift."""
        root = math.sqrt(dt)
        plant = self.plant
        plant.ambient_offset = _clamp(plant.ambient_offset + self.rng.gauss(0, 0.02) * root, 3.0)
        plant.pressure_drift = _clamp(plant.pressure_drift + self.rng.gauss(0, 0.01) * root, 2.0)
        plant.colour_drift = tuple(  # type: ignore[assignment]
            _clamp(c + self.rng.gauss(0, 0.002) * root, 1.5) for c in plant.colour_drift
        )

    # ---- reads ------------------------------------------------------------------------------
    def _analyse(self, noise: float) -> float:
        """The analyser's held sample; a new one once `analyser_interval` has passed.

        The noise is drawn by every snapshot either way, so seeded runs draw the same numbers.
        """
        sampled_at, held = self._analysis
        if self.t - sampled_at >= self.params.analyser_interval:
            self._analysis = self.t, self.plant.concentration + noise
            return self._analysis[1]
        return held

    def snapshot(self) -> Snapshot:
        """Measured values now (sensor noise is drawn here, once per snapshot)."""
        p, plant, c, s = self.params, self.plant, self.control, self.seq
        agitation = p.pressure_nominal if s.state is not State.STOPPED else 0.0
        dye = plant.dye_strength
        bath_lab = (
            30.0 + (1.0 - dye) * 40.0 + self.rng.gauss(0, 0.05),
            2.0 * dye + self.rng.gauss(0, 0.05),
            -6.0 * dye + self.rng.gauss(0, 0.05),
        )
        return Snapshot(
            t=self.t,
            state=s.state,
            last_event=s.last_event,
            event_count=s.event_count,
            product_id=s.product_id,
            bath_temperature=_step(
                plant.temperature + self.rng.gauss(0, p.temperature_noise),
                p.temperature_resolution,
            ),
            setpoint=c.setpoint,
            heater_output=self.heater,
            pressure=max(0.0, agitation + plant.pressure_drift + self.rng.gauss(0, 0.2)),
            concentration=self._analyse(self.rng.gauss(0, 0.3)),
            dosing=self.dosing,
            bath_lab=bath_lab,
            product_lab=self.product_lab,
            delta_e=self.delta_e,
            measured_product_id=self.measured_product_id,
            defect=self.defect,
            delta_e_limit=c.delta_e_limit,
            products_done=s.products_done,
            defects=s.defects,
            recipe=c.recipe,
            cycle_time=c.cycle_time,
            run_enable=c.run_enable,
            defect_lamp=c.defect_lamp,
            labels_printed=c.labels_printed,
            label_request=c.label_request,
            calibration_request=c.calibration_request,
        )


def _step(value: float, resolution: float) -> float:
    return round(round(value / resolution) * resolution, 6) if resolution > 0 else value


def _checked(name: str, value: float, bounds: tuple[float, float]) -> float:
    low, high = bounds
    if not (math.isfinite(value) and low <= value <= high):
        raise ValueError(f"{name} must be between {low} and {high}, got {value}")
    return float(value)


def _clamp(value: float, limit: float) -> float:
    return max(-limit, min(limit, value))
