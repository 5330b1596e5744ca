"""Report by exception: deadbands, minimum and maximum reporting interval, quality changes."""

from __future__ import annotations

import asyncio
import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from factory_common.config import ConfigError
from factory_common.wire import Quality, Reading, TimeSource
from gateway_image.firmware.config import parse_gateway_config
from gateway_image.firmware.exception_filter import ExceptionFilter, Policy
from gateway_image.firmware.runner import ConnectorRunner, runner_for

KEY = ("d", "t")


def reading(
    value: object, ts: int = 1, quality: Quality = Quality.GOOD, reason: str = ""
) -> Reading:
    return Reading("d", "t", ts, value, quality, reason)  # type: ignore[arg-type]


def run(f: ExceptionFilter, values: list[object], step: float = 1.0) -> list[object]:
    """Feed one value per `step` seconds; the values that were reported."""
    out = []
    for i, value in enumerate(values):
        out += [r.value for r in f.apply([reading(value, ts=i)], now=i * step)]
    return out


def test_tags_without_policy_pass_untouched() -> None:
    f = ExceptionFilter({KEY: Policy()})
    assert not f.active
    assert run(f, [1.0, 1.0, 1.0]) == [1.0, 1.0, 1.0]


def test_absolute_deadband_compares_with_last_reported_value() -> None:
    f = ExceptionFilter({KEY: Policy(absolute=0.5)})
    # 10.3 and 10.5 are within 0.5 of the reported 10.0; slow drift still gets reported.
    assert run(f, [10.0, 10.3, 10.5, 10.6, 10.9, 11.2]) == [10.0, 10.6, 11.2]
    assert f.suppressed == 3


def test_percent_deadband_is_relative_to_last_reported_magnitude() -> None:
    f = ExceptionFilter({KEY: Policy(percent=10)})
    assert run(f, [100.0, 109.0, 111.0, 121.0, 123.0, -5.0]) == [100.0, 111.0, 123.0, -5.0]


def test_deadband_zero_reports_every_change_and_text_changes() -> None:
    f = ExceptionFilter({KEY: Policy(absolute=0)})
    assert run(f, [1, 1, 2, 2, 2, 1]) == [1, 2, 1]
    g = ExceptionFilter({KEY: Policy(absolute=5)})
    assert run(g, ["A1", "A1", "B2", True, True, False]) == ["A1", "B2", True, False]


def test_quality_change_is_always_reported() -> None:
    f = ExceptionFilter({KEY: Policy(absolute=100, min_interval=60)})
    seq = [
        reading(1.0),
        reading(None, quality=Quality.BAD, reason="timeout"),
        reading(None, quality=Quality.BAD, reason="timeout"),
        reading(None, quality=Quality.BAD, reason="illegal address"),
        reading(1.0),
    ]
    out = [r for i, r in enumerate(seq) for r in f.apply([r], now=float(i))]
    assert [(r.quality, r.reason) for r in out] == [
        (Quality.GOOD, ""),
        (Quality.BAD, "timeout"),
        (Quality.BAD, "illegal address"),
        (Quality.GOOD, ""),
    ]


def test_min_interval_throttles_and_reports_the_held_change_later() -> None:
    f = ExceptionFilter({KEY: Policy(absolute=0, min_interval=3)})
    # Polled every second: the change at t=1 waits until t=3, the one at t=4 until t=6.
    assert run(f, [1, 2, 2, 2, 5, 5, 5, 5]) == [1, 2, 5]
    values = [1, 2, 2, 2, 5, 5, 5, 5]
    g = ExceptionFilter({KEY: Policy(absolute=0, min_interval=3)})
    times = [i for i, v in enumerate(values) if g.apply([reading(v)], now=float(i))]
    assert times == [0, 3, 6]


def test_max_interval_reports_an_unchanged_value_as_alive() -> None:
    f = ExceptionFilter({KEY: Policy(absolute=1, max_interval=4)})
    values = [7.0] * 10
    g = ExceptionFilter({KEY: Policy(absolute=1, max_interval=4)})
    assert run(f, values) == [7.0, 7.0, 7.0]
    times = [i for i, v in enumerate(values) if g.apply([reading(v)], now=float(i))]
    assert times == [0, 4, 8]


def test_due_sends_held_changes_and_alive_reports_for_silent_streams() -> None:
    f = ExceptionFilter({KEY: Policy(absolute=0, min_interval=2, max_interval=5)})
    assert f.apply([reading(1, ts=100, quality=Quality.GOOD)], now=0.0)
    assert not f.apply([reading(2, ts=200)], now=1.0)  # held back by min_interval
    assert f.due(now=1.5, wall_ns=999) == []
    assert f.due(now=2.0, wall_ns=999) == [reading(2, ts=200)]  # its own timestamp
    assert f.due(now=6.9, wall_ns=999) == []
    alive = f.due(now=7.0, wall_ns=12345)
    assert alive == [Reading("d", "t", 12345, 2, src=TimeSource.GATEWAY)]
    assert f.due(now=8.0, wall_ns=1) == []


def test_other_tags_of_the_same_batch_are_not_affected() -> None:
    f = ExceptionFilter({KEY: Policy(absolute=10)})
    other = Reading("d", "other", 1, 1.0)
    assert f.apply([reading(1.0), other], 0.0) == [reading(1.0), other]
    assert f.apply([reading(2.0), other], 1.0) == [other]


