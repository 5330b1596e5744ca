"""The simulator's Modbus register map: where each value lives and how it is encoded.

One declarative table drives the server (layout, encoding, writes), the README table and the
test that keeps examples/anodizing-gateway.yaml in step with it. Encoding uses pymodbus's own
`convert_to_registers`, deliberately not the gateway's codec, so a codec bug cannot hide by
being symmetric.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from pymodbus.client import ModbusTcpClient

from line_sim.anodizing import AnodizingLine, Snapshot

Table = Literal["holding", "input", "coil", "discrete"]
Value = float | int | bool | str
DT = ModbusTcpClient.DATATYPE

DEVICES: dict[int, str] = {1: "bath1", 2: "meter1"}  # unit id -> device name in the gateway

_TYPES: dict[str, ModbusTcpClient.DATATYPE] = {
    "int16": DT.INT16,
    "uint16": DT.UINT16,
    "int32": DT.INT32,
    "uint32": DT.UINT32,
    "float32": DT.FLOAT32,
    "string": DT.STRING,
}
_INT_RANGES = {
    "int16": (-(2**15), 2**15 - 1),
    "uint16": (0, 2**16 - 1),
    "int32": (-(2**31), 2**31 - 1),
    "uint32": (0, 2**32 - 1),
}


@dataclass(frozen=True)
class Point:
    """One tag on the simulated devices; field names follow the gateway config's tag keys."""

    unit_id: int
    table: Table
    address: int
    name: str
    type: str  # gateway type names: bool, int16, uint16, uint32, float32, string
    read: Callable[[Snapshot], Value]
    description: str
    byte_order: Literal["ABCD", "CDAB"] = "ABCD"
    scale: float = 1.0
    unit: str = ""
    length: int | None = None  # registers, for strings
    write: Callable[[AnodizingLine, Value], None] | None = None
    min: float | None = None
    max: float | None = None

    @property
    def device(self) -> str:
        return DEVICES[self.unit_id]

    @property
    def registers(self) -> int:
        if self.table in ("coil", "discrete"):
            return 1
        if self.type == "string":
            return self.length or 0
        return {"int16": 1, "uint16": 1}.get(self.type, 2)

    @property
    def writable(self) -> bool:
        return self.write is not None


def encode(point: Point, value: Value) -> list[int] | bool:
    """Engineering value -> register words (or a bit), as the device would hold it."""
    if point.table in ("coil", "discrete"):
        return bool(value)
    order: Literal["big", "little"] = "little" if point.byte_order == "CDAB" else "big"
    if point.type == "string":
        words = ModbusTcpClient.convert_to_registers(str(value), DT.STRING)
        return (words + [0] * point.registers)[: point.registers]
    if point.type == "float32":
        return ModbusTcpClient.convert_to_registers(float(value) / point.scale, DT.FLOAT32, order)
    low, high = _INT_RANGES[point.type]
    raw = min(high, max(low, round(float(value) / point.scale)))
    return ModbusTcpClient.convert_to_registers(raw, _TYPES[point.type], order)


def decode(point: Point, words: list[int]) -> Value:
    """Register words -> engineering value (the inverse of `encode`, for writes)."""
    order: Literal["big", "little"] = "little" if point.byte_order == "CDAB" else "big"
    raw = ModbusTcpClient.convert_from_registers(words, _TYPES[point.type], order)
    if point.type == "string":
        return str(raw)
    return float(raw) * point.scale  # type: ignore[arg-type]


def _recipe(line: AnodizingLine, v: Value) -> None:
    if float(v) != int(float(v)):
        raise ValueError(f"recipe must be a whole number, got {v}")
    line.set_recipe(int(float(v)))


