import copy

import pytest
import torch

from fluxtrain import (
    HyperParameter,
    HyperParameterError,
    LearningRate,
    Momentum,
    ScheduleError,
    WeightDecay,
)
from fluxtrain.easings import sineio
from fluxtrain.schedules import onecycle
from fluxtrain.schedules.base import FunctionSchedule
from fluxtrain.schedules.keyframes import Schedule
from fluxtrain.torch_scheduler import TorchScheduler

LR = Schedule([0, 1, 3], [0.01, 0.1, 0.001], sineio())  # epochs


def model_and_optimizer(make=torch.optim.SGD, **kw):
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 1)
    groups = [{"params": [model.weight]}, {"params": [model.bias]}]
    kw.setdefault("lr", 0.5)
    return model, make(groups, **kw)


def train_step(model, optimizer):
    x = torch.randn(4, 3)
    loss = (model(x) - x.sum(dim=1, keepdim=True)).pow(2).mean()
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()


def run(model, optimizer, scheduler, n):
    """The (lr, momentum) of each group during each of n optimizer steps."""
    seen = []
    for _ in range(n):
        seen.append([(g["lr"], g.get("momentum")) for g in optimizer.param_groups])
        train_step(model, optimizer)
        scheduler.step()
    return seen


def test_values_at_each_step():
    model, optimizer = model_and_optimizer(momentum=0.9)
    scheduler = TorchScheduler(
        optimizer, {LearningRate: LR, Momentum: lambda t: 0.9 - 0.01 * t}, steps_per_epoch=5
    )
    seen = run(model, optimizer, scheduler, 20)
    for t, groups in enumerate(seen):
        assert groups == [(LR(t / 5), 0.9 - 0.01 * t)] * 2
    assert scheduler.get_last_lr() == [LR(20 / 5)] * 2
    assert scheduler.last_epoch == scheduler.t == 20


def test_per_group_schedules_land_in_their_groups():
    model, optimizer = model_and_optimizer(torch.optim.AdamW, weight_decay=0.01)
    scheduler = TorchScheduler(
        optimizer,
        {
            LearningRate: [lambda t: 0.1 * t, lambda t: 0.2 * t],
            Momentum(group=1): 0.8,
            WeightDecay(group=0): lambda t: t / 100,
        },
    )
    for t in range(4):
        first, second = optimizer.param_groups
        assert (first["lr"], second["lr"]) == (0.1 * t, 0.2 * t)
        assert (first["betas"][0], second["betas"][0]) == (0.9, 0.8)
        assert (first["weight_decay"], second["weight_decay"]) == (t / 100, 0.01)
        train_step(model, optimizer)
        scheduler.step()


def test_onecycle_like_torch_step_for_step():
    model, optimizer = model_and_optimizer(momentum=0.9)
    schedule = onecycle(30, 0.1, pct_start=0.3, unit="step")
    scheduler = TorchScheduler(optimizer, {LearningRate: schedule})
    for t, groups in enumerate(run(model, optimizer, scheduler, 35)):
        assert groups[0][0] == schedule(t)


def make_all(order, state):
    """A fresh model, optimizer and scheduler, restored from ``state`` in the given order."""
    model, optimizer = model_and_optimizer(momentum=0.9)
    model.load_state_dict(state["model"])
    mapping = {LearningRate: LR, Momentum: [lambda t: 0.95 - 0.001 * t, 0.9]}
    if order == "scheduler first":
        scheduler = TorchScheduler(optimizer, mapping, steps_per_epoch=4)
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
    elif order == "optimizer first":
        optimizer.load_state_dict(state["optimizer"])
        scheduler = TorchScheduler(optimizer, mapping, steps_per_epoch=4)
        scheduler.load_state_dict(state["scheduler"])
    else:  # scheduler state before optimizer state
        scheduler = TorchScheduler(optimizer, mapping, steps_per_epoch=4)
        scheduler.load_state_dict(state["scheduler"])
        optimizer.load_state_dict(state["optimizer"])
    return model, optimizer, scheduler


