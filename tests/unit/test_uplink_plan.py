"""The uplink send plan: in order by default; live first, then a rate-limited replay."""

from __future__ import annotations

import pytest

from factory_common.config import ConfigError
from gateway_image.firmware.config import MqttConfig, parse_gateway_config
from gateway_image.firmware.uplink.plan import SendPlan, Slice


def test_in_order_by_default() -> None:
    plan = SendPlan()
    assert plan.next(last_seq=10_000, depth=10_000, now=0) == Slice(None, None, replay=False)
    plan.sent(1, 500, replay=False)
    assert plan.next(last_seq=10_000, depth=9_500, now=0) == Slice(500, None, replay=False)
    plan.rewind(200)  # the broker refused the batch starting at 200
    assert plan.next(last_seq=10_000, depth=9_800, now=0) == Slice(199, None, replay=False)


def test_live_first_after_a_backlog_then_back_to_one_cursor() -> None:
    plan = SendPlan(live_first=True, backlog=1000)
    plan.sent(100, 100, replay=False)
    # 5000 unsent readings: everything up to seq 5100 is backlog, newer readings are live.
    part = plan.next(last_seq=5100, depth=5000, now=0)
    assert part == Slice(100, 5100, replay=True) and plan.replaying
    plan.sent(101, 600, replay=True)
    assert plan.next(last_seq=5150, depth=4550, now=0) == Slice(5100, None, replay=False)
    plan.sent(5101, 5150, replay=False)
    assert plan.next(last_seq=5150, depth=4550, now=0) == Slice(600, 5100, replay=True)
    plan.sent(601, 5100, replay=True)  # the backlog is through
    assert not plan.replaying
    assert plan.next(last_seq=5160, depth=10, now=0) == Slice(5150, None, replay=False)


def test_small_gaps_are_not_a_backlog() -> None:
    plan = SendPlan(live_first=True, backlog=1000)
    plan.sent(1, 10, replay=False)
    assert plan.next(last_seq=900, depth=890, now=0) == Slice(10, None, replay=False)


def test_a_lag_of_readings_all_committed_within_the_live_window_is_no_backlog() -> None:
    """An uplink a few commits behind stays in order (and on the readings kept in memory):
    with nothing older than the live window, a split would only add a replay pass."""
    plan = SendPlan(live_first=True, backlog=1000)
    plan.production.observe(0.0, 100)
    plan.sent(1, 100, replay=False)
    assert plan.next(last_seq=5100, depth=5000, now=0.5) == Slice(100, None, replay=False)
    assert not plan.replaying


def test_replay_rate_is_held_on_average() -> None:
    rate, burst = 2000.0, 500
    plan = SendPlan(live_first=True, backlog=10, replay_rate=rate, burst=burst)
    now, sent, seq = 0.0, 0, 0
    while now < 5.0:
        part = plan.next(last_seq=10**6, depth=10**6, now=now)
        if isinstance(part, float):
            now += part
            continue
        assert part.replay
        plan.sent(seq + 1, seq + 500, replay=True)
        seq += 500
        sent += 500
    # Within one batch of the bucket's promise: burst + rate * elapsed.
    assert abs(sent - (burst + rate * now)) <= 500 + burst
    assert sent > 0.9 * rate * 5


def test_replay_finishes_when_the_backlog_vanishes() -> None:
    plan = SendPlan(live_first=True, backlog=10)
    assert plan.next(last_seq=500, depth=500, now=0) == Slice(None, 500, replay=True)
    plan.finish_replay()  # e.g. the budget dropped what was left
    assert not plan.replaying


def test_auto_replay_rate_is_twenty_times_the_measured_production_with_a_floor() -> None:
    plan = SendPlan(live_first=True, backlog=10, replay_rate="auto", min_rate=2000.0)
    assert plan.rate() == 2000.0  # nothing measured yet: the floor
    for step in range(41):  # 10 s at 500 readings/s
        plan.production.observe(step * 0.25, 1_000 + step * 125)
    assert plan.rate() == 20 * 500.0
    slow = SendPlan(replay_rate="auto", min_rate=2000.0)
    for step in range(41):  # 10 readings/s: 20x is 200/s, under the floor
        slow.production.observe(step * 0.25, step * 2.5)
    assert slow.rate() == 2000.0


def test_production_rate_forgets_what_is_older_than_a_minute() -> None:
    plan = SendPlan(replay_rate="auto", min_rate=1.0)
    seq = 0
    for step in range(240):  # one minute at 1000 readings/s, then one at 100/s
        plan.production.observe(step * 0.5, seq)
        seq += 500 if step < 120 else 50
    assert plan.production.value is not None and abs(plan.production.value - 100) < 20


def test_from_config_puts_live_data_first_by_default() -> None:
    plan = SendPlan.from_config(MqttConfig())
    assert plan.live_first and plan.replay_rate == "auto"
    fixed = SendPlan.from_config(MqttConfig(replay_rate=5000, live_first=False))
    assert not fixed.live_first and fixed.rate() == 5000.0


def test_mqtt_protocol_and_replay_settings_are_checked_at_load() -> None:
    text = "gateway: {id: gw1}\nmqtt: {protocol: 5, replay_rate: 8000}\n"
    mqtt = parse_gateway_config(text).mqtt
    assert (mqtt.protocol, mqtt.replay_rate, mqtt.live_first) == ("5", 8000.0, True)
    assert parse_gateway_config("gateway: {id: gw1}\nmqtt: {protocol: '3.1.1'}\n").mqtt.protocol
    for bad, where in [("protocol: 4", "mqtt.protocol"), ("replay_rate: 0", "mqtt.replay_rate")]:
        with pytest.raises(ConfigError, match=where.replace(".", r"\.")):
            parse_gateway_config(f"gateway: {{id: gw1}}\nmqtt: {{{bad}}}\n", "gw.yaml")
