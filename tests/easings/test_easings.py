"""Easings against closed forms at x = 0, 1/4, 1/2, 3/4, 1, and their argument checks."""

from __future__ import annotations

import math

import numpy as np
import pytest

from fluxtrain.easings import (
    CurveEasing,
    Easing,
    expin,
    expio,
    expout,
    funcease,
    linear,
    mixed,
    multiplied,
    noease,
    polyin,
    polyio,
    polyout,
    saccadic,
    sineio,
    stepease,
)
from fluxtrain.exceptions import ScheduleError

XS = (0.0, 0.25, 0.5, 0.75, 1.0)
PI = math.pi


def table(f):
    return [f(x) for x in XS]


def exp_in(e, x):
    return (e**x - 1) / (e - 1)


# (easing, expected values at XS), every expectation from a closed form written here.
CASES = [
    (linear(), XS),
    (sineio(), table(lambda x: (1 - math.cos(PI * x)) / 2)),
    *[(polyin(p), table(lambda x, p=p: x**p)) for p in (0.5, 2, 3)],
    *[(polyout(p), table(lambda x, p=p: 1 - (1 - x) ** p)) for p in (0.5, 2, 3)],
    *[
        (
            polyio(p),
            table(lambda x, p=p: (2 * x) ** p / 2 if x <= 0.5 else 1 - (2 - 2 * x) ** p / 2),
        )
        for p in (0.5, 2, 3)
    ],
    *[(expin(e), table(lambda x, e=e: exp_in(e, x))) for e in (0.2, 2, 8)],
    *[(expout(e), table(lambda x, e=e: 1 - exp_in(e, 1 - x))) for e in (0.2, 2, 8)],
    *[
        (
            expio(e),
            table(
                lambda x, e=e: exp_in(e, 2 * x) / 2 if x <= 0.5 else 1 - exp_in(e, 2 - 2 * x) / 2
            ),
        )
        for e in (0.2, 2, 8)
    ],
    *[
        (saccadic(p), table(lambda x, p=p: (1 + math.cos(PI * (1 - x) ** p)) / 2))
        for p in (1, 2, 4)
    ],
    (noease(), [0, 0, 0, 0, 1]),
    (stepease(0.25), [0, 1, 1, 1, 1]),
    (stepease(0.5), [0, 0, 1, 1, 1]),
    (stepease(0.6), [0, 0, 0, 1, 1]),
    (stepease(1), [0, 0, 0, 0, 1]),
    (funcease(lambda x: x**3), table(lambda x: x**3)),
    (mixed(linear(), polyin(2), 0.25), table(lambda x: 0.25 * x + 0.75 * x**2)),
    (mixed(linear(), polyin(2)), table(lambda x: 0.5 * x + 0.5 * x**2)),
    (multiplied(linear(), sineio()), table(lambda x: x * (1 - math.cos(PI * x)) / 2)),
    # repeats: the curve runs n times; a run ends at 1, the next starts again from 0
    (linear(n=2), [0, 0.5, 1, 0.5, 1]),
    (polyin(2, n=2), [0, 0.25, 1, 0.25, 1]),
    (noease(n=2), [0, 0, 1, 0, 1]),
    (linear(n=4), [0, 1, 1, 1, 1]),
    # yoyo: every second run goes backwards, so an even n ends at 0
    (linear(n=2, yoyo=True), [0, 0.5, 1, 0.5, 0]),
    (linear(n=3, yoyo=True), [0, 0.75, 0.5, 0.25, 1]),
    (sineio(n=2, yoyo=True), [0, 0.5, 1, 0.5, 0]),
    (polyout(2, n=3, yoyo=True), [0, 1 - 0.25**2, 1 - 0.5**2, 1 - 0.75**2, 1]),
    # prewait / postwait: held fractions of each run
    (linear(prewait=0.5), [0, 0, 0, 0.5, 1]),
    (linear(postwait=0.5), [0, 0.5, 1, 1, 1]),
    (linear(prewait=0.2, postwait=0.3), [0, 0.1, 0.6, 1, 1]),
    (polyin(2, prewait=0.5), [0, 0, 0, 0.25, 1]),
    (sineio(postwait=0.5), [0, 0.5, 1, 1, 1]),
    (linear(n=2, prewait=0.25, postwait=0.25), [0, 0.5, 1, 0.5, 1]),
    (linear(n=2, yoyo=True, prewait=0.2, postwait=0.2), [0, 0.5, 1, 0.5, 0]),
    # a composite applies its parts' own options to its (repeated) fraction
    (mixed(linear(n=2), linear(), 0.5), [0, 0.375, 0.75, 0.625, 1]),
    (multiplied(linear(n=2, yoyo=True), linear(), n=2), [0, 0.5, 0, 0.5, 0]),
]


@pytest.mark.parametrize(("easing", "expected"), CASES, ids=[repr(e) for e, _ in CASES])
def test_easing_matches_closed_form(easing, expected):
    assert table(easing.scalar) == pytest.approx(expected, abs=1e-12, rel=0)
    assert easing.array(np.array(XS)) == pytest.approx(expected, abs=1e-12, rel=0)


