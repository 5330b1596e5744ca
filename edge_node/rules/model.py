"""The rules file: rules with one trigger, conditions and actions (validated with file:line errors).

```yaml
rules:
  - id: hot-bath
    trigger: {reading: {series: "*/bath1/bath_temperature"}}
    when: "value > 28"
    once_per: "round(ts / 60e9)"          # optional: at most one firing per distinct key
    actions:
      - alarm: {source: "=series", rule: hot-bath, message: "='bath at ' + str(value)"}
```
Triggers: `reading` (series pattern), `event` (a series changes value, optionally from/to),
`alarm` (raised/acknowledged/cleared, source and rule patterns), `schedule` (every N seconds
or a five-field cron line). Actions: `command`, `cloud_event`, `alarm`, `webhook`.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from edge_node.rules.cron import Cron
from edge_node.rules.expr import Expr, ExprError, compile_template
from factory_common.config import StrictModel

# Names an expression may use; the engine provides each one.
FUNCTIONS = frozenset(
    {"latest", "latest_ts", "limits", "recipe", "recipe_by_id", "coalesce", "now"}
    | {"abs", "min", "max", "round", "int", "float", "str", "len", "bool"}
)
NAMES = FUNCTIONS | {
    "value", "previous", "ts", "series", "gateway", "device", "tag", "quality", "alarm",
    "rule", "trigger", "key",
}  # fmt: skip


def check_expression(text: str) -> str:
    try:
        Expr(text, NAMES)
    except ExprError as exc:
        raise ValueError(str(exc)) from None
    return text


def check_template(value: Any) -> Any:
    try:
        compile_template(value, NAMES)
    except ExprError as exc:
        raise ValueError(str(exc)) from None
    return value


class ReadingTrigger(StrictModel):
    series: str  # gateway/device/tag, fnmatch pattern ("*/meter1/product_delta_e")
    include_bad: bool = False  # readings of bad quality trigger too


class EventTrigger(StrictModel):
    series: str
    to: bool | int | float | str | None = None  # only changes to this value
    from_: bool | int | float | str | None = Field(default=None, alias="from")


class AlarmTrigger(StrictModel):
    # Not `on:` - YAML 1.1 reads a bare `on` key as the boolean true.
    changes: list[Literal["raised", "acknowledged", "cleared"]] = ["raised"]
    source: str = "*"
    rule: str = "*"


class ScheduleTrigger(StrictModel):
    every: float | None = Field(default=None, gt=0)  # seconds
    cron: str | None = None  # minute hour day-of-month month day-of-week, UTC

    @field_validator("cron")
    @classmethod
    def _cron(cls, value: str | None) -> str | None:
        if value is not None:
            Cron.parse(value)
        return value

    @model_validator(mode="after")
    def _one(self) -> ScheduleTrigger:
        if (self.every is None) == (self.cron is None):
            raise ValueError("give exactly one of `every` (seconds) or `cron`")
        return self


class Trigger(StrictModel):
    reading: ReadingTrigger | None = None
    event: EventTrigger | None = None
    alarm: AlarmTrigger | None = None
    schedule: ScheduleTrigger | None = None

    @model_validator(mode="after")
    def _one(self) -> Trigger:
        given = [k for k in ("reading", "event", "alarm", "schedule") if getattr(self, k)]
        if len(given) != 1:
            raise ValueError("give exactly one trigger: reading, event, alarm or schedule")
        return self

    @property
    def kind(self) -> str:
        return next(k for k in ("reading", "event", "alarm", "schedule") if getattr(self, k))


class WriteSpec(StrictModel):
    device: str
    tag: str
    value: Any

    @field_validator("value")
    @classmethod
    def _template(cls, value: Any) -> Any:
        return check_template(value)


class CommandAction(StrictModel):
    gateway: str = "=gateway"  # default: the gateway of the triggering series
    writes: list[WriteSpec] = Field(min_length=1)
    timeout: float = Field(default=10.0, gt=0)  # wait this long for the gateway's ack
    expires: float = Field(default=30.0, gt=0)  # the gateway refuses the command after this

    @field_validator("gateway")
    @classmethod
    def _template(cls, value: Any) -> Any:
        return check_template(value)


class CloudEventAction(StrictModel):
    kind: str
    key: str  # idempotency key: the same key is sent to the cloud once
    payload: dict[str, Any] = {}

    @field_validator("kind", "key", "payload")
    @classmethod
    def _template(cls, value: Any) -> Any:
        return check_template(value)


class AlarmAction(StrictModel):
    source: str = "=series"
    rule: str
    message: str = ""
    severity: Literal["low", "warning", "high", "critical"] = "warning"
    clear: bool = False  # clear the active alarm of (source, rule) instead of raising

    @field_validator("source", "rule", "message")
    @classmethod
    def _template(cls, value: Any) -> Any:
        return check_template(value)


class WebhookAction(StrictModel):
    url: str
    payload: dict[str, Any] = {}
    headers: dict[str, str] = {}
    timeout: float = Field(default=5.0, gt=0)

    @field_validator("payload")
    @classmethod
    def _template(cls, value: Any) -> Any:
        return check_template(value)

    @field_validator("url")
    @classmethod
    def _scheme(cls, value: str) -> str:
        if not value.startswith(("http://", "https://", "=")):
            raise ValueError("the webhook url must start with http:// or https:// (or be =expr)")
        return check_template(value)


class Action(StrictModel):
    command: CommandAction | None = None
    cloud_event: CloudEventAction | None = None
    alarm: AlarmAction | None = None
    webhook: WebhookAction | None = None

    @model_validator(mode="after")
    def _one(self) -> Action:
        if sum(getattr(self, k) is not None for k in ACTION_KINDS) != 1:
            raise ValueError("each action is exactly one of: " + ", ".join(ACTION_KINDS))
        return self

    @property
    def kind(self) -> str:
        return next(k for k in ACTION_KINDS if getattr(self, k) is not None)

    @property
    def spec(self) -> Any:
        return getattr(self, self.kind)


ACTION_KINDS = ("command", "cloud_event", "alarm", "webhook")


class Rule(StrictModel):
    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
    description: str = ""
    enabled: bool = True
    trigger: Trigger
    when: list[str] = []  # every expression must be true
    once_per: str | None = None  # fire at most once per distinct value of this expression
    timeout: float = Field(default=30.0, gt=0)  # for all actions of one firing together
    max_running: int = Field(default=4, ge=1)  # firings of this rule in progress at once
    actions: list[Action] = Field(min_length=1)

    @field_validator("when", mode="before")
    @classmethod
    def _listify(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @field_validator("when")
    @classmethod
    def _conditions(cls, value: list[str]) -> list[str]:
        return [check_expression(text) for text in value]

    @field_validator("once_per")
    @classmethod
    def _once(cls, value: str | None) -> str | None:
        return check_expression(value) if value is not None else None


class RulesFile(StrictModel):
    rules: list[Rule] = []

    @model_validator(mode="after")
    def _unique(self) -> RulesFile:
        seen: set[str] = set()
        for rule in self.rules:
            if rule.id in seen:
                raise ValueError(f"rule id {rule.id!r} is used twice")
            seen.add(rule.id)
        return self
