"""Attribute and DropoutRate: the value read inside the model and the loss at every step."""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from fluxtrain import (
    Attribute,
    DropoutRate,
    HyperParameterError,
    Learner,
    Schedule,
    ScheduleError,
    Scheduler,
)
from fluxtrain.easings import linear

N_BATCHES = 5


class WeightedLoss(torch.nn.Module):
    """MSE times ``weight``; remembers the weight of every call."""

    def __init__(self):
        super().__init__()
        self.weight = 1.0
        self.register_buffer("scale", torch.tensor(1.0))
        self.seen = []

    def forward(self, outputs, targets):
        self.seen.append((self.weight, float(self.scale)))
        return self.weight * self.scale * torch.nn.functional.mse_loss(outputs, targets)


class Net(torch.nn.Module):
    """Dropout in two places, one of them under ``head``; records each ``p`` per forward."""

    def __init__(self):
        super().__init__()
        self.body = torch.nn.Sequential(torch.nn.Linear(2, 4), torch.nn.Dropout(0.5))
        self.head = torch.nn.Sequential(torch.nn.Dropout1d(0.5), torch.nn.Linear(4, 1))
        self.seen = []

    def forward(self, x):
        if self.training:
            self.seen.append((self.body[1].p, self.head[0].p))
        return self.head(self.body(x))


def fit(scheduler, epochs=2, loss=None):
    torch.manual_seed(0)
    model = Net()
    loss = loss if loss is not None else WeightedLoss()
    data = DataLoader(TensorDataset(torch.randn(10, 2), torch.randn(10, 1)), batch_size=2)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    learner = Learner(model, data, optimizer, loss, scheduler, usedefaultcallbacks=False)
    learner.fit(epochs)
    return learner


def test_attribute_sets_the_loss_weight_each_step_to_its_schedule():
    kl = Schedule([0, 2], [0.0, 1.0], linear(), unit="epoch")  # 5 steps per epoch
    learner = fit(Scheduler({Attribute("loss_fn.weight"): kl}))
    expected = [min(t / 10, 1.0) for t in range(10)]
    assert [w for w, _ in learner.loss_fn.seen] == pytest.approx(expected, abs=1e-15)
    record = learner.cbstate.hyperparams["Attribute[loss_fn.weight]"]
    assert list(record.steps) == list(range(10))
    assert record.values == pytest.approx(expected, abs=1e-15)


def test_attribute_fills_a_tensor_in_place():
    loss = WeightedLoss()
    buffer = loss.scale
    fit(Scheduler({Attribute("loss_fn.scale"): lambda t: 2.0**t}), epochs=1, loss=loss)
    assert [s for _, s in loss.seen] == [1.0, 2.0, 4.0, 8.0, 16.0]
    assert loss.scale is buffer  # still the registered buffer


def test_attribute_reaches_into_the_model():
    learner = fit(Scheduler({Attribute("model.head.0.p"): lambda t: t / 10}), epochs=1)
    assert [head for _, head in learner.model.seen] == [t / 10 for t in range(5)]
    assert [body for body, _ in learner.model.seen] == [0.5] * 5


def test_dropout_rate_sets_every_dropout_module():
    schedule = Schedule([0, 9], [0.5, 0.05], unit="step")
    learner = fit(Scheduler({DropoutRate: schedule}))
    expected = [0.5 + (0.05 - 0.5) * t / 9 for t in range(10)]
    assert [body for body, _ in learner.model.seen] == pytest.approx(expected, abs=1e-15)
    assert [head for _, head in learner.model.seen] == pytest.approx(expected, abs=1e-15)


def test_dropout_rate_of_one_submodule_leaves_the_others():
    learner = fit(Scheduler({DropoutRate("head"): lambda t: 0.1}), epochs=1)
    assert learner.model.seen == [(0.5, 0.1)] * 5


def test_dropout_rate_outside_0_to_1_stops_before_it_is_set():
    with pytest.raises(ScheduleError, match="DropoutRate must be 0 <= value < 1"):
        fit(Scheduler({DropoutRate: lambda t: 1.0}))


@pytest.mark.parametrize(
    "path, message",
    [
        ("kl_weight", "must be a dotted path from the learner"),
        ("loss_fn.", "must be a dotted path from the learner"),
        ("batch.loss", "must start at one of the learner's fields"),
        ("lossfn.weight", "must start at one of the learner's fields"),
    ],
)
def test_bad_attribute_paths_fail_at_construction(path, message):
    with pytest.raises(HyperParameterError, match=message):
        Attribute(path)


@pytest.mark.parametrize(
    "path, message",
    [
        ("loss_fn.kl_weight", r"loss_fn \(WeightedLoss\) has no attribute 'kl_weight'"),
        ("model.neck.dropout.p", r"model \(Net\) has no attribute 'neck'"),
        ("model.head.9.p", r"model.head \(Sequential\) has no attribute '9'"),
        ("model.body", "holds Sequential"),
    ],
)
def test_missing_parts_of_a_path_are_named_at_fit_begin(path, message):
    seen = []
    with pytest.raises(HyperParameterError, match=message):
        fit(Scheduler({Attribute(path): lambda t: seen.append(t) or 0.1}))
    assert seen == []  # no step ran


def test_dropout_rate_without_dropout_or_submodule_is_a_clear_error():
    with pytest.raises(HyperParameterError, match="no submodule 'neck'"):
        fit(Scheduler({DropoutRate("neck"): 0.1}))
    with pytest.raises(HyperParameterError, match=r"model.head.1 \(Linear\) holds no dropout"):
        fit(Scheduler({DropoutRate("head.1"): 0.1}))
