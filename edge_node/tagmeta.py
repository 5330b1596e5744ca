"""What each tag is: the gateways' tag catalogues merged with master data and the stored series.

Pure: plain inputs in, one `TagMeta` per known series out. Master data (the cloud's engineering
system) wins where it says something, because it is what the plant agreed on; the gateway's
config fills in the rest (type, enumeration names, write limits, the connector that reads it).
A tag a gateway declared but never reported is known here too, so the API can answer for it
before its first reading.
"""

from __future__ import annotations

from collections.abc import Container, Iterable, Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from factory_common.wire import TagCatalogue, TagInfo, TagType

KIND_OF_TYPE = {
    TagType.FLOAT: "num",
    TagType.INT: "num",
    TagType.BOOL: "bool",
    TagType.STR: "str",
    TagType.ANY: "num",  # until a reading says otherwise
}
TYPE_OF_KIND = {"num": TagType.FLOAT, "bool": TagType.BOOL, "str": TagType.STR}


@dataclass(frozen=True, slots=True)
class TagMeta:
    name: str  # gateway/device/tag
    gateway: str
    device: str
    tag: str
    kind: str  # num | bool | str: how the store keeps it
    type: str  # float | int | bool | str: what its values are
    label: str
    unit: str | None = None
    description: str | None = None
    writable: bool = False
    min: float | None = None
    max: float | None = None
    enum: dict[str, str] = field(default_factory=dict)
    precision: int | None = None
    connector: str = ""
    interval: float | None = None
    equipment_id: str | None = None
    has_data: bool = False

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def label_of(tag: str) -> str:
    """`bath_temperature` -> `Bath temperature`: readable when the config gives no label."""
    words = tag.replace("_", " ").replace("-", " ").split()
    text = " ".join(words)
    return text[:1].upper() + text[1:] if text else tag


def _from_catalogue(gateway: str, info: TagInfo) -> TagMeta:
    return TagMeta(
        name=f"{gateway}/{info.device}/{info.tag}",
        gateway=gateway,
        device=info.device,
        tag=info.tag,
        kind=KIND_OF_TYPE[info.type],
        type=info.type.value,
        label=info.label or label_of(info.tag),
        unit=info.unit or None,
        description=info.description or None,
        writable=info.writable,
        min=info.min,
        max=info.max,
        enum=dict(info.enum),
        precision=info.precision,
        connector=info.connector,
        interval=info.interval,
    )


def _from_series(
    gateway: str, device: str, tag: str, kind: str, unit: str | None, value: Any
) -> TagMeta:
    """A stored series no catalogue declares (so it has data)."""
    typ = TYPE_OF_KIND.get(kind, TagType.FLOAT)
    if typ is TagType.FLOAT and isinstance(value, int) and not isinstance(value, bool):
        typ = TagType.INT  # no catalogue: the newest value's own type is the best evidence
    return TagMeta(
        name=f"{gateway}/{device}/{tag}",
        gateway=gateway,
        device=device,
        tag=tag,
        kind=kind,
        type=typ.value,
        label=label_of(tag),
        unit=unit,
        has_data=True,
    )


@dataclass(frozen=True, slots=True)
class StoredSeries:
    gateway: str
    device: str
    tag: str
    kind: str
    unit: str | None = None
    latest: Any = None  # newest value, for the type when no catalogue says it


def merge(
    catalogues: Iterable[TagCatalogue],
    stored: Iterable[StoredSeries],
    master: Iterable[Any] = (),
    only: Container[str] | None = None,
) -> dict[str, TagMeta]:
    """name -> TagMeta for every tag a catalogue declares or the store holds, sorted by name.
    `master`: master data's TagInfo rows (name, equipment_id, unit, description). `only`:
    just these names (each tag's metadata depends on nothing but its own entries)."""
    out: dict[str, TagMeta] = {}
    for catalogue in catalogues:
        for info in catalogue.tags:
            if only is not None and f"{catalogue.gateway}/{info.device}/{info.tag}" not in only:
                continue
            meta = _from_catalogue(catalogue.gateway, info)
            out[meta.name] = meta
    for s in stored:
        name = f"{s.gateway}/{s.device}/{s.tag}"
        if only is not None and name not in only:
            continue
        seen = _from_series(s.gateway, s.device, s.tag, s.kind, s.unit, s.latest)
        known = out.get(name)
        if known is None:
            out[name] = seen  # each TagMeta built is ~10 us: a chart names every tag it shows
        elif known.type == TagType.ANY.value:  # the values say what the config could not
            out[name] = _replace(known, kind=seen.kind, type=seen.type, has_data=True)
        else:
            out[name] = _replace(known, has_data=True)
    for m in master:
        declared = out.get(m.name)
        if declared is None:
            continue  # master data of a tag no gateway here declares: nothing to show yet
        out[m.name] = _replace(
            declared,
            unit=m.unit or declared.unit,
            description=m.description or declared.description,
            equipment_id=m.equipment_id,
        )
    return dict(sorted(out.items()))


def _replace(meta: TagMeta, **changes: Any) -> TagMeta:
    # dataclasses.replace, not a copy through asdict: asdict deep-copies every field and
    # took ~20 us a tag, which every request that names tags paid for each tag the edge knows.
    return replace(meta, **changes)


def enum_name(meta: TagMeta | None, value: Any) -> str | None:
    """The enumeration's name for a value (`2` -> `processing`), None when it has none."""
    if meta is None or not meta.enum or isinstance(value, bool) or value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return meta.enum.get(str(value))


def as_int(meta: Mapping[str, TagMeta], name: str) -> bool:
    """Whether a series' numbers are integers (history keeps numbers as float64)."""
    found = meta.get(name)
    return found is not None and found.type == TagType.INT.value
