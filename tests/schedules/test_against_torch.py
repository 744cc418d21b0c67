"""The catalogue against ``torch.optim.lr_scheduler``, computed here, step by step.

A torch scheduler is stepped after each (empty) optimizer step; the value the optimizer holds
before step ``t`` (after ``t`` scheduler steps) must equal the fluxtrain spelling at ``t``, on
both the scalar and the vectorized path.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import numpy as np
import pytest
import torch
from torch.optim import lr_scheduler as torch_lr

from fluxtrain.schedules import (
    cosine,
    cyclical,
    exponential,
    join,
    linear,
    loop,
    multistep,
    onecycle_three_phase,
    onecycle_three_phase_momentum,
    onecycle_two_phase,
    onecycle_two_phase_momentum,
    poly,
    sgdr,
    step_decay,
    triangular,
    warmup,
)
from fluxtrain.schedules.base import BaseSchedule, FunctionSchedule

TOLERANCE = 1e-12
LR = 0.1


def optimizer(kind: str = "sgd") -> torch.optim.Optimizer:
    param = torch.nn.Parameter(torch.zeros(1))
    if kind == "adam":
        return torch.optim.Adam([param], lr=LR)
    return torch.optim.SGD([param], lr=LR, momentum=0.9)


def momentum_of(group: dict[str, Any]) -> float:
    return float(group["betas"][0] if "betas" in group else group["momentum"])


def torch_table(
    make: Callable[[torch.optim.Optimizer], Any], steps: int, kind: str = "sgd"
) -> tuple[np.ndarray, np.ndarray]:
    """The learning rates and momenta the optimizer holds before steps 0 .. steps - 1."""
    opt = optimizer(kind)
    scheduler = make(opt)
    lrs, momenta = [], []
    for t in range(steps):
        group = opt.param_groups[0]
        lrs.append(float(group["lr"]))
        momenta.append(momentum_of(group))
        if t < steps - 1:
            opt.step()
            scheduler.step()
    return np.array(lrs), np.array(momenta)


def assert_table(schedule: BaseSchedule, expected: np.ndarray) -> None:
    t = np.arange(len(expected), dtype=float)
    scalar = np.array([schedule(float(x)) for x in t])
    np.testing.assert_allclose(scalar, expected, rtol=0, atol=TOLERANCE)
    np.testing.assert_allclose(schedule(t), expected, rtol=0, atol=TOLERANCE)


@pytest.mark.parametrize(("every", "factor"), [(3, 0.5), (1, 0.9), (7, 0.1)])
def test_step_decay_is_steplr(every: int, factor: float) -> None:
    lrs, _ = torch_table(lambda o: torch_lr.StepLR(o, every, factor), 30)
    assert_table(step_decay(LR, factor, every), lrs)


@pytest.mark.parametrize("milestones", [[2, 5, 9], [1], [10, 11, 12]])
def test_multistep_is_multisteplr(milestones: list[int]) -> None:
    lrs, _ = torch_table(lambda o: torch_lr.MultiStepLR(o, milestones, 0.3), 20)
    assert_table(multistep(LR, 0.3, milestones), lrs)


def test_exponential_is_exponentiallr() -> None:
    lrs, _ = torch_table(lambda o: torch_lr.ExponentialLR(o, 0.9), 40)
    assert_table(exponential(LR, 0.9), lrs)


@pytest.mark.parametrize("power", [0.5, 1.0, 2.0])
def test_poly_is_polynomiallr(power: float) -> None:
    lrs, _ = torch_table(lambda o: torch_lr.PolynomialLR(o, total_iters=10, power=power), 16)
    assert_table(poly(LR, 10, power), lrs)


@pytest.mark.parametrize(("start_factor", "end_factor"), [(0.25, 1.0), (1.0, 0.1), (0.5, 0.0)])
def test_linear_is_linearlr(start_factor: float, end_factor: float) -> None:
    lrs, _ = torch_table(
        lambda o: torch_lr.LinearLR(o, start_factor, end_factor, total_iters=8), 14
    )
    assert_table(linear(LR * start_factor, LR * end_factor, 8), lrs)


@pytest.mark.parametrize("eta_min", [0.0, 0.01])
def test_cosine_is_cosineannealinglr_within_its_period(eta_min: float) -> None:
    lrs, _ = torch_table(lambda o: torch_lr.CosineAnnealingLR(o, T_max=10, eta_min=eta_min), 11)
    assert_table(cosine(LR, eta_min, 10), lrs)


def test_cosine_there_and_back_is_cosineannealinglr_past_its_period() -> None:
    lrs, _ = torch_table(lambda o: torch_lr.CosineAnnealingLR(o, T_max=8, eta_min=0.01), 40)
    there_and_back = join([cosine(LR, 0.01, 8), cosine(0.01, LR, 8)], [8])
    assert_table(loop(there_and_back, 16), lrs)


def test_join_of_numbers_is_constantlr() -> None:
    lrs, _ = torch_table(lambda o: torch_lr.ConstantLR(o, factor=0.5, total_iters=4), 10)
    assert_table(join([LR * 0.5, LR], [4]), lrs)


def test_scaled_function_is_lambdalr() -> None:
    def f(t: float) -> float:
        return 1.0 / (1.0 + 0.3 * t)

    lrs, _ = torch_table(lambda o: torch_lr.LambdaLR(o, f), 12)
    assert_table(LR * FunctionSchedule(f), lrs)


def test_join_and_warmup_are_sequentiallr() -> None:
    def make(o: torch.optim.Optimizer) -> torch_lr.SequentialLR:
        first = torch_lr.LinearLR(o, 0.1, 1.0, total_iters=5)
        second = torch_lr.CosineAnnealingLR(o, T_max=20, eta_min=0.001)
        return torch_lr.SequentialLR(o, [first, second], milestones=[5])

    lrs, _ = torch_table(make, 26)
    assert_table(join([linear(LR * 0.1, LR, 5), cosine(LR, 0.001, 20)], [5]), lrs)
    assert_table(warmup(cosine(LR, 0.001, 20), LR * 0.1, 5), lrs)


@pytest.mark.parametrize(("t_0", "t_mult", "steps"), [(5, 1, 23), (3, 2, 46), (4, 3, 60)])
def test_sgdr_is_cosineannealingwarmrestarts(t_0: int, t_mult: int, steps: int) -> None:
    lrs, _ = torch_table(
        lambda o: torch_lr.CosineAnnealingWarmRestarts(o, T_0=t_0, T_mult=t_mult, eta_min=1e-3),
        steps,
    )
    assert_table(sgdr(LR, 1e-3, t_0, t_mult), lrs)


BASE, PEAK, UP, DOWN = 0.01, 0.1, 4, 6
LOW_MOMENTUM, HIGH_MOMENTUM = 0.8, 0.9
RISE = UP / (UP + DOWN)
CyclicMode = Literal["triangular", "triangular2", "exp_range"]


def cyclic_lr(
    mode: CyclicMode, kind: str = "sgd", gamma: float = 1.0
) -> tuple[np.ndarray, np.ndarray]:
    return torch_table(
        lambda o: torch_lr.CyclicLR(
            o, BASE, PEAK, UP, DOWN, mode=mode, gamma=gamma, base_momentum=LOW_MOMENTUM,
            max_momentum=HIGH_MOMENTUM,
        ),
        47,
        kind,
    )  # fmt: skip


@pytest.mark.parametrize("kind", ["sgd", "adam"])
def test_triangular_is_cycliclr_triangular(kind: str) -> None:
    lrs, momenta = cyclic_lr("triangular", kind)
    assert_table(triangular(BASE, PEAK, UP + DOWN, RISE), lrs)
    assert_table(triangular(HIGH_MOMENTUM, LOW_MOMENTUM, UP + DOWN, RISE), momenta)


def test_cyclical_above_a_base_is_cycliclr_triangular2() -> None:
    """triangular2 halves the swing above base_lr each cycle, not the whole value."""
    lrs, momenta = cyclic_lr("triangular2")
    swing = cyclical(
        lambda n: triangular(0.0, PEAK - BASE, n, RISE), UP + DOWN, magnitude_decay=0.5
    )
    dip = cyclical(
        lambda n: triangular(0.0, LOW_MOMENTUM - HIGH_MOMENTUM, n, RISE),
        UP + DOWN,
        magnitude_decay=0.5,
    )
    assert_table(BASE + swing, lrs)
    assert_table(HIGH_MOMENTUM + dip, momenta)


def test_triangular_times_exponential_is_cycliclr_exp_range() -> None:
    lrs, momenta = cyclic_lr("exp_range", gamma=0.97)
    decay = exponential(1.0, 0.97)
    assert_table(BASE + triangular(0.0, PEAK - BASE, UP + DOWN, RISE) * decay, lrs)
    dip = triangular(0.0, LOW_MOMENTUM - HIGH_MOMENTUM, UP + DOWN, RISE) * decay
    assert_table(HIGH_MOMENTUM + dip, momenta)


ONECYCLE_CASES = [
    # total_steps, pct_start, anneal, div, divfinal: phase ends at integers and between them
    (20, 0.3, "cos", 25.0, 1e4),
    (20, 0.3, "linear", 25.0, 1e4),
    (23, 0.25, "cos", 10.0, 100.0),
    (37, 0.41, "linear", 5.0, 1e3),
]


@pytest.mark.parametrize("kind", ["sgd", "adam"])
@pytest.mark.parametrize(("total", "pct", "anneal", "div", "divfinal"), ONECYCLE_CASES)
def test_onecycle_two_phase_is_onecyclelr(
    kind: str, total: int, pct: float, anneal: str, div: float, divfinal: float
) -> None:
    lrs, momenta = torch_table(
        lambda o: torch_lr.OneCycleLR(
            o, LR, total_steps=total, pct_start=pct, anneal_strategy=anneal,  # type: ignore[arg-type]
            div_factor=div, final_div_factor=divfinal, base_momentum=0.8, max_momentum=0.92,
        ),
        total,
        kind,
    )  # fmt: skip
    assert_table(onecycle_two_phase(total, LR, pct, div, divfinal, anneal), lrs)
    assert_table(onecycle_two_phase_momentum(total, pct, 0.8, 0.92, anneal), momenta)


@pytest.mark.parametrize("kind", ["sgd", "adam"])
@pytest.mark.parametrize(("total", "pct", "anneal", "div", "divfinal"), ONECYCLE_CASES)
def test_onecycle_three_phase_is_onecyclelr_three_phase(
    kind: str, total: int, pct: float, anneal: str, div: float, divfinal: float
) -> None:
    pct = min(pct, 0.4)
    lrs, momenta = torch_table(
        lambda o: torch_lr.OneCycleLR(
            o, LR, total_steps=total, pct_start=pct, anneal_strategy=anneal,  # type: ignore[arg-type]
            div_factor=div, final_div_factor=divfinal, three_phase=True,
        ),
        total,
        kind,
    )  # fmt: skip
    assert_table(onecycle_three_phase(total, LR, pct, div, divfinal, anneal), lrs)
    assert_table(onecycle_three_phase_momentum(total, pct, 0.85, 0.95, anneal), momenta)


def test_onecycle_two_phase_holds_after_the_end() -> None:
    s = onecycle_two_phase(20, LR)
    assert s(19) == s(20) == s(1000) == pytest.approx(LR / 25 / 1e4, abs=1e-15)
