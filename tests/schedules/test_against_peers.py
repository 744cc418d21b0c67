"""The catalogue against closed forms of MXNet, Flax, HF transformers, optax, Keras and fastai.

Each reference below is the peer's published formula, written out here as a function of its own
step count. MXNet's ``lr_scheduler`` classes count updates from 1 (the value at update ``n`` is
what update ``n`` uses, so fluxtrain's ``t`` is MXNet's ``n = t + 1``); the tutorial schedules
of "Advanced Learning Rate Schedules" and the other peers take the iteration ``t`` itself.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import partial

import numpy as np
import pytest

from fluxtrain.schedules import (
    constant,
    cooldown,
    cosine,
    cyclical,
    inverse_sqrt,
    join,
    linear,
    loop,
    multistep,
    onecycle,
    poly,
    sgdr,
    step_decay,
    triangular,
    warmup,
    warmup_stable_decay,
)
from fluxtrain.schedules.base import BaseSchedule

TOLERANCE = 1e-12
LR = 0.1


def assert_matches(schedule: BaseSchedule, reference: Callable[[int], float], steps: int) -> None:
    t = np.arange(steps, dtype=float)
    expected = np.array([reference(int(x)) for x in t])
    np.testing.assert_allclose([schedule(float(x)) for x in t], expected, rtol=0, atol=TOLERANCE)
    np.testing.assert_allclose(schedule(t), expected, rtol=0, atol=TOLERANCE)


# MXNet lr_scheduler: functions of the update count n >= 1.


def mx_factor(n: int, base: float, step: int, factor: float, stop: float) -> float:
    """FactorScheduler: one drop each time n passes a multiple of step, floored at stop."""
    drops = max(0, math.ceil(n / step) - 1)
    return max(base * factor**drops, stop)


def mx_multifactor(n: int, base: float, steps: list[int], factor: float) -> float:
    """MultiFactorScheduler: one drop for each step strictly below n."""
    return base * factor ** sum(n > s for s in steps)


def mx_poly(n: int, base: float, max_update: int, power: float, final: float) -> float:
    """PolyScheduler without warmup."""
    n = min(n, max_update)
    return final + (base - final) * (1 - n / max_update) ** power


def mx_cosine_warmup(
    n: int, base: float, max_update: int, final: float, w: int, w0: float
) -> float:
    """CosineScheduler with a linear warmup of w updates from w0: its horizon includes w."""
    if n < w:
        return w0 + (base - w0) * n / w
    n = min(n, max_update)
    return final + (base - final) * (1 + math.cos(math.pi * (n - w) / (max_update - w))) / 2


def test_step_decay_is_mxnet_factorscheduler_at_the_next_update() -> None:
    s = step_decay(1.0, 0.5, 3, min_value=0.02)
    assert_matches(s, lambda t: mx_factor(t + 1, 1.0, 3, 0.5, 0.02), 40)


def test_multistep_is_mxnet_multifactorscheduler_at_the_next_update() -> None:
    s = multistep(1.0, 0.5, [4, 9, 10])
    assert_matches(s, lambda t: mx_multifactor(t + 1, 1.0, [4, 9, 10], 0.5), 20)


@pytest.mark.parametrize("power", [1.0, 2.0, 0.7])
def test_poly_is_mxnet_polyscheduler(power: float) -> None:
    assert_matches(poly(1.0, 12, power, 0.05), lambda n: mx_poly(n, 1.0, 12, power, 0.05), 20)
    shifted = poly(1.0, 12, power, 0.05).shift(-1)
    assert_matches(shifted, lambda t: mx_poly(t + 1, 1.0, 12, power, 0.05), 20)


def test_warmup_cosine_is_mxnet_cosinescheduler_with_warmup() -> None:
    s = warmup(cosine(1.0, 0.1, 20 - 4), start_value=0.2, length=4)
    assert_matches(s, lambda n: mx_cosine_warmup(n, 1.0, 20, 0.1, 4, 0.2), 30)


# MXNet tutorial "Advanced Learning Rate Schedules": functions of the iteration.


def tutorial_triangular(i: float, lo: float, hi: float, length: float, rise: float) -> float:
    if i <= length * rise:
        unit = i / (length * rise)
    elif i <= length:
        unit = (length - i) / (length * (1 - rise))
    else:
        unit = 0.0
    return lo + (hi - lo) * unit


def tutorial_cosine(i: float, lo: float, hi: float, length: float) -> float:
    if i > length:
        return lo
    return lo + (hi - lo) * (1 + math.cos(i * math.pi / length)) / 2


def tutorial_warmup(i: int, inner: Callable[[int], float], begin: float, length: int) -> float:
    if i <= length:
        return begin + i * (inner(0) - begin) / length
    return inner(i - length)


def tutorial_cooldown(
    i: int, inner: Callable[[int], float], final: float, start: int, length: int
) -> float:
    if i <= start:
        return inner(i)
    if i <= start + length:
        return inner(start) + (i - start) * (final - inner(start)) / length
    return final


def tutorial_cyclical(
    i: int, make: Callable[[int], Callable[[int], float]], length: int, grow: float, shrink: float
) -> float:
    """Walks the cycles: each one ``grow`` times longer (rounded up), ``shrink`` times smaller."""
    index, begin = 0, 0
    while begin + length <= i:
        begin, length, index = begin + length, math.ceil(length * grow), index + 1
    return make(length)(i - begin) * shrink**index


@pytest.mark.parametrize("rise", [0.5, 0.2, 0.75])
def test_triangular_then_hold_is_tutorial_triangularschedule(rise: float) -> None:
    s = join([triangular(1.0, 2.0, 20, rise), constant(1.0)], [20])
    assert_matches(s, lambda i: tutorial_triangular(i, 1.0, 2.0, 20, rise), 50)


def test_cosine_is_tutorial_cosineannealingschedule() -> None:
    assert_matches(cosine(2.0, 1.0, 25), lambda i: tutorial_cosine(i, 1.0, 2.0, 25), 40)


def test_warmup_is_tutorial_linearwarmup() -> None:
    inner = partial(tutorial_cosine, lo=0.1, hi=1.0, length=30)
    s = warmup(cosine(1.0, 0.1, 30), start_value=0.0, length=10)
    assert_matches(s, lambda i: tutorial_warmup(i, inner, 0.0, 10), 50)


def test_warmup_of_multifactorscheduler_shifts_its_milestones_by_one() -> None:
    """The tutorial feeds MultiFactorScheduler the iteration minus the warmup as its count."""
    inner = partial(mx_multifactor, base=1.0, steps=[25, 75, 90], factor=0.5)
    s = warmup(multistep(1.0, 0.5, [26, 76, 91]), start_value=0.0, length=25)
    assert_matches(s, lambda i: tutorial_warmup(i, inner, 0.0, 25), 150)


def test_cooldown_is_tutorial_linearcooldown() -> None:
    inner = partial(mx_multifactor, base=1.0, steps=[25, 75, 90], factor=0.5)
    s = cooldown(multistep(1.0, 0.5, [26, 76, 91]), 0.001, start=100, length=50)
    assert_matches(s, lambda i: tutorial_cooldown(i, inner, 0.001, 100, 50), 170)


def test_onecycle_of_triangle_and_cooldown_is_tutorial_onecycleschedule() -> None:
    tri = partial(tutorial_triangular, lo=0.1, hi=0.5, length=50, rise=0.5)
    s = cooldown(triangular(0.1, 0.5, 50), 0.001, start=50, length=75)
    assert_matches(s, lambda i: tutorial_cooldown(i, tri, 0.001, 50, 75), 150)


@pytest.mark.parametrize(("grow", "shrink"), [(1, 1), (2, 0.5), (3, 0.9)])
def test_cyclical_is_tutorial_cyclicalschedule(grow: float, shrink: float) -> None:
    def shape(n: int) -> Callable[[int], float]:
        return partial(tutorial_triangular, lo=0.5, hi=2.0, length=n, rise=0.5)

    s = cyclical(lambda n: triangular(0.5, 2.0, n), 10, grow, shrink)
    assert_matches(s, lambda i: tutorial_cyclical(i, shape, 10, grow, shrink), 200)


def test_sgdr_is_tutorial_cyclical_cosine() -> None:
    def shape(n: int) -> Callable[[int], float]:
        return partial(tutorial_cosine, lo=0.01, hi=2.0, length=n)

    s = sgdr(2.0, 0.01, 25, length_multiplier=2, magnitude_decay=0.5)
    assert_matches(s, lambda i: tutorial_cyclical(i, shape, 25, 2, 0.5), 400)


# Flax create_triangular_schedule: the rise and the fall take (L + 1) // 2 steps each.


def flax_triangular(step: int, lo: float, hi: float, steps_per_cycle: int) -> float:
    top = (steps_per_cycle + 1) // 2
    k = step % steps_per_cycle
    if k < top:
        return lo + k / top * (hi - lo)
    return hi - (k - top) / top * (hi - lo)


@pytest.mark.parametrize("length", [6, 7, 2, 1])
def test_loop_of_triangular_is_flax_create_triangular_schedule(length: int) -> None:
    top = (length + 1) // 2
    s = loop(triangular(0.001, 0.1, 2 * top), length)
    assert_matches(s, lambda i: flax_triangular(i, 0.001, 0.1, length), 40)


# HF transformers, optax, Keras, fastai.


def test_hf_linear_and_cosine_with_warmup() -> None:
    w, n = 5, 25

    def hf_linear(t: int) -> float:
        return LR * (t / w if t < w else max(0.0, (n - t) / (n - w)))

    def hf_cosine(t: int) -> float:
        return LR * (t / w if t < w else 0.5 * (1 + math.cos(math.pi * (t - w) / (n - w))))

    assert_matches(warmup(linear(LR, 0.0, n - w), 0.0, w), hf_linear, 40)
    assert_matches(warmup(cosine(LR, 0.0, n - w), 0.0, w), hf_cosine, n + 1)


def test_hf_inverse_sqrt_and_wsd() -> None:
    w = 4

    def hf_inverse_sqrt(t: int) -> float:  # timescale = num_warmup_steps
        return LR * (t / w if t < w else 1 / math.sqrt(t / w))

    assert_matches(join([0.0, inverse_sqrt(LR, w)], [1]), hf_inverse_sqrt, 40)
    assert_matches(inverse_sqrt(LR, w), lambda t: hf_inverse_sqrt(t + 1), 40)

    stable, decay, ratio = 6, 10, 0.1
    for shape in ("linear", "cosine", "1-sqrt"):

        def hf_wsd(t: int, shape: str = shape) -> float:
            if t < w:
                return LR * t / w
            if t < w + stable:
                return LR
            if t >= w + stable + decay:
                return LR * ratio
            x = (t - w - stable) / decay
            f = {"linear": 1 - x, "cosine": 0.5 * (1 + math.cos(math.pi * x)), "1-sqrt": 1 - x**0.5}
            return LR * (ratio + (1 - ratio) * f[shape])

        s = warmup_stable_decay(
            LR, w, stable, decay, LR * ratio, warmup_start=0.0, decay_shape=shape
        )
        assert_matches(s, hf_wsd, 30)


def test_optax_warmup_cosine_decay_and_keras_cosinedecay() -> None:
    init, peak, w, total, end = 0.01, 1.0, 5, 30, 0.05
    alpha, decay = 0.1, 20  # Keras: decay_steps after the warmup, alpha relative to the target

    def optax_ref(t: int) -> float:  # decay_steps = total, counted from step 0
        if t < w:
            return init + (peak - init) * t / w
        x = min(t - w, total - w) / (total - w)
        return end + (peak - end) * 0.5 * (1 + math.cos(math.pi * x))

    def keras_ref(t: int) -> float:
        if t < w:
            return init + (peak - init) * t / w
        x = min(t - w, decay) / decay
        return peak * ((1 - alpha) * 0.5 * (1 + math.cos(math.pi * x)) + alpha)

    assert_matches(warmup(cosine(peak, end, total - w), init, w), optax_ref, 40)
    assert_matches(warmup(cosine(peak, peak * alpha, decay), init, w), keras_ref, 40)


def test_keras_piecewiseconstantdecay_and_cosinedecayrestarts() -> None:
    def keras_piecewise(t: int) -> float:  # boundaries [3, 7]: the change comes after them
        return 1.0 if t <= 3 else 0.5 if t <= 7 else 0.1

    assert_matches(join([1.0, 0.5, 0.1], [4, 8]), keras_piecewise, 12)

    def keras_restarts(t: int, first: int = 4, t_mul: float = 2, m_mul: float = 0.5) -> float:
        alpha, fraction = 0.1, t / first
        i = math.floor(math.log(1 - fraction * (1 - t_mul)) / math.log(t_mul))
        fraction = (fraction - (1 - t_mul**i) / (1 - t_mul)) / t_mul**i
        return LR * ((1 - alpha) * m_mul**i * 0.5 * (1 + math.cos(math.pi * fraction)) + alpha)

    s = LR * 0.1 + sgdr(LR * 0.9, 0.0, 4, length_multiplier=2, magnitude_decay=0.5)
    assert_matches(s, keras_restarts, 60)


def test_onecycle_is_fastai_fit_one_cycle() -> None:
    total, lr, pct = 40, 0.1, 0.25

    def fastai(t: int) -> float:
        pos = t / total
        if pos < pct:
            start, end, p = lr / 25, lr, pos / pct
        else:
            start, end, p = lr, lr / 1e5, (pos - pct) / (1 - pct)
        return start + (1 + math.cos(math.pi * (1 - p))) * (end - start) / 2

    assert_matches(onecycle(total, lr, unit="step"), fastai, total)
    per_epoch = onecycle(4, lr).stretch(10)  # 4 epochs of 10 steps, evaluated in steps
    assert_matches(per_epoch, fastai, total)
