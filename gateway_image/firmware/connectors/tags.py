"""Tag models shared by every connector config, and the helpers their validators use."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

from factory_common.config import StrictModel, format_path
from factory_common.wire import WireError, check_id

Loc = tuple[int | str, ...]


def check_name(value: str, what: str) -> str:
    """Device and tag names travel in every Reading and appear in URLs: same rules as ids."""
    try:
        return check_id(value, what)
    except WireError as exc:
        raise ValueError(str(exc)) from None


def raise_at(title: str, problems: Iterable[tuple[Loc, str, Any]]) -> None:
    """Raise one ValidationError whose errors point at nested keys (loc, message, input).

    Pydantic prefixes these locations with the validated model's own path, so a duplicate
    found by a device validator is reported at `connectors[0].devices[1].tags[4].name`,
    and the loader can find its line.
    """
    details = [
        InitErrorDetails(
            type=PydanticCustomError("config_check", "{message}", {"message": message}),
            loc=loc,
            input=value,
        )
        for loc, message, value in problems
    ]
    if details:
        raise ValidationError.from_exception_data(title, details)


class Deadband(StrictModel):
    """Report by exception: a new value is reported when it moves more than this."""

    absolute: float | None = Field(default=None, ge=0)
    percent: float | None = Field(default=None, ge=0, le=100)

    @model_validator(mode="after")
    def _exactly_one(self) -> Deadband:
        if (self.absolute is None) == (self.percent is None):
            raise ValueError("give exactly one of `absolute` or `percent`")
        return self


class TagBase(StrictModel):
    """What every connector's tag has: a name, engineering scaling, write limits, deadband,
    and how to show it (unit, label, description, enumeration names, display precision)."""

    name: str
    scale: float = 1.0
    offset: float = 0.0
    unit: str = ""
    # What operators read (published in the tag catalogue; the edge's master data may override).
    label: str = Field(default="", max_length=80)
    description: str = Field(default="", max_length=500)
    enum: dict[int, str] = {}  # value -> name, e.g. {0: stopped, 1: idle, 2: processing}
    precision: int | None = Field(default=None, ge=0, le=12)  # decimals shown
    writable: bool = False
    min: float | None = None
    max: float | None = None
    deadband: Deadband | None = None
    # Report by exception (exception_filter.py), seconds: at most this often, and at least this
    # often (an unchanged value is reported again as alive). Null: no limit.
    min_interval: float | None = Field(default=None, gt=0)
    max_interval: float | None = Field(default=None, gt=0)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return check_name(value, "tag name")

    @field_validator("scale")
    @classmethod
    def _scale(cls, value: float) -> float:
        # A zero scale would make every value identical and writes impossible to invert.
        if value == 0:
            raise ValueError("scale must not be 0")
        return value

    @field_validator("unit", mode="before")
    @classmethod
    def _unit(cls, value: object) -> object:
        return "" if value is None else value

    @model_validator(mode="after")
    def _range(self) -> TagBase:
        if self.min is not None and self.max is not None and self.min > self.max:
            raise_at(
                type(self).__name__,
                [(("min",), f"min ({self.min}) is greater than max ({self.max})", self.min)],
            )
        low, high = self.min_interval, self.max_interval
        if low is not None and high is not None and low > high:
            raise_at(
                type(self).__name__,
                [(("min_interval",), f"min_interval ({low}) exceeds max_interval ({high})", low)],
            )
        return self


def duplicates(keys: Iterable[tuple[Any, Loc]], describe: str) -> list[tuple[Loc, str, Any]]:
    """Every key seen before becomes a problem at its own location, naming the first one."""
    seen: dict[Any, Loc] = {}
    problems: list[tuple[Loc, str, Any]] = []
    for key, loc in keys:
        if key in seen:
            first = format_path(seen[key])
            problems.append((loc, f"duplicate {describe} {key!r} (first at {first})", key))
        else:
            seen[key] = loc
    return problems
