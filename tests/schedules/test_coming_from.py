"""The rows of docs/coming_from.md marked "exact" that test_against_torch.py and
test_against_peers.py do not already check.

HF transformers is installed with the dev extra, so its rows are checked against the library
itself (the tests skip without it). optax, Keras and fastai are not: their rows are checked
against each peer's published formula, written out below as a function of its own step count
(or, for Keras' ``ReduceLROnPlateau``, its update rule per epoch), with fastai's float32 phase
positions written out as fastai computes them.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch

from fluxtrain.easings import polyin
from fluxtrain.schedules import (
    constant,
    cosine,
    exponential,
    inverse_sqrt,
    join,
    linear,
    multistep,
    onecycle,
    poly,
    range_test,
    reduce_on_plateau,
    sgdr,
    step_decay,
    warmup,
    warmup_stable_decay,
)
from fluxtrain.schedules.base import BaseSchedule, FunctionSchedule
from fluxtrain.schedules.keyframes import Schedule

LR = 0.1
TOLERANCE = 1e-14  # values of order 0.1: two schedules that agree to rounding


def assert_exact(schedule: BaseSchedule, reference: Callable[[int], float], steps: int) -> None:
    t = np.arange(steps, dtype=float)
    expected = np.array([reference(int(x)) for x in t])
    np.testing.assert_allclose([schedule(float(x)) for x in t], expected, rtol=0, atol=TOLERANCE)
    np.testing.assert_allclose(schedule(t), expected, rtol=0, atol=TOLERANCE)


# -- HF transformers, the installed library ----------------------------------------------------


def hf_rates(make: Callable[[torch.optim.Optimizer], Any], steps: int) -> Callable[[int], float]:
    """The learning rate of each step under an HF scheduler stepped once per batch."""
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=LR)
    scheduler = make(optimizer)
    rates = []
    for _ in range(steps):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return lambda t: rates[t]


W, N = 5, 25


@pytest.fixture(scope="module")
def hf() -> Any:
    return pytest.importorskip("transformers.optimization")


def test_hf_constant_schedules(hf: Any) -> None:
    assert_exact(constant(LR), hf_rates(hf.get_constant_schedule, 30), 30)
    with_warmup = hf_rates(lambda o: hf.get_constant_schedule_with_warmup(o, W), 30)
    assert_exact(warmup(constant(LR), 0.0, W), with_warmup, 30)


def test_hf_linear_and_cosine_with_warmup(hf: Any) -> None:
    linear_hf = hf_rates(lambda o: hf.get_linear_schedule_with_warmup(o, W, N), 40)
    assert_exact(warmup(linear(LR, 0.0, N - W), 0.0, W), linear_hf, 40)
    cosine_hf = hf_rates(lambda o: hf.get_cosine_schedule_with_warmup(o, W, N), N + 1)
    assert_exact(warmup(cosine(LR, 0.0, N - W), 0.0, W), cosine_hf, N + 1)


@pytest.mark.parametrize("cycles", [1, 3, 4])
def test_hf_cosine_with_hard_restarts(hf: Any, cycles: int) -> None:
    make = hf.get_cosine_with_hard_restarts_schedule_with_warmup
    rates = hf_rates(lambda o: make(o, W, N + 4, num_cycles=cycles), 40)
    schedule = warmup(join([sgdr(LR, 0.0, (N + 4 - W) / cycles), 0.0], [N + 4 - W]), 0.0, W)
    assert_exact(schedule, rates, 40)


@pytest.mark.parametrize(("lr_end", "power"), [(1e-7, 1.0), (0.01, 2.0), (0.0, 0.5)])
def test_hf_polynomial_decay_with_warmup(hf: Any, lr_end: float, power: float) -> None:
    make = hf.get_polynomial_decay_schedule_with_warmup
    rates = hf_rates(lambda o: make(o, W, N, lr_end=lr_end, power=power), 40)
    assert_exact(warmup(poly(LR, N - W, power, lr_end), 0.0, W), rates, 40)


def test_hf_inverse_sqrt(hf: Any) -> None:
    rates = hf_rates(lambda o: hf.get_inverse_sqrt_schedule(o, W), 60)
    assert_exact(join([0.0, inverse_sqrt(LR, W)], [1]), rates, 60)


@pytest.mark.parametrize("shape", ["linear", "cosine", "1-sqrt"])
@pytest.mark.parametrize("ratio", [0.0, 0.1])
def test_hf_wsd_warms_up_from_min_lr_ratio(hf: Any, shape: str, ratio: float) -> None:
    stable, decay = 6, 10
    rates = hf_rates(
        lambda o: hf.get_wsd_schedule(
            o, W, decay, num_stable_steps=stable, decay_type=shape, min_lr_ratio=ratio
        ),
        30,
    )
    schedule = warmup_stable_decay(
        LR, W, stable, decay, LR * ratio, warmup_start=LR * ratio, decay_shape=shape
    )
    assert_exact(schedule, rates, 30)
    assert rates(0) == LR * ratio  # the warmup starts at min_lr_ratio * lr, not at 0


def test_hf_reduce_on_plateau_schedule(hf: Any) -> None:
    losses = [1.0, 0.9, 0.9, 0.91, 0.95, 0.89, 0.9, 0.9, 0.9, 0.9, 0.5, 0.6, 0.6, 0.6, 0.6]
    rules = {"factor": 0.5, "patience": 1, "cooldown": 2, "threshold": 0.01}
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=LR)
    scheduler = hf.get_reduce_on_plateau_schedule(optimizer, min_lr=0.02, **rules)
    schedule = reduce_on_plateau(start=LR, min_value=0.02, **rules)
    for epoch, loss in enumerate(losses):
        assert schedule(epoch) == optimizer.param_groups[0]["lr"], epoch
        optimizer.step()
        scheduler.step(loss)
        schedule.observe({"valid/Loss": loss}, epoch + 1)
    assert schedule(len(losses)) == 0.02


# -- optax: its published formulas --------------------------------------------------------------


def optax_polynomial(
    t: int, init: float, end: float, power: float, steps: int, begin: int
) -> float:
    count = min(max(t - begin, 0), steps)
    return (init - end) * (1 - count / steps) ** power + end


def optax_exponential(t: int, init: float, steps: int, rate: float, staircase: bool) -> float:
    p = t / steps
    return init if t <= 0 else init * rate ** (math.floor(p) if staircase else p)


def optax_cosine_decay(t: int, init: float, steps: int, alpha: float) -> float:
    count = min(t, steps)
    return init * ((1 - alpha) * 0.5 * (1 + math.cos(math.pi * count / steps)) + alpha)


def optax_piecewise_constant(t: int, init: float, scales: dict[int, float]) -> float:
    v = init
    for threshold, scale in sorted(scales.items()):
        indicator = max(0.0, float(np.sign(threshold - t)))
        v = v * indicator + (1 - indicator) * scale * v
    return v


def optax_join(t: int, schedules: list[Callable[[int], float]], boundaries: list[int]) -> float:
    output = schedules[0](t)
    for boundary, schedule in zip(boundaries, schedules[1:]):
        output = output if t < boundary else schedule(t - boundary)
    return output


def optax_cosine_onecycle(t: int, steps: int, peak: float, pct: float, div: float, final: float):
    bounds = [0, int(pct * steps), int(steps)]
    values = np.cumprod([peak / div, div, 1.0 / (div * final)])
    for i in range(2):
        if bounds[i] <= t < bounds[i + 1]:
            x = (t - bounds[i]) / max(bounds[i + 1] - bounds[i], 1)
            return values[i + 1] + (values[i] - values[i + 1]) / 2.0 * (math.cos(math.pi * x) + 1)
    return values[-1]


def test_optax_constant_linear_and_polynomial() -> None:
    assert_exact(constant(LR), lambda t: LR, 10)
    linear_ref = lambda t: optax_polynomial(t, LR, 0.01, 1, 20, 7)  # noqa: E731
    assert_exact(linear(LR, 0.01, 20).shift(7), linear_ref, 40)
    for power in (1.0, 2.0, 0.5):
        reference = lambda t, p=power: optax_polynomial(t, LR, 0.01, p, 20, 0)  # noqa: E731
        assert_exact(poly(LR, 20, power, 0.01), reference, 30)


@pytest.mark.parametrize("staircase", [False, True])
def test_optax_exponential_decay(staircase: bool) -> None:
    reference = lambda t: optax_exponential(t, LR, 4, 0.7, staircase)  # noqa: E731
    assert_exact(exponential(LR, 0.7, 4, staircase), reference, 30)


def test_optax_cosine_decay_and_piecewise_constant() -> None:
    assert_exact(cosine(LR, LR * 0.1, 20), lambda t: optax_cosine_decay(t, LR, 20, 0.1), 30)
    scales = {30: 0.1, 80: 0.1}
    reference = lambda t: optax_piecewise_constant(t, LR, scales)  # noqa: E731
    assert_exact(multistep(LR, 0.1, [30, 80]), reference, 100)
    unequal = {10: 0.5, 25: 0.2}
    reference = lambda t: optax_piecewise_constant(t, LR, unequal)  # noqa: E731
    assert_exact(join([LR, LR * 0.5, LR * 0.5 * 0.2], [10, 25]), reference, 40)


def test_optax_warmup_exponential_decay_and_join_schedules() -> None:
    init, peak, w = 0.01, LR, 5

    def warm(t: int) -> float:
        return optax_polynomial(t, init, peak, 1, w, 0)

    def decay(t: int) -> float:
        return optax_exponential(t, peak, 3, 0.8, False)

    reference = lambda t: optax_join(t, [warm, decay], [w])  # noqa: E731
    assert_exact(warmup(exponential(peak, 0.8, 3), init, w), reference, 40)
    s1, s2 = linear(0.0, LR, 8), cosine(LR, 0.001, 12)
    assert_exact(join([s1, s2], [8]), lambda t: optax_join(t, [s1, s2], [8]), 30)


@pytest.mark.parametrize(("steps", "pct"), [(40, 0.3), (37, 0.25)])
def test_optax_cosine_onecycle(steps: int, pct: float) -> None:
    div, final = 25.0, 1e4
    b = int(pct * steps)
    schedule = join([cosine(LR / div, LR, b), cosine(LR, LR / (div * final), steps - b)], [b])
    reference = lambda t: optax_cosine_onecycle(t, steps, LR, pct, div, final)  # noqa: E731
    assert_exact(schedule, reference, steps + 5)


# -- Keras: its published formulas --------------------------------------------------------------


@pytest.mark.parametrize("staircase", [False, True])
def test_keras_exponential_polynomial_cosine_and_inverse_time_decay(staircase: bool) -> None:
    def keras_exponential(t: int) -> float:
        p = t / 4
        return LR * 0.7 ** (math.floor(p) if staircase else p)

    def keras_polynomial(t: int, end: float = 0.001, power: float = 2.0) -> float:
        return (LR - end) * (1 - min(t, 20) / 20) ** power + end

    def keras_cosine(t: int, alpha: float = 0.1) -> float:
        return LR * ((1 - alpha) * 0.5 * (1 + math.cos(math.pi * min(t, 20) / 20)) + alpha)

    def keras_inverse_time(t: int, steps: int = 5, rate: float = 0.5) -> float:
        return LR / (1 + rate * t / steps)

    assert_exact(exponential(LR, 0.7, 4, staircase), keras_exponential, 30)
    assert_exact(poly(LR, 20, 2.0, 0.001), keras_polynomial, 30)
    assert_exact(cosine(LR, LR * 0.1, 20), keras_cosine, 30)
    inverse = FunctionSchedule(lambda t: LR / (1 + 0.5 * t / 5))
    assert_exact(inverse, keras_inverse_time, 30)


def keras_plateau(
    metrics: list[float], patience: int, cooldown: int, min_delta: float, mode: str, factor: float
) -> list[float]:
    """keras.callbacks.ReduceLROnPlateau's epoch-end rule: the rate before each epoch."""
    lr, min_lr, wait, counter = LR, 0.004, 0, 0
    better = (lambda a, b: a < b - min_delta) if mode == "min" else (lambda a, b: a > b + min_delta)
    best = math.inf if mode == "min" else -math.inf
    rates = []
    for current in metrics:
        rates.append(lr)
        if counter > 0:
            counter -= 1
            wait = 0
        if better(current, best):
            best, wait = current, 0
        elif counter == 0:
            wait += 1
            if wait >= patience and lr > min_lr:
                lr = max(lr * factor, min_lr)
                counter, wait = cooldown, 0
    return rates


