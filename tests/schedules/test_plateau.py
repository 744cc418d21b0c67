"""reduce_on_plateau against torch's ReduceLROnPlateau, behind a warmup, and across a restore."""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import pytest
import torch
from torch.optim.lr_scheduler import ReduceLROnPlateau

from fluxtrain.exceptions import ScheduleError
from fluxtrain.schedules import join, linear, reduce_on_plateau, warmup
from fluxtrain.schedules.base import BaseSchedule

LOSSES = [1.0, 0.9, 0.9, 0.91, 0.95, 0.89, 0.9, 0.9, 0.9, 0.9, 0.5, 0.6, 0.6, 0.6, 0.6, 0.6]
LOSSES += [0.6, 0.4, 0.41, 0.401, 0.3999, 0.42, 0.43, 0.44, 0.45, 0.46, 0.47, 0.48, 0.49, 0.5]

RULES: list[dict[str, Any]] = [
    {},
    {"patience": 2},
    {"patience": 1, "cooldown": 2, "factor": 0.5},
    {"patience": 0, "threshold": 0.05, "threshold_mode": "abs"},
    {"patience": 1, "mode": "max", "factor": 0.5},
    {"patience": 1, "mode": "max", "threshold_mode": "abs", "threshold": 0.01},
    {"patience": 0, "factor": 0.5, "min_value": 0.02},
    {"patience": 0, "factor": 0.9, "eps": 0.01},
]


def torch_rates(metrics: list[float], rules: dict[str, Any], lr: float = 0.1) -> np.ndarray:
    """The learning rate before each epoch, the scheduler stepped with each epoch's metric."""
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=lr)
    options = {("min_lr" if k == "min_value" else k): v for k, v in rules.items()}
    scheduler = ReduceLROnPlateau(opt, **options)
    rates = []
    for metric in metrics:
        rates.append(opt.param_groups[0]["lr"])
        opt.step()
        scheduler.step(metric)
    return np.array(rates)


def fluxtrain_rates(
    schedule: BaseSchedule, metrics: list[float], epoch_length: float = 1.0
) -> np.ndarray:
    """The value at each epoch's first step, observing each epoch's loss at its end."""
    rates = []
    for epoch, metric in enumerate(metrics):
        rates.append(schedule(epoch * epoch_length))
        schedule.observe({"valid/Loss": metric, "train/Loss": 1.0}, (epoch + 1) * epoch_length)
    return np.array(rates)


@pytest.mark.parametrize("rules", RULES)
def test_reduce_on_plateau_is_reducelronplateau(rules: dict[str, Any]) -> None:
    metrics = [1.0 - m for m in LOSSES] if rules.get("mode") == "max" else LOSSES
    expected = torch_rates(metrics, rules)
    actual = fluxtrain_rates(reduce_on_plateau(start=0.1, **rules), metrics)
    np.testing.assert_allclose(actual, expected, rtol=0, atol=1e-15)


@pytest.mark.parametrize("spelling", ["join", "warmup"])
def test_warmup_then_plateau_holds_then_drops_after_patience(spelling: str) -> None:
    plateau = reduce_on_plateau(factor=0.5, patience=2, start=0.1 if spelling == "warmup" else None)
    if spelling == "join":
        schedule = join([linear(0.01, 0.1, 5), plateau], [5])
    else:
        schedule = warmup(plateau, start_value=0.01, length=5)
    losses = [9.0, 8.0, 7.0, 6.0, 5.0, 1.0, 1.0, 1.0, 1.0, 0.5, 0.6, 0.6, 0.6]
    # The warmup ignores the losses; 5.0 (told at t=5) is the baseline, 1.0 the best after it,
    # and after 3 epochs without improvement (patience 2) the value halves.
    expected = [0.01, 0.028, 0.046, 0.064, 0.082, 0.1, 0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.05]
    np.testing.assert_allclose(fluxtrain_rates(schedule, losses), expected, rtol=0, atol=1e-15)
    after_warmup = torch_rates(losses[4:], {"factor": 0.5, "patience": 2})
    np.testing.assert_allclose(expected[5:], after_warmup[1:], rtol=0, atol=1e-15)


