"""The anodizing line model: determinism, plausible ranges, defect rate and the event sequence."""

from __future__ import annotations

import math

import pytest

from line_sim.anodizing import RECIPES, AnodizingLine, EventCode, LineParams, State


def run(line: AnodizingLine, seconds: float, dt: float = 0.5) -> list:
    events = []
    for _ in range(int(seconds / dt)):
        events += line.step(dt)
    return events


def test_same_seed_same_line_different_seed_different_line() -> None:
    a, b, c = (AnodizingLine(LineParams(seed=s)) for s in (7, 7, 8))
    ea, eb, ec = run(a, 600), run(b, 600), run(c, 600)
    assert ea == eb and a.snapshot() == b.snapshot()
    assert a.snapshot() != c.snapshot() or ea != ec


def test_values_stay_in_plausible_ranges_for_an_hour() -> None:
    line = AnodizingLine(LineParams(seed=3))
    for _ in range(3600 * 2):
        line.step(0.5)
        s = line.snapshot()
        assert 17.0 < s.bath_temperature < 23.0
        assert 0.0 <= s.heater_output <= 100.0
        assert 0.0 <= s.pressure < 40.0
        assert 165.0 < s.concentration < 200.0
        assert 0.0 <= s.bath_lab[0] <= 100.0
    assert s.products_done > 80


def test_temperature_follows_a_new_setpoint() -> None:
    line = AnodizingLine(LineParams(seed=1, temperature_noise=0.0))
    run(line, 60)
    line.set_setpoint(24.0)
    run(line, 300)
    assert line.snapshot().bath_temperature == pytest.approx(24.0, abs=0.5)
    assert line.snapshot().setpoint == 24.0


@pytest.mark.parametrize("value", [5.0, 31.0, math.nan])
def test_setpoint_out_of_range_is_refused_with_the_range(value: float) -> None:
    line = AnodizingLine()
    with pytest.raises(ValueError, match=r"between 10\.0 and 30\.0"):
        line.set_setpoint(value)
    assert line.snapshot().setpoint == 20.0


def test_defect_rate_follows_the_configured_probability() -> None:
    line = AnodizingLine(LineParams(seed=11, defect_probability=0.3, stop_probability=0.0))
    run(line, 3 * 3600, dt=1.0)
    s = line.snapshot()
    rate = s.defects / s.products_done
    assert s.products_done > 300
    assert 0.22 < rate < 0.38


def test_no_defects_when_probability_is_zero_and_process_is_in_control() -> None:
    line = AnodizingLine(LineParams(seed=5, defect_probability=0.0))
    run(line, 1800)
    assert line.snapshot().defects == 0


def test_a_defect_product_is_over_the_delta_e_limit_and_names_the_product() -> None:
    line = AnodizingLine(LineParams(seed=2, defect_probability=1.0))
    events = run(line, 120)
    ends = [e for e in events if e.code is EventCode.PROCESS_END]
    s = line.snapshot()
    assert ends and s.defect and s.delta_e > 3.0
    assert s.measured_product_id == ends[-1].product_id
    assert math.dist(s.product_lab, RECIPES[1].lab) == pytest.approx(s.delta_e)


def test_event_sequence_and_counter() -> None:
    line = AnodizingLine(LineParams(seed=4, stop_probability=0.0, first_product=123))
    events = run(line, 200)
    codes = [e.code for e in events]
    assert codes[0] is EventCode.RUN
    body = codes[1:]
    assert body[0::2] == [EventCode.PROCESS_START] * len(body[0::2])
    assert body[1::2] == [EventCode.PROCESS_END] * len(body[1::2])
    assert events[1].product_id == "P2611-000123"
    starts = [e.product_id for e in events if e.code is EventCode.PROCESS_START]
    assert starts == [f"P2611-{n:06d}" for n in range(123, 123 + len(starts))]
    assert line.snapshot().event_count == len(events)


def test_run_enable_off_stops_the_line_and_on_restarts_it() -> None:
    line = AnodizingLine(LineParams(seed=4, stop_probability=0.0))
    run(line, 10)
    line.set_run_enable(False)
    events = run(line, 30)
    assert line.snapshot().state is State.STOPPED
    assert [e.code for e in events][-1] is EventCode.STOP
    line.set_run_enable(True)
    events = run(line, 30)
    assert events[0].code is EventCode.RUN


def test_concentration_depletes_and_dosing_replenishes() -> None:
    line = AnodizingLine(LineParams(seed=9, stop_probability=0.0))
    lows, dosed = [], False
    for _ in range(3600 * 2):
        line.step(0.5)
        lows.append(line.plant.concentration)
        dosed = dosed or line.dosing
    assert min(lows) < 176.0 and dosed
    assert line.plant.concentration > 170.0


def test_label_pulse_and_lamp_and_recipe() -> None:
    line = AnodizingLine()
    line.request_label()
    for _ in range(4):  # the printer is busy for LABEL_PRINT_S: the bit reads back as set
        line.step(0.1)
        assert line.snapshot().label_request and line.snapshot().labels_printed == 0
    line.step(0.1)
    line.set_defect_lamp(True)
    line.set_recipe(2)
    s = line.snapshot()
    assert not s.label_request
    assert (s.labels_printed, s.defect_lamp, s.recipe, s.cycle_time) == (1, True, 2, 20.0)
    with pytest.raises(ValueError, match="recipe 9 is unknown"):
        line.set_recipe(9)
    line.request_label()
    line.step(0.3)
    line.request_label(False)  # cleared while printing: that label is cancelled
    line.step(0.3)
    line.request_label()
    line.step(0.3)
    assert line.snapshot().label_request and line.snapshot().labels_printed == 1