METRICS = [1.0, 0.9, 0.9, 0.91, 0.95, 0.89, 0.9, 0.9, 0.9, 0.9, 0.5, 0.6, 0.6, 0.6, 0.6, 0.6]
METRICS += [0.6, 0.4, 0.41, 0.401, 0.3999, 0.42, 0.43, 0.44, 0.45, 0.46, 0.47, 0.48, 0.49, 0.5]
METRICS += [0.5] * 12


@pytest.mark.parametrize("patience", [0, 1, 2, 3])
@pytest.mark.parametrize("cooldown", [0, 1, 2, 3])
@pytest.mark.parametrize(("mode", "min_delta"), [("min", 0.0), ("min", 0.02), ("max", 0.005)])
def test_keras_reducelronplateau_is_cooldown_minus_one(
    patience: int, cooldown: int, mode: str, min_delta: float
) -> None:
    metrics = METRICS if mode == "min" else [1.0 - m for m in METRICS]
    expected = keras_plateau(metrics, patience, cooldown, min_delta, mode, 0.5)
    schedule = reduce_on_plateau(
        "val_loss",
        0.5,
        max(patience - 1, 0),
        mode,
        threshold=min_delta,
        threshold_mode="abs",
        cooldown=max(cooldown - 1, 0),
        min_value=0.004,
        start=LR,
        eps=0,
    )
    rates = []
    for epoch, metric in enumerate(metrics):
        rates.append(schedule(epoch))
        schedule.observe({"val_loss": metric}, epoch + 1)
    assert rates == expected
    assert len(set(expected)) >= 3  # it did reduce, more than once