def test_plateau_in_epochs_of_many_steps() -> None:
    """Observed in steps at epoch ends; the warmup lasts 3 epochs of 10 steps."""
    schedule = join([linear(0.01, 0.1, 30), reduce_on_plateau(factor=0.5, patience=0)], [30])
    rates = fluxtrain_rates(schedule, [5.0, 4.0, 3.0, 2.0, 2.5, 1.0], epoch_length=10)
    np.testing.assert_allclose(rates, [0.01, 0.04, 0.07, 0.1, 0.1, 0.05], rtol=0, atol=1e-15)
    np.testing.assert_allclose(schedule(np.array([15.0, 30.0, 99.0])), [0.055, 0.05, 0.05])


@pytest.mark.parametrize("wrap", ["plain", "join", "warmup"])
def test_state_dict_round_trip_continues_identically(wrap: str) -> None:
    def build() -> BaseSchedule:
        plateau = reduce_on_plateau(factor=0.5, patience=1, cooldown=1, start=0.1)
        if wrap == "join":
            return join([linear(0.01, 0.1, 3), plateau], [3])
        return warmup(plateau, 0.01, 3) if wrap == "warmup" else plateau

    original = build()
    fluxtrain_rates(original, LOSSES[:12])
    state = copy.deepcopy(original.state_dict())
    assert state  # metric-driven state is not empty
    restored = build()
    restored.load_state_dict(state)
    assert restored.state_dict() == state
    tail = LOSSES[12:]
    continued = [original(12.0)]
    resumed = [restored(12.0)]
    for epoch, loss in enumerate(tail, start=12):
        for schedule, out in ((original, continued), (restored, resumed)):
            schedule.observe({"valid/Loss": loss}, epoch + 1)
            out.append(schedule(epoch + 1.0))
    assert continued == resumed
    assert min(continued) < max(continued)  # the continuation did reduce


def test_observations_before_the_start_or_repeated_are_ignored() -> None:
    plateau = reduce_on_plateau(patience=0, start=1.0)
    plateau.observe({"valid/Loss": 1.0}, -1.0)
    assert plateau.state_dict()["last_time"] is None
    plateau.observe({"valid/Loss": 1.0}, 1.0)
    plateau.observe({"valid/Loss": 2.0}, 1.0)  # the same epoch end, told twice
    assert plateau(1.0) == 1.0
    plateau.observe({"valid/Loss": 2.0}, 2.0)
    assert plateau(2.0) == pytest.approx(0.1, abs=1e-15)
    assert plateau(-1.0) == 1.0 and list(plateau(np.array([-1.0, 5.0]))) == [1.0, plateau(5.0)]


def test_missing_metric_lists_the_available_ones() -> None:
    plateau = reduce_on_plateau(start=0.1)
    with pytest.raises(ScheduleError, match=r"'valid/Loss'.*available: 'train/Loss', 'valid/Acc'"):
        plateau.observe({"train/Loss": 0.3, "valid/Acc": 0.9}, 1.0)
    with pytest.raises(ScheduleError, match=r"available: none"):
        join([linear(0.01, 0.1, 1), plateau], [1]).observe({}, 2.0)


def test_start_value_is_required_outside_join() -> None:
    with pytest.raises(ScheduleError, match=r"no start value; pass start="):
        reduce_on_plateau()(0.0)
    with pytest.raises(ScheduleError, match=r"no start value; pass start="):
        warmup(reduce_on_plateau(), 0.01, 5)
    with pytest.raises(ScheduleError, match=r"state is missing \['value'"):
        reduce_on_plateau(start=0.1).load_state_dict({"start": 0.1})


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"factor": 1.0}, r"factor must be < 1 to reduce the value, got 1.0"),
        ({"factor": 0}, r"factor must be > 0, got 0"),
        ({"patience": -1}, r"patience must be a whole number of epochs >= 0, got -1"),
        ({"patience": 1.5}, r"patience must be a whole number of epochs >= 0, got 1.5"),
        ({"cooldown": True}, r"cooldown must be a whole number of epochs >= 0, got True"),
        ({"mode": "minimum"}, r"mode must be one of 'min', 'max', got 'minimum'"),
        ({"threshold_mode": "relative"}, r"threshold_mode must be one of 'rel', 'abs'"),
        ({"threshold": -0.1}, r"threshold must be >= 0, got -0.1"),
        ({"monitor": ""}, r"monitor must be a metric name such as 'valid/Loss', got ''"),
        ({"start": float("nan")}, r"start must be a finite number, got nan"),
        ({"unit": "batch"}, r"unit must be one of 'step', 'epoch'"),
    ],
)
def test_bad_arguments_raise(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ScheduleError, match=match):
        reduce_on_plateau(**kwargs)