POINTS: tuple[Point, ...] = (
    # ---- unit 1: the anodizing bath's PLC ----
    Point(1, "holding", 0, "temperature_setpoint", "float32", lambda s: s.setpoint,
          "bath temperature setpoint", unit="°C", min=10.0, max=30.0,
          write=lambda line, v: line.set_setpoint(float(v))),
    Point(1, "holding", 2, "recipe", "uint16", lambda s: s.recipe,
          "recipe number: 1 black, 2 blue, 3 red", min=1, max=3, write=_recipe),
    Point(1, "holding", 3, "cycle_time", "uint16", lambda s: s.cycle_time,
          "anodizing time per product", unit="s", min=5, max=3600,
          write=lambda line, v: line.set_cycle_time(float(v))),
    Point(1, "input", 0, "bath_temperature", "float32", lambda s: s.bath_temperature,
          "bath temperature", unit="°C"),
    Point(1, "input", 2, "pressure", "uint16", lambda s: s.pressure,
          "air agitation pressure", scale=0.01, unit="kPa"),
    Point(1, "input", 3, "heater_output", "uint16", lambda s: s.heater_output,
          "heater output", scale=0.1, unit="%"),
    Point(1, "input", 4, "state", "uint16", lambda s: int(s.state),
          "equipment state: 0 stopped, 1 idle (running), 2 processing"),
    Point(1, "input", 5, "event_count", "uint32", lambda s: s.event_count,
          "equipment events so far (a gap means an event was missed)"),
    Point(1, "input", 7, "last_event", "uint16", lambda s: int(s.last_event),
          "last event: 0 none, 1 run, 2 stop, 3 process start, 4 process end"),
    Point(1, "input", 8, "product_id", "string", lambda s: s.product_id,
          "ID of the product in the bath (or the last one), 12 ASCII chars", length=6),
    Point(1, "input", 14, "products_done", "uint32", lambda s: s.products_done,
          "products finished (word-swapped, as some PLCs do)", byte_order="CDAB"),
    Point(1, "input", 16, "labels_printed", "uint16", lambda s: s.labels_printed,
          "defect labels printed"),
    Point(1, "discrete", 0, "running", "bool", lambda s: s.state != 0, "line is running"),
    Point(1, "discrete", 1, "in_process", "bool", lambda s: s.state == 2,
          "a product is in the bath"),
    Point(1, "coil", 0, "defect_lamp", "bool", lambda s: s.defect_lamp, "defect lamp on",
          write=lambda line, v: line.set_defect_lamp(bool(v))),
    Point(1, "coil", 1, "print_label", "bool", lambda s: s.label_request,
          "print a defect label: set it; the PLC clears it when printed (0.5 s)",
          write=lambda line, v: line.request_label(bool(v))),
    Point(1, "coil", 2, "run_enable", "bool", lambda s: s.run_enable,
          "run permit: clear it to stop the line",
          write=lambda line, v: line.set_run_enable(bool(v))),
    # ---- unit 2: the instruments (acid analyser and colour meter) ----
    Point(2, "holding", 0, "delta_e_limit", "float32", lambda s: s.delta_e_limit,
          "ΔE*ab above which a product is a defect (a control limit)", min=0.5, max=20.0,
          write=lambda line, v: line.set_delta_e_limit(float(v))),
    Point(2, "input", 0, "concentration", "float32", lambda s: s.concentration,
          "sulfuric acid concentration (word-swapped float)", unit="g/L", byte_order="CDAB"),
    Point(2, "input", 2, "bath_colour_l", "uint16", lambda s: s.bath_lab[0],
          "bath colour L*", scale=0.01),
    Point(2, "input", 3, "bath_colour_a", "int16", lambda s: s.bath_lab[1],
          "bath colour a*", scale=0.01),
    Point(2, "input", 4, "bath_colour_b", "int16", lambda s: s.bath_lab[2],
          "bath colour b*", scale=0.01),
    Point(2, "input", 5, "product_colour_l", "uint16", lambda s: s.product_lab[0],
          "last product's colour L*", scale=0.01),
    Point(2, "input", 6, "product_colour_a", "int16", lambda s: s.product_lab[1],
          "last product's colour a*", scale=0.01),
    Point(2, "input", 7, "product_colour_b", "int16", lambda s: s.product_lab[2],
          "last product's colour b*", scale=0.01),
    Point(2, "input", 8, "product_delta_e", "float32", lambda s: s.delta_e,
          "last product's colour difference ΔE*ab from the recipe target"),
    Point(2, "input", 10, "measured_product_id", "string", lambda s: s.measured_product_id,
          "ID of the product last measured", length=6),
    Point(2, "input", 16, "defects", "uint32", lambda s: s.defects, "defect products so far"),
    Point(2, "discrete", 0, "defect", "bool", lambda s: s.defect,
          "last measured product is over the ΔE limit"),
    Point(2, "discrete", 1, "dosing", "bool", lambda s: s.dosing, "acid dosing pump running"),
    Point(2, "coil", 0, "calibrate", "bool", lambda s: s.calibration_request,
          "zero the colour meter (cleared when done)",
          write=lambda line, v: line.request_calibration(bool(v))),
)  # fmt: skip


def points_of(unit_id: int, table: Table) -> list[Point]:
    return [p for p in POINTS if p.unit_id == unit_id and p.table == table]


def markdown_table() -> str:
    """The register map as a Markdown table (line_sim/README.md embeds this output)."""
    rows = [
        "| unit | device | table | address | tag | type | byte order | scale | unit | "
        "access | meaning |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for p in POINTS:
        kind = f"string[{p.length}]" if p.type == "string" else p.type
        order = p.byte_order if p.table in ("holding", "input") and p.type != "string" else ""
        rows.append(
            f"| {p.unit_id} | {p.device} | {p.table} | {p.address} | `{p.name}` | {kind} | "
            f"{order} | {p.scale:g} | {p.unit} | {'rw' if p.writable else 'r'} | "
            f"{p.description} |"
        )
    return "\n".join(rows)


if __name__ == "__main__":
    print(markdown_table())