# -- fastai: its published formulas, and its float32 phase positions -----------------------------


@pytest.mark.parametrize(("a", "b"), [(0.1, 0.001), (1e-4, 0.5)])
def test_fastai_sched_lin_cos_exp_poly(a: float, b: float) -> None:
    positions = np.linspace(0.0, 1.0, 41)

    def check(schedule: BaseSchedule, fastai: Callable[[float], float]) -> None:
        expected = [fastai(float(pos)) for pos in positions]
        scale = max(abs(a), abs(b))  # rounding of values near the smaller end is relative to it
        np.testing.assert_allclose(schedule(positions), expected, rtol=0, atol=1e-14 * scale)

    check(linear(a, b, 1, "fraction"), lambda pos: a + pos * (b - a))
    check(
        cosine(a, b, 1, "fraction"),
        lambda pos: a + (1 + math.cos(math.pi * (1 - pos))) * (b - a) / 2,
    )
    check(range_test(a, b, 1, "fraction"), lambda pos: a * (b / a) ** pos)
    for power in (2.0, 0.5, 3.0):
        check(
            Schedule([0, 1], [a, b], polyin(power), unit="fraction"),
            lambda pos, p=power: a + (b - a) * pos**p,
        )


def fastai_fit_one_cycle(n_epoch: int, n_iter: int, lr_max: float) -> list[float]:
    """fit_one_cycle's learning rate at each batch: combined_cos over fastai's positions.

    ``pct_train`` grows by ``1 / (n_iter * n_epoch)`` per batch and restarts at
    ``epoch / n_epoch``; ``combine_scheds`` keeps the phase boundaries in a float32 tensor, so
    the position within a phase is computed in float32.
    """
    pct, start, middle, end = 0.25, lr_max / 25, lr_max, lr_max / 1e5
    bounds = torch.cumsum(torch.tensor([0, pct, 1 - pct]), 0)
    rates = []
    for epoch in range(n_epoch):
        pos = epoch / n_epoch
        for _ in range(n_iter):
            idx = min(int((pos >= bounds).nonzero().max()), len(bounds) - 2)
            actual = ((pos - bounds[idx]) / (bounds[idx + 1] - bounds[idx])).item()
            a, b = (start, middle) if idx == 0 else (middle, end)
            rates.append(a + (1 + math.cos(math.pi * (1 - actual))) * (b - a) / 2)
            pos += 1.0 / (n_iter * n_epoch)
    return rates


