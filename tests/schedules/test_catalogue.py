"""Every catalogue schedule: vectorized equals scalar, the documented holds, and clear errors."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from fluxtrain import schedules
from fluxtrain.easings import polyin, sineio
from fluxtrain.exceptions import ScheduleError
from fluxtrain.schedules import (
    constant,
    cooldown,
    cosine,
    cyclical,
    exponential,
    from_list,
    inverse_sqrt,
    join,
    linear,
    loop,
    multistep,
    onecycle,
    onecycle_three_phase,
    onecycle_three_phase_momentum,
    onecycle_two_phase,
    onecycle_two_phase_momentum,
    poly,
    range_test,
    reduce_on_plateau,
    sgdr,
    step_decay,
    triangular,
    warmup,
    warmup_stable_decay,
)
from fluxtrain.schedules.base import BaseSchedule
from fluxtrain.schedules.keyframes import Schedule

CATALOGUE: dict[str, Callable[[], BaseSchedule]] = {
    "constant": lambda: constant(0.3),
    "linear": lambda: linear(0.1, 1.0, 7.5),
    "exponential": lambda: exponential(1.0, 0.8),
    "exponential staircase": lambda: exponential(1.0, 0.5, period=3, staircase=True),
    "step_decay": lambda: step_decay(1.0, 0.5, 4, min_value=0.1),
    "multistep": lambda: multistep(1.0, 0.1, [3, 7.5, 20]),
    "poly": lambda: poly(1.0, 25, 1.7, 0.01),
    "cosine": lambda: cosine(1.0, 0.1, 30),
    "inverse_sqrt": lambda: inverse_sqrt(1.0, 8),
    "warmup_stable_decay": lambda: warmup_stable_decay(1.0, 5, 10, 20, 0.1),
    "warmup_stable_decay cosine": lambda: warmup_stable_decay(1.0, 0, 10, 20, decay_shape="cosine"),
    "warmup_stable_decay 1-sqrt": lambda: warmup_stable_decay(1.0, 3, 0, 9, decay_shape="1-sqrt"),
    "triangular": lambda: triangular(0.1, 1.0, 9, 0.3),
    "triangular rising": lambda: triangular(0.1, 1.0, 9, 1.0),
    "cyclical": lambda: cyclical(lambda n: triangular(0.5, 2.0, n), 6, 1.5, 0.8),
    "sgdr": lambda: sgdr(1.0, 0.0, 5, 2, 0.7),
    "loop": lambda: loop(cosine(1.0, 0.0, 10), 7),
    "warmup": lambda: warmup(step_decay(1.0, 0.5, 10), 0.1, 5.5),
    "warmup eased": lambda: warmup(cosine(1.0, 0.0, 40), 0.0, 8, easing=sineio()),
    "cooldown": lambda: cooldown(triangular(0.1, 1.0, 10), 0.01, 15, 20),
    "cooldown eased": lambda: cooldown(constant(1.0), 0.0, 5, 10, easing=polyin(2)),
    "join": lambda: join([linear(0.0, 1.0, 5), 1.0, cosine(1.0, 0.1, 20)], [5, 12.5]),
    "onecycle": lambda: onecycle(40, 1.0, unit="step"),
    "onecycle_two_phase": lambda: onecycle_two_phase(45, 1.0),
    "onecycle_two_phase_momentum": lambda: onecycle_two_phase_momentum(45, anneal="linear"),
    "onecycle_three_phase": lambda: onecycle_three_phase(45, 1.0, anneal="linear"),
    "onecycle_three_phase_momentum": lambda: onecycle_three_phase_momentum(45),
    "range_test": lambda: range_test(1e-7, 10.0, 50),
    "from_list": lambda: from_list([0.5, 0.4, 0.3, 0.2]),
    "reduce_on_plateau": lambda: reduce_on_plateau(start=0.1),
    "combined": lambda: 0.01 + triangular(0.0, 0.09, 10) * exponential(1.0, 0.97),
}
TIMES = np.concatenate([[-3.0, -0.5], np.linspace(0.0, 60.0, 721), [75.5, 1e4]])


@pytest.mark.parametrize("name", list(CATALOGUE))
def test_vectorized_equals_scalar(name: str) -> None:
    schedule = CATALOGUE[name]()
    scalar = np.array([schedule(float(t)) for t in TIMES])
    vectorized = schedule(TIMES)
    assert vectorized.shape == TIMES.shape and vectorized.dtype == float
    np.testing.assert_allclose(vectorized, scalar, rtol=1e-13, atol=1e-15)
    grid = TIMES[:723].reshape(3, 241)
    np.testing.assert_allclose(schedule(grid), scalar[:723].reshape(3, 241), rtol=1e-13, atol=1e-15)
    assert isinstance(schedule(3), float) and schedule.unit == "step"
    assert repr(schedule)


ENDING = ["linear", "poly", "cosine", "warmup_stable_decay", "cooldown", "join", "onecycle"]
ENDING += ["onecycle_two_phase", "onecycle_three_phase_momentum", "range_test", "from_list"]


@pytest.mark.parametrize("name", [*ENDING, "step_decay", "multistep", "exponential"])
def test_time_before_zero_is_time_zero(name: str) -> None:
    schedule = CATALOGUE[name]()
    assert schedule(-3.0) == schedule(-0.5) == schedule(0.0)


@pytest.mark.parametrize("name", ENDING)
def test_shapes_with_an_end_hold_their_last_value(name: str) -> None:
    schedule = CATALOGUE[name]()
    assert schedule(75.5) == schedule(1e4) == schedule(1e9)
    assert schedule(np.array([75.5, 1e9])).tolist() == [schedule(1e9)] * 2


@pytest.mark.parametrize("unit", ["epoch", "fraction"])
def test_wrappers_take_the_unit_of_what_they_wrap(unit: str) -> None:
    base = cosine(1.0, 0.0, 1.0, unit=unit)
    for wrapped in (warmup(base, 0.1, 0.2), cooldown(base, 0.0, 0.5, 0.2), loop(base, 0.5)):
        assert wrapped.unit == unit
    assert join([base, 0.5], [1.0]).unit == unit
    assert cyclical(lambda n: triangular(0, 1, n, unit=unit), 0.5).unit == unit
    with pytest.raises(ScheduleError, match=r"share one unit, got \['epoch', 'step'\]|'fraction'"):
        join([base, linear(0, 1, 2)], [1.0])


def test_onecycle_is_the_keyframe_schedule_of_the_design() -> None:
    s = onecycle(10, 0.1, pct_start=0.3)
    reference = Schedule([0, 3, 10], [0.1 / 25, 0.1, 0.1 / 1e5], sineio(), unit="epoch")
    t = np.linspace(-1.0, 12.0, 131)
    np.testing.assert_array_equal(s(t), reference(t))
    assert s.unit == "epoch" and s(3.0) == 0.1
    moms = onecycle(10, 0.85, start_val=0.95, end_val=0.95)
    assert moms(0.0) == moms(10.0) == 0.95 and moms(2.5) == 0.85


def test_join_boundaries_belong_to_the_later_piece() -> None:
    s = join([constant(1.0), linear(2.0, 3.0, 2), constant(5.0)], [2, 4])
    table = [(0, 1.0), (1.999, 1.0), (2, 2.0), (3, 2.5), (4, 5.0), (9, 5.0)]
    assert [s(t) for t, _ in table] == [v for _, v in table]


def test_warmup_and_cooldown_formulas() -> None:
    s = warmup(multistep(1.0, 0.1, [2]), start_value=0.2, length=4)
    table = [(-1, 0.2), (0, 0.2), (1, 0.4), (2, 0.6), (4, 1.0), (5, 1.0), (6, 0.1), (50, 0.1)]
    np.testing.assert_allclose([s(t) for t, _ in table], [v for _, v in table], rtol=0, atol=1e-15)
    eased = warmup(constant(1.0), 0.0, 4, easing=sineio())
    np.testing.assert_allclose(
        [eased(t) for t in range(5)],
        [0.0, 0.5 - 0.5**0.5 / 2, 0.5, 0.5 + 0.5**0.5 / 2, 1.0],
        atol=1e-15,
    )
    c = cooldown(linear(1.0, 0.0, 100), final_value=0.0, start=20, length=4)
    table = [(0, 1.0), (20, 0.8), (21, 0.6), (23, 0.2), (24, 0.0), (99, 0.0)]
    np.testing.assert_allclose([c(t) for t, _ in table], [v for _, v in table], rtol=0, atol=1e-15)


def test_from_list_per_group_and_holds_the_last_value() -> None:
    groups = from_list(np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]))
    assert isinstance(groups, list) and [g(2) for g in groups] == [3.0, 6.0]
    assert [g(99) for g in groups] == [3.0, 6.0] and [g(-1) for g in groups] == [1.0, 4.0]
    ragged = from_list([[1.0], [2.0, 3.0]])
    assert isinstance(ragged, list) and [g(5) for g in ragged] == [1.0, 3.0]


def test_inverse_sqrt_and_range_test_closed_forms() -> None:
    s = inverse_sqrt(0.01, 4)
    for t in range(20):
        assert s(t) == pytest.approx(0.01 * min((t + 1) / 4, math.sqrt(4 / (t + 1))), abs=1e-15)
    r = range_test(1e-6, 1.0, 6)
    for t in range(10):
        assert r(t) == pytest.approx(10.0 ** (-6 + min(t, 6)), rel=1e-12)


def test_cyclic_schedules_reject_metric_driven_shapes() -> None:
    plateau = reduce_on_plateau(start=0.1)
    with pytest.raises(ScheduleError, match=r"loop: cannot repeat a metric-driven schedule"):
        loop(plateau * 2, 5)
    with pytest.raises(ScheduleError, match=r"cyclical: cannot repeat a metric-driven"):
        cyclical(lambda n: plateau, 5)


S: Any = schedules  # untyped access, to pass what the annotations forbid
BAD_ARGUMENTS: list[tuple[Callable[[], Any], str]] = [
    (lambda: S.constant("0.1"), r"constant: value must be a finite number, got '0.1'"),
    (lambda: S.linear(0, 1, 0), r"linear: length must be > 0, got 0"),
    (lambda: S.linear(0, math.inf, 5), r"linear: end must be a finite number, got inf"),
    (lambda: S.linear(0, 1, 5, unit="steps"), r"unit must be one of 'step', 'epoch'.*got 'steps'"),
    (lambda: S.exponential(1, 0), r"exponential: gamma must be > 0, got 0"),
    (lambda: S.exponential(1, 0.5, period=-1), r"exponential: period must be > 0, got -1"),
    (lambda: S.exponential(1, 0.5, staircase=1), r"staircase must be True or False, got 1"),
    (lambda: S.step_decay(1, 0.1, 0), r"step_decay: every must be > 0, got 0"),
    (lambda: S.step_decay(1, -0.1, 3), r"step_decay: factor must be > 0, got -0.1"),
    (lambda: S.step_decay(0.1, 0.5, 3, min_value=0.2), r"min_value must be <= start, got min_va"),
    (lambda: S.multistep(1, 0.1, [5, 3]), r"strictly increasing list, got \[5, 3\]; sort them"),
    (lambda: S.multistep(1, 0.1, []), r"multistep: milestones must be a non-empty"),
    (lambda: S.multistep(1, 0.1, 30), r"milestones must be a list of times, got 30"),
    (lambda: S.multistep(1, 0.1, [0, 3]), r"each milestone must be > 0, got 0"),
    (lambda: S.poly(1, 0, 2), r"poly: length must be > 0, got 0"),
    (lambda: S.poly(1, 10, 0), r"poly: power must be > 0, got 0"),
    (lambda: S.cosine(1, 0, -5), r"cosine: length must be > 0, got -5"),
    (lambda: S.range_test(0, 1, 10), r"range_test: start must be > 0, got 0"),
    (lambda: S.range_test(1e-7, -1, 10), r"range_test: end must be > 0, got -1"),
    (lambda: S.from_list([]), r"from_list: values is empty; give at least one value"),
    (lambda: S.from_list([[1.0], []]), r"from_list: values\[1\] is empty"),
    (lambda: S.from_list([1.0, None]), r"each value of values must be a finite number, got None"),
    (
        lambda: S.from_list(np.zeros((2, 2, 2))),
        r"1-D .* or 2-D .* got an array of shape \(2, 2, 2\)",
    ),
    (lambda: S.from_list(0.1), r"from_list: values must be a list of numbers, got 0.1"),
    (lambda: S.inverse_sqrt(1, 0), r"inverse_sqrt: warmup must be > 0, got 0"),
    (
        lambda: S.warmup_stable_decay(1, -1, 2, 3),
        r"warmup_stable_decay: warmup must be >= 0, got -1",
    ),
    (lambda: S.warmup_stable_decay(1, 1, 2, 3, decay_shape="exp"), r"decay_shape must be one of"),
    (lambda: S.triangular(0, 1, 10, 0), r"triangular: inc_fraction must be > 0, got 0"),
    (lambda: S.triangular(0, 1, 10, 1.5), r"must be in \(0, 1\], got 1.5"),
    (lambda: S.triangular(0, 1, 0), r"triangular: cycle_length must be > 0, got 0"),
    (lambda: S.cyclical(S.triangular, 0), r"cyclical: cycle_length must be > 0, got 0"),
    (lambda: S.cyclical(lambda n: n, 5), r"make_cycle\(5.0\) must return a schedule, got float"),
    (lambda: S.cyclical(0.5, 5), r"make_cycle must be a function from a cycle length"),
    (lambda: S.cyclical(lambda n: cosine(1, 0, n), 5, 0.5), r"length_decay must be >= 1, got 0.5"),
    (lambda: S.cyclical(lambda n: cosine(1, 0, n), 5, 1, 0), r"magnitude_decay must be > 0, got 0"),
    (lambda: S.sgdr(1, 0, 10, 0.5), r"cyclical: length_decay must be >= 1, got 0.5"),
    (lambda: S.sgdr("1", 0, 10), r"sgdr: start must be a finite number, got '1'"),
    (lambda: S.loop(lambda t: t, 5), r"loop: schedule must be a schedule, got <function"),
    (lambda: S.loop(constant(1), 0), r"loop: period must be > 0, got 0"),
    (lambda: S.warmup(0.1, 0.0, 5), r"warmup: expected a schedule, got float: 0.1"),
    (lambda: S.warmup(constant(1), 0.0, 0), r"warmup: length must be > 0, got 0"),
    (lambda: S.warmup(constant(1), 0.0, 5, easing="sine"), r"easing must be an easing from"),
    (lambda: S.cooldown(constant(1), 0.0, -1, 5), r"cooldown: start must be >= 0, got -1"),
    (lambda: S.cooldown(constant(1), 0.0, 1, 0), r"cooldown: length must be > 0, got 0"),
    (lambda: S.join([], []), r"join: schedules must be a non-empty list, got \[\]"),
    (lambda: S.join([constant(1), constant(2)], []), r"2 schedules need 1 boundaries .* got 0"),
    (lambda: S.join([constant(1), constant(2), 3], [5, 5]), r"boundaries must increase strictly"),
    (
        lambda: S.join([constant(1), "x"], [5]),
        r"join: each piece must be a schedule or a number, got 'x'",
    ),
    (lambda: S.join([constant(1), constant(2)], [0]), r"join: each boundary must be > 0, got 0"),
    (lambda: S.onecycle(0, 1.0), r"onecycle: n must be > 0, got 0"),
    (lambda: S.onecycle(10, 1.0, pct_start=1.0), r"onecycle: pct_start must be in \(0, 1\)"),
    (lambda: S.onecycle(10, 1.0, div=0), r"onecycle: div must be > 0, got 0"),
    (lambda: S.onecycle_two_phase(10.0, 1.0), r"total_steps must be an integer >= 2.*got 10.0"),
    (lambda: S.onecycle_two_phase(10, 1.0, 0.1), r"leaves a phase without steps.* must be > 1"),
    (lambda: S.onecycle_two_phase(10, 1.0, anneal="cosine"), r"anneal must be 'cos' or 'linear'"),
    (lambda: S.onecycle_three_phase(10, 1.0, 0.55), r"ends at steps \[4.5, 9.0, 9.0\]"),
    (lambda: S.onecycle_two_phase_momentum(10, base_momentum=None), r"base_momentum must be a"),
    (lambda: S.onecycle_three_phase_momentum(1), r"total_steps must be an integer >= 2"),
]


@pytest.mark.parametrize(("build", "match"), BAD_ARGUMENTS)
def test_bad_arguments_raise_schedule_error(build: Callable[[], Any], match: str) -> None:
    with pytest.raises(ScheduleError, match=match):
        build()
