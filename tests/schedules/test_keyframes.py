"""Keyframe schedules: values at, between and outside keyframes, splines, composition, errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.interpolate import Akima1DInterpolator, CubicSpline, PchipInterpolator

from fluxtrain.easings import linear, noease, polyin, sineio, stepease
from fluxtrain.exceptions import ScheduleError
from fluxtrain.schedules.base import BaseSchedule, Constant, FunctionSchedule, TimeMapped
from fluxtrain.schedules.keyframes import Schedule

TS = [0.0, 3.0, 10.0]
VALUES = [0.01, 0.1, 0.001]


def sine_in_out(x):
    return (1 - math.cos(math.pi * x)) / 2


def dense_times():
    """Times inside, outside and exactly at the keyframes of TS."""
    return np.concatenate([np.linspace(-2.0, 12.0, 1401), TS, [1e-12, 10 - 1e-12, 1e300, -1e300]])


@pytest.mark.parametrize(
    ("t", "expected"),
    [
        (-5.0, 0.01),
        (0.0, 0.01),
        (0.75, 0.01 + 0.09 * 0.25),
        (1.5, 0.01 + 0.09 * 0.5),
        (3.0, 0.1),
        (4.4, 0.1 - 0.099 * 0.2),
        (6.5, 0.1 - 0.099 * 0.5),
        (10.0, 0.001),
        (1e9, 0.001),
    ],
)
def test_linear_keyframes(t, expected):
    schedule = Schedule(TS, VALUES)
    assert schedule(t) == pytest.approx(expected, abs=1e-15, rel=0)
    assert schedule(np.array([t]))[0] == pytest.approx(expected, abs=1e-15, rel=0)


@pytest.mark.parametrize(
    ("t", "expected"),
    [
        (0.75, 0.01 + 0.09 * sine_in_out(0.25)),
        (1.5, 0.01 + 0.09 * 0.5),
        (2.25, 0.01 + 0.09 * sine_in_out(0.75)),
        (4.75, 0.1 - 0.099 * 0.25**2),
        (6.5, 0.1 - 0.099 * 0.5**2),
        (8.25, 0.1 - 0.099 * 0.75**2),
    ],
)
def test_one_easing_per_segment(t, expected):
    schedule = Schedule(TS, VALUES, [sineio(), polyin(2)])
    assert schedule(t) == pytest.approx(expected, abs=1e-15, rel=0)


def test_one_easing_repeats_on_every_segment():
    schedule = Schedule(TS, VALUES, sineio())
    assert schedule(1.5) == pytest.approx(0.055, abs=1e-15, rel=0)
    assert schedule(6.5) == pytest.approx(0.0505, abs=1e-15, rel=0)


@pytest.mark.parametrize(
    "easing",
    [linear(), sineio(), polyin(3), noease(), linear(n=2, yoyo=True), "cubic", "pchip", "akima"],
    ids=repr,
)
def test_exactly_at_a_keyframe_its_value(easing):
    ts, values = [0.0, 0.3, 1.7, 2.0], [0.1, 0.7, 1 / 3, 0.2]
    schedule = Schedule(ts, values, easing)
    assert [schedule(t) for t in ts] == values
    assert schedule(np.array(ts)).tolist() == values
    assert schedule(-1.0) == schedule(-math.inf) == 0.1
    assert schedule(3.0) == schedule(math.inf) == 0.2


def test_noease_holds_the_start_value_until_the_end():
    schedule = Schedule([0, 1, 2], [1.0, 2.0, 3.0], noease())
    assert [schedule(t) for t in (0, 0.5, 0.999, 1, 1.5, 2, 3)] == [1, 1, 1, 2, 2, 3, 3]


def test_stepease_jumps_at_its_fraction():
    schedule = Schedule([0, 4], [1.0, 2.0], stepease(0.25), unit="step")
    assert [schedule(t) for t in (0, 0.5, 0.999, 1, 2, 4)] == [1, 1, 1, 2, 2, 2]


def test_even_yoyo_returns_to_the_start_value_before_the_keyframe():
    schedule = Schedule([0, 4], [1.0, 2.0], linear(n=2, yoyo=True))
    assert [schedule(t) for t in (0, 1, 2, 3, 3.5)] == [1, 1.5, 2, 1.5, 1.25]
    assert schedule(4) == schedule(5) == 2.0


@pytest.mark.parametrize(
    "easing",
    [
        linear(),
        sineio(),
        polyin(2),
        noease(),
        stepease(0.3),
        linear(n=3, yoyo=True, prewait=0.1),
        [sineio(), polyin(0.5)],
        "cubic",
        "pchip",
        "akima",
    ],
    ids=repr,
)
def test_vectorized_equals_scalar(easing):
    schedule = Schedule(TS, VALUES, easing)
    t = dense_times()
    scalar = np.array([schedule(v) for v in t.tolist()])
    np.testing.assert_allclose(schedule(t), scalar, rtol=0, atol=1e-15)


def test_nan_time_gives_nan():
    schedule = Schedule(TS, VALUES, noease())
    assert math.isnan(schedule(math.nan))
    assert np.isnan(schedule(np.array([math.nan, 1.0]))).tolist() == [True, False]


def test_call_keeps_shape_and_type():
    schedule = Schedule(TS, VALUES)
    assert isinstance(schedule(1), float)
    assert isinstance(schedule(np.float64(1.0)), float)
    assert schedule(np.zeros((2, 3))).shape == (2, 3)
    assert schedule(np.array(3.0)).shape == ()
    assert schedule(np.array([0, 3, 10])).tolist() == VALUES


@pytest.mark.parametrize(
    ("kind", "spline"),
    [("cubic", CubicSpline), ("pchip", PchipInterpolator), ("akima", Akima1DInterpolator)],
)
def test_splines_match_scipy_and_clamp(kind, spline):
    ts, values = [0.0, 1.0, 2.5, 4.0, 7.0], [0.0, 1.0, 0.2, 0.8, 0.5]
    schedule = Schedule(ts, values, kind)
    reference = spline(ts, values)
    t = np.linspace(0.0, 7.0, 701)
    np.testing.assert_allclose(schedule(t), reference(t), rtol=0, atol=1e-12)
    assert [schedule(v) for v in t.tolist()] == pytest.approx(reference(t), abs=1e-12, rel=0)
    assert [schedule(v) for v in ts] == values
    assert schedule(np.array([-3.0, 9.0])).tolist() == [0.0, 0.5]


def test_two_keyframe_cubic_spline_is_a_line():
    schedule = Schedule([0, 2], [1.0, 3.0], "cubic")
    assert [schedule(t) for t in (0.5, 1.0, 1.5)] == pytest.approx([1.5, 2.0, 2.5], abs=1e-15)


def test_unit_and_accessors():
    schedule = Schedule(np.array([0, 1]), np.array([2, 3]), unit="step")
    assert schedule.unit == "step"
    assert Schedule(TS, VALUES).unit == "epoch"
    assert schedule.ts == (0.0, 1.0) and schedule.values == (2.0, 3.0)
    assert schedule.children() == () and schedule.state_dict() == {}


def test_repr():
    assert (
        repr(Schedule([0, 1], [1, 2])) == "Schedule([0.0, 1.0], [1.0, 2.0], linear(), unit='epoch')"
    )
    assert (
        repr(Schedule([0, 1, 2], [1, 2, 0], (sineio(), polyin(2)), unit="step"))
        == "Schedule([0.0, 1.0, 2.0], [1.0, 2.0, 0.0], [sineio(), polyin(2.0)], unit='step')"
    )
    assert repr(Schedule([0, 1], [1, 2], "pchip").shift(2).stretch(3)) == (
        "Schedule([0.0, 1.0], [1.0, 2.0], 'pchip', unit='epoch').shift(2.0).stretch(3.0)"
    )


@pytest.mark.parametrize("t", [-1.0, 0.0, 2.5, 4.0, 7.25, 13.0, 30.0])
def test_shift_and_stretch(t):
    schedule = Schedule(TS, VALUES, sineio())
    assert schedule.shift(2.5)(t) == schedule(t - 2.5)
    assert schedule.stretch(2.0)(t) == schedule(t / 2.0)
    assert schedule.stretch(2.0).shift(1.0)(t) == schedule((t - 1.0) / 2.0)
    both = schedule.shift(1.0).stretch(2.0)
    assert both(t) == schedule(t / 2.0 - 1.0)
    assert both(np.array([t]))[0] == pytest.approx(both(t), abs=1e-15, rel=0)
    assert isinstance(schedule.shift(1.0), TimeMapped) and schedule.shift(1.0).unit == "epoch"


@pytest.mark.parametrize("t", [-1.0, 1.5, 3.0, 6.5, 11.0])
def test_arithmetic_is_pointwise(t):
    a = Schedule(TS, VALUES, sineio())
    b = Schedule([0, 10], [1.0, 2.0])
    assert (a + b)(t) == a(t) + b(t)
    assert (a * b)(t) == a(t) * b(t)
    assert (a - b)(t) == a(t) - b(t)
    assert (a * 2)(t) == (2 * a)(t) == a(t) * 2
    assert (a + 1)(t) == (1 + a)(t) == a(t) + 1
    assert (1 - a)(t) == 1 - a(t)
    assert (-a)(t) == -a(t)
    combined = (a + b) * 3 - 1
    assert combined(np.array([t]))[0] == pytest.approx(combined(t), abs=1e-15, rel=0)
    assert combined.unit == "epoch"


def test_mixing_units_is_an_error():
    epochs = Schedule(TS, VALUES)
    steps = Schedule(TS, VALUES, unit="step")
    with pytest.raises(ValueError, match="unit 'epoch' with one in unit 'step' by '\\+'"):
        epochs + steps
    with pytest.raises(ScheduleError, match="unit 'epoch' with one in unit 'step' by '\\*'"):
        epochs * steps
    with pytest.raises(ScheduleError, match="unit 'epoch' with one in unit 'step' by '-'"):
        epochs - FunctionSchedule(lambda t: t)
    with pytest.raises(ScheduleError, match="Cannot combine a schedule with nan by '\\+'"):
        epochs + math.nan


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (
            lambda: Schedule([0, 2, 1], [1, 2, 3]),
            r"strictly increasing, got ts\[1\] = 2\.0 and ts\[2\] = 1\.0; sort",
        ),
        (
            lambda: Schedule([0, 1, 1], [1, 2, 3]),
            r"strictly increasing, got ts\[1\] = 1\.0 and ts\[2\] = 1\.0",
        ),
        (lambda: Schedule([0, 1], [1, 2, 3]), r"same length .* got 2 times and 3 values\."),
        (
            lambda: Schedule([0, math.nan], [1, 2]),
            r"Schedule: ts\[1\] must be a finite real number, got nan\.",
        ),
        (
            lambda: Schedule([0, 1], [1, math.inf]),
            r"Schedule: values\[1\] must be a finite real number, got inf\.",
        ),
        (
            lambda: Schedule([0, 1], ["a", 2]),
            r"values\[0\] must be a finite real number, got 'a'\.",
        ),
        (
            lambda: Schedule([0], [1]),
            r"needs at least 2 keyframes, got 1; .* Constant\(value, unit='epoch'\)",
        ),
        (lambda: Schedule([], []), r"needs at least 2 keyframes, got 0"),
        (lambda: Schedule(3, [1]), r"ts must be a sequence of numbers, got int: 3\."),
        (lambda: Schedule("01", [1, 2]), r"ts must be a sequence of numbers, got str: '01'\."),
        (
            lambda: Schedule(TS, VALUES, [sineio()]),
            r"got 1 easings for 3 keyframes; give one easing per segment \(len\(ts\) - 1 = 2\)",
        ),
        (
            lambda: Schedule(TS, VALUES, [sineio(), 2]),
            r"easing\[1\] must be an easing .* got int: 2\.",
        ),
        (
            lambda: Schedule(TS, VALUES, 2),
            r"easing must be an easing such as sineio\(\), .* got int: 2\.",
        ),
        (lambda: Schedule(TS, VALUES, Constant(1.0)), r"easing must be an easing .* got Constant"),
        (
            lambda: Schedule(TS, VALUES, "quadratic"),
            r"spline easings are 'cubic', 'pchip', 'akima', got 'quadratic'",
        ),
        (
            lambda: Schedule(TS, VALUES, unit="epochs"),
            r"Schedule: unit must be one of .* got 'epochs'\.",
        ),
        (
            lambda: Schedule(TS, VALUES).stretch(0),
            r"stretch: k must be a finite number > 0, got 0\.",
        ),
        (
            lambda: Schedule(TS, VALUES).stretch(True),
            r"stretch: k must be a finite number > 0, got True\.",
        ),
        (
            lambda: Schedule(TS, VALUES).shift(math.inf),
            r"shift: dt must be a finite number, got inf\.",
        ),
    ],
)
def test_bad_input_raises(make, match):
    with pytest.raises(ScheduleError, match=match):
        make()


def test_a_schedule_is_a_base_schedule():
    assert isinstance(Schedule(TS, VALUES), BaseSchedule)