@pytest.mark.parametrize(("easing", "expected"), CASES, ids=[repr(e) for e, _ in CASES])
def test_array_equals_scalar(easing, expected):
    x = np.concatenate([np.linspace(-0.5, 1.5, 2001), XS, [1 / 3, 2 / 3, 0.1, 0.9]])
    scalar = np.array([easing.scalar(v) for v in x.tolist()])
    np.testing.assert_allclose(easing.array(x), scalar, rtol=0, atol=1e-15)


@pytest.mark.parametrize("easing", [linear(), sineio(), polyin(2, n=3), noease(), stepease(0.5)])
def test_fraction_is_clamped(easing):
    assert easing(-2.0) == easing(0.0) == 0.0
    assert easing(3.0) == easing(1.0) == 1.0
    assert easing(np.array([-2.0, 3.0])).tolist() == [0.0, 1.0]


def test_nan_propagates():
    assert math.isnan(sineio()(math.nan))
    assert math.isnan(linear(n=2, yoyo=True)(math.nan))
    assert np.isnan(linear(n=2, yoyo=True)(np.array([math.nan]))).all()


def test_call_keeps_shape_and_type():
    assert isinstance(sineio()(0.5), float)
    assert sineio()(np.zeros((2, 3))).shape == (2, 3)
    assert sineio()(np.float64(1.0)) == 1.0


def test_easings_satisfy_the_protocol():
    assert all(isinstance(easing, Easing) for easing, _ in CASES)


def test_custom_curve_easing():
    cube = CurveEasing("cube", (), lambda u, xp: u**3, n=2)
    assert table(cube) == pytest.approx([0, 0.125, 1, 0.125, 1], abs=1e-12, rel=0)


def test_repr_shows_the_call():
    assert repr(sineio()) == "sineio()"
    assert repr(polyin(2, n=2, yoyo=True)) == "polyin(2.0, n=2, yoyo=True)"
    assert repr(linear(prewait=0.1, postwait=0.2)) == "linear(prewait=0.1, postwait=0.2)"
    assert repr(mixed(linear(), sineio(), 0.25)) == "mixed(linear(), sineio(), 0.25)"
    assert repr(stepease(0.5)) == "stepease(0.5)"


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: polyin(0), r"polyin: p must be a finite real number > 0, got 0\."),
        (lambda: polyout(-1), r"polyout: p must be a finite real number > 0, got -1\."),
        (lambda: polyio(math.nan), r"polyio: p must be a finite real number > 0, got nan\."),
        (lambda: polyin("2"), r"polyin: p must be a finite real number > 0, got '2'\."),
        (lambda: polyin(True), r"polyin: p must be a finite real number > 0, got True\."),
        (lambda: saccadic(0.0), r"saccadic: p must be a finite real number > 0, got 0\.0\."),
        (lambda: expin(1), r"expin: e must be a finite real number > 0 and != 1, got 1\."),
        (lambda: expout(0), r"expout: e must be a finite real number > 0 and != 1, got 0\."),
        (lambda: expio(-2.0), r"expio: e must be a finite real number > 0 and != 1, got -2\.0\."),
        (lambda: expin(math.inf), r"expin: e must be .* got inf\."),
        (lambda: stepease(0), r"stepease: s \(where the step happens\) .* in \(0, 1\], got 0\."),
        (lambda: stepease(1.5), r"stepease: s .* in \(0, 1\], got 1\.5\."),
        (lambda: funcease(3), r"funcease: f must be a function of one float, got 3\."),
        (
            lambda: funcease(lambda x: x + 1),
            r"f\(0\) == 0 and f\(1\) == 1, got f\(0\) = 1\.0 and f\(1\) = 2\.0; rescale",
        ),
        (lambda: funcease(lambda x: 2 * x), r"got f\(0\) = 0\.0 and f\(1\) = 2\.0"),
        (lambda: mixed(linear(), 3), r"mixed: b must be an easing such as .*, got int: 3\."),
        (lambda: mixed(linear(), sineio(), 1.5), r"mixed: mix \(the weight of a\) .* got 1\.5\."),
        (lambda: multiplied("a", linear()), r"multiplied: a must be an easing .* got str: 'a'\."),
        (lambda: linear(n=0), r"linear: n \(the number of runs\) must be an integer >= 1, got 0\."),
        (lambda: sineio(n=1.5), r"sineio: n .* must be an integer >= 1, got 1\.5\."),
        (lambda: linear(n=True), r"linear: n .* got True\."),
        (lambda: linear(yoyo=1), r"linear: yoyo must be True or False, got 1\."),
        (lambda: linear(prewait=-0.1), r"linear: prewait \(a fraction of the run\) .* in \[0, 1\)"),
        (lambda: linear(postwait=1.0), r"linear: postwait .* in \[0, 1\), got 1\.0\."),
        (lambda: linear(prewait=math.nan), r"linear: prewait .* got nan\."),
        (
            lambda: polyin(2, prewait=0.6, postwait=0.4),
            r"polyin: prewait \+ postwait must be < 1 .* got prewait=0\.6 and postwait=0\.4",
        ),
    ],
)
def test_bad_arguments_raise(make, match):
    with pytest.raises(ScheduleError, match=match):
        make()


def test_unknown_option_is_a_type_error():
    with pytest.raises(TypeError, match="repeats"):
        linear(repeats=2)