@pytest.mark.parametrize(("n_epoch", "n_iter"), [(4, 10), (5, 23), (3, 97)])
def test_fit_one_cycle_is_exact_up_to_fastais_float32(n_epoch: int, n_iter: int) -> None:
    steps = n_epoch * n_iter
    fastai = np.array(fastai_fit_one_cycle(n_epoch, n_iter, LR))
    ours = onecycle(n_epoch, LR).stretch(n_iter)(np.arange(steps, dtype=float))
    # A float32 position is off by up to about 2 ** -24; the value moves by at most
    # pi / 2 * lr / 0.75 per unit of position (the second phase, 0.75 long).
    bound = 2**-24 * math.pi / 2 / 0.75 * LR
    assert 0 < np.abs(ours - fastai).max() < bound

    def float64_positions(t: int) -> float:  # the same formula with the positions in float64
        pos = t / steps
        a, b, x = (LR / 25, LR, pos / 0.25) if pos < 0.25 else (LR, LR / 1e5, (pos - 0.25) / 0.75)
        return a + (1 + math.cos(math.pi * (1 - x))) * (b - a) / 2

    assert_exact(onecycle(n_epoch, LR).stretch(n_iter), float64_positions, steps)


def test_the_range_test_sweep_is_fastais_lr_find() -> None:
    """fastai's LRFinder sets SchedExp(start, end) at position train_iter / num_it."""
    assert_exact(range_test(1e-7, 10, 100), lambda i: 1e-7 * (10 / 1e-7) ** (i / 100), 101)


def test_step_decay_with_a_floor_is_optax_exponential_decay_staircase_with_end_value() -> None:
    def optax_ref(t: int) -> float:
        return max(optax_exponential(t, LR, 4, 0.5, True), 0.004)

    assert_exact(step_decay(LR, 0.5, 4, min_value=0.004), optax_ref, 40)