@pytest.mark.parametrize(
    "order", ["scheduler first", "optimizer first", "scheduler state before optimizer state"]
)
def test_resume_mid_run_in_any_order(order):
    model, optimizer = model_and_optimizer(momentum=0.9)
    mapping = {LearningRate: LR, Momentum: [lambda t: 0.95 - 0.001 * t, 0.9]}
    scheduler = TorchScheduler(optimizer, mapping, steps_per_epoch=4)
    run(model, optimizer, scheduler, 7)
    state = {
        "model": copy.deepcopy(model.state_dict()),
        "optimizer": copy.deepcopy(optimizer.state_dict()),
        "scheduler": copy.deepcopy(scheduler.state_dict()),
    }
    torch.manual_seed(1)
    expected = run(model, optimizer, scheduler, 10)
    expected_weights = model.weight.detach().clone()

    model2, optimizer2, scheduler2 = make_all(order, state)
    torch.manual_seed(1)
    assert run(model2, optimizer2, scheduler2, 10) == expected
    assert torch.equal(model2.weight, expected_weights)
    assert scheduler2.state_dict() == scheduler.state_dict()


def test_tensor_lr_is_updated_in_place():
    lr = torch.tensor(0.01)
    model = torch.nn.Linear(3, 1)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    scheduler = TorchScheduler(optimizer, {LearningRate: lambda t: 0.01 / (1 + t)})
    for t in range(3):
        assert optimizer.param_groups[0]["lr"] is lr
        assert lr.item() == pytest.approx(0.01 / (1 + t), rel=1e-7)
        train_step(model, optimizer)
        scheduler.step()
    last = scheduler.get_last_lr()[0]
    assert isinstance(last, torch.Tensor) and last is not lr
    assert last.item() == pytest.approx(0.0025, rel=1e-7)


def test_step_before_optimizer_step_does_not_warn():
    _, optimizer = model_and_optimizer()
    scheduler = TorchScheduler(optimizer, {LearningRate: lambda t: 1.0 / (1 + t)})
    scheduler.step()  # tests run with -W error: a torch warning would fail here
    scheduler.step()
    assert optimizer.param_groups[0]["lr"] == 1.0 / 3


class DropoutProb(HyperParameter):
    pass


@pytest.mark.parametrize(
    ("mapping", "kw", "error", "match"),
    [
        (
            {Momentum: 0.9},
            {"make": torch.optim.Adagrad},
            HyperParameterError,
            "Momentum cannot be set on Adagrad",
        ),
        ({LearningRate(group=2): 0.1}, {}, HyperParameterError, "so group=2 does not exist"),
        ({LearningRate: [0.1]}, {}, HyperParameterError, "gives 1 schedules.*has 2 param"),
        ({DropoutProb: 0.1}, {}, HyperParameterError, "optimizer hyperparameters only"),
        (
            {LearningRate: FunctionSchedule(abs, "fraction")},
            {},
            ScheduleError,
            "unit 'fraction', which a plain loop cannot resolve",
        ),
        (
            {LearningRate: FunctionSchedule(abs, "sample")},
            {},
            ScheduleError,
            "unit 'sample'",
        ),
        ({LearningRate: LR}, {}, ScheduleError, r"steps_per_epoch=len\(train_loader\)"),
        ({LearningRate: 0.1}, {"steps_per_epoch": 0}, ScheduleError, "int > 0, got 0"),
        ([(LearningRate, 0.1)], {}, HyperParameterError, "mapping must be a dict"),
        ({"lr": 0.1}, {}, HyperParameterError, "keys must be HyperParameter"),
    ],
)
def test_errors(mapping, kw, error, match):
    _, optimizer = model_and_optimizer(kw.pop("make", torch.optim.SGD))
    with pytest.raises(error, match=match):
        TorchScheduler(optimizer, mapping, **kw)


def test_misuse_of_step_and_state():
    _, optimizer = model_and_optimizer()
    scheduler = TorchScheduler(optimizer, {LearningRate: 0.1})
    with pytest.raises(ScheduleError, match="takes no epoch argument"):
        scheduler.step(3)
    with pytest.raises(HyperParameterError, match="Build it with the same mapping"):
        scheduler.load_state_dict({"last_epoch": 1, "_step_count": 2, "schedules": {"Nope": {}}})
    with pytest.raises(HyperParameterError, match="must be a torch.optim.Optimizer"):
        TorchScheduler("sgd", {LearningRate: 0.1})  # type: ignore[arg-type]