numbers = st.floats(-1e6, 1e6, allow_nan=False)


@given(st.lists(numbers, min_size=1, max_size=60), st.floats(0, 100))
def test_absolute_deadband_properties(values: list[float], band: float) -> None:
    """Every suppressed value lies within the band of the last report; every report left it."""
    f = ExceptionFilter({KEY: Policy(absolute=band)})
    last = None
    for i, value in enumerate(values):
        reported = bool(f.apply([reading(value)], float(i)))
        if last is None:
            assert reported
        elif reported:
            assert abs(value - last) > band
        else:
            assert abs(value - last) <= band
        last = value if reported else last


@given(
    st.lists(st.tuples(st.integers(0, 3), st.floats(0.01, 2.0)), min_size=1, max_size=80),
    st.floats(0.5, 5.0),
    st.floats(0.1, 3.0),
)
def test_interval_bounds_hold(steps: list[tuple[int, float]], max_iv: float, min_iv: float) -> None:
    """Gaps between reports never exceed max_interval + one poll, never undercut min_interval."""
    min_iv = min(min_iv, max_iv)
    f = ExceptionFilter({KEY: Policy(absolute=0.5, min_interval=min_iv, max_interval=max_iv)})
    now, times, step = 0.0, [], 0.0
    for value, step in steps:
        if f.apply([reading(float(value))], now):
            times.append(now)
        now += step
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert all(g >= min_iv - 1e-9 for g in gaps)
    biggest_step = max(s for _, s in steps)
    assert all(g <= max_iv + biggest_step + 1e-9 for g in gaps)


CONFIG = """
gateway: {id: gw1}
connectors:
  - type: modbus_tcp
    name: plc
    host: 127.0.0.1
    devices:
      - name: d
        tags:
          - {name: t, table: holding, address: 0, type: int16, deadband: {absolute: 2},
             min_interval: 0.5, max_interval: 30}
          - {name: u, table: holding, address: 1, type: int16}
"""


def test_config_fields_become_the_runners_filter() -> None:
    config = parse_gateway_config(CONFIG)
    r = runner_for(config.connectors[0], sink=lambda _r: asyncio.sleep(0), gateway="gw1")
    assert r.filter is not None
    assert r.filter.policies == {("d", "t"): Policy(absolute=2, min_interval=0.5, max_interval=30)}


def test_min_interval_above_max_interval_is_refused_with_its_location() -> None:
    bad = CONFIG.replace("min_interval: 0.5", "min_interval: 60")
    with pytest.raises(ConfigError, match=r"tags\[0\]\.min_interval.*exceeds max_interval"):
        parse_gateway_config(bad)


class Stream:
    """A StreamingConnector that sends two values then falls silent."""

    name = "s"

    async def run(self, emit) -> None:  # type: ignore[no-untyped-def]
        await emit([reading(1.0)])
        await emit([reading(1.2)])  # within the deadband: suppressed
        await asyncio.Event().wait()


async def test_runner_sends_alive_reports_for_a_silent_stream() -> None:
    got: list[Reading] = []

    async def sink(readings: list[Reading]) -> None:
        got.extend(readings)

    f = ExceptionFilter({KEY: Policy(absolute=1, max_interval=0.1)})
    r = ConnectorRunner(Stream(), sink, gateway="gw", connector_type="s", exception_filter=f)
    task = asyncio.create_task(r.run())
    await asyncio.sleep(0.35)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert got[0] == reading(1.0)
    # At least two alive reports repeat the newest value seen (1.2) with fresh timestamps.
    assert len(got) >= 3 and all(x.value == 1.2 and x.ts > 1 for x in got[1:])
    assert r.health().readings == 2  # health counts readings taken, not reports


def test_opcua_deadband_is_left_to_the_server_but_intervals_apply() -> None:
    from gateway_image.firmware.connectors.opcua.config import OpcUaConfig

    config = OpcUaConfig.model_validate(
        {
            "type": "opcua",
            "name": "ua",
            "endpoint": "opc.tcp://127.0.0.1:4840",
            "devices": [
                {
                    "name": "oven",
                    "tags": [
                        {"name": "a", "node_id": "ns=2;i=1", "deadband": {"percent": 5}},
                        {
                            "name": "b",
                            "node_id": "ns=2;i=2",
                            "deadband": {"absolute": 1},
                            "max_interval": 30,
                        },
                    ],
                }
            ],
        }
    )
    assert ExceptionFilter.from_config(config).policies == {("oven", "b"): Policy(max_interval=30)}


def test_serial_line_tags_get_their_policies() -> None:
    from gateway_image.firmware.connectors.serial_line.config import SerialLineConfig

    config = SerialLineConfig.model_validate(
        {
            "type": "serial_line",
            "name": "scale",
            "port": "/dev/ttyUSB0",
            "pattern": r"(?P<weight>[0-9.]+) kg",
            "tags": [{"name": "weight", "deadband": {"absolute": 0.5}}],
        }
    )
    assert ExceptionFilter.from_config(config).policies == {
        ("scale", "weight"): Policy(absolute=0.5)
    }
