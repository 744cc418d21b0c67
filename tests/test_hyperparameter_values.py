"""Every scheduled value is checked against its hyperparameter's domain before it is applied."""

import math
import re

import pytest
import torch

from fluxtrain import (
    Callback,
    HyperParameter,
    HyperParameterError,
    LearningRate,
    Momentum,
    Read,
    ScheduleError,
    TorchScheduler,
    WeightDecay,
    Write,
)
from fluxtrain.hyperparameters import FINITE
from fluxtrain.scheduled import Scheduled, domain_text
from fluxtrain.scheduler import Scheduler
from fluxtrain.schedules import linear
from fluxtrain.schedules.base import Constant
from fluxtrain.testing import tiny_learner

FIX = (
    ", which was not applied. Change the schedule so that its values stay in that domain (or, "
    "for a hyperparameter of your own, set its class attribute domain = (low, high))."
)


def exactly(message):
    return "^" + re.escape(message) + "$"


def from_scheduler(message):
    """The whole message of an error raised in a fit, with the note naming the hook."""
    return exactly(message + FIX + "\n(raised in Scheduler.on_step_begin)")


class Weights(Callback):
    """The weights after each training step."""

    stateaccess = {"model": Read}

    def __init__(self):
        self.after = []

    def on_step_end(self, phase, learner):
        self.after.append(learner.model.weight.detach().clone())


def nan_from_step_3(t):
    return math.nan if t >= 3 else 0.1


def test_a_nan_stops_the_fit_at_its_step_with_the_weights_of_the_step_before():
    weights = Weights()
    learner = tiny_learner(Scheduler({LearningRate: nan_from_step_3}), weights, validation=False)
    schedule = "FunctionSchedule('nan_from_step_3', unit='step')"
    message = f"Scheduler: LearningRate must be 0 <= value < inf, but its schedule {schedule} "
    with pytest.raises(ScheduleError, match=from_scheduler(message + "gave nan at t=3")):
        learner.fit(2)
    assert learner.fitstate.step == 3 and len(weights.after) == 3
    assert not torch.equal(weights.after[1], weights.after[2])  # the steps before did train
    assert torch.equal(learner.model.weight, weights.after[2])
    assert learner.optimizer.param_groups[0]["lr"] == 0.1
    assert learner.cbstate.hyperparams["LearningRate"] == [(t, 0.1) for t in range(3)]


def test_a_learning_rate_that_turns_negative_stops_the_fit_where_it_does():
    weights = Weights()
    schedule = linear(0.1, -0.1, 4)  # 0.1, 0.05, 0.0, then -0.05 at t = 3
    learner = tiny_learner(Scheduler({LearningRate: schedule}), weights, validation=False)
    message = (
        "Scheduler: LearningRate must be 0 <= value < inf, but its schedule "
        f"linear(start=0.1, end=-0.1, length=4.0, unit='step') gave {schedule(3.0)!r} at t=3"
    )
    assert schedule(2.0) >= 0 > schedule(3.0)
    with pytest.raises(ScheduleError, match=from_scheduler(message)):
        learner.fit(2)
    assert learner.fitstate.step == 3
    assert torch.equal(learner.model.weight, weights.after[2])
    assert [t for t, _ in learner.cbstate.hyperparams["LearningRate"]] == [0, 1, 2]


def test_a_rejected_step_records_none_of_its_values():
    learner = tiny_learner(
        Scheduler({LearningRate: 0.5, Momentum: math.inf}),
        optimizer=lambda params, lr: torch.optim.SGD(params, lr=lr, momentum=0.9),
    )
    message = (
        "Scheduler: Momentum must be 0 <= value < inf, but its schedule "
        "Constant(inf, unit='step') gave inf at t=0"
    )
    with pytest.raises(ScheduleError, match=from_scheduler(message)):
        learner.fit(1)
    assert learner.optimizer.param_groups[0]["momentum"] == 0.9
    assert learner.optimizer.param_groups[0]["lr"] == 0.5  # set before Momentum was checked
    assert learner.cbstate.hyperparams == {"LearningRate": [], "Momentum": []}
    assert learner.fitstate.step == 0 and torch.equal(learner.model.weight, torch.zeros(1, 1))


def test_a_negative_weight_decay_is_rejected():
    learner = tiny_learner(Scheduler({WeightDecay: -5}))
    message = (
        "Scheduler: WeightDecay must be 0 <= value < inf, but its schedule "
        "Constant(-5.0, unit='step') gave -5.0 at t=0"
    )
    with pytest.raises(ScheduleError, match=from_scheduler(message)):
        learner.fit(1)
    assert learner.optimizer.param_groups[0]["weight_decay"] == 0


def test_momentum_1_is_rejected_for_adam_but_not_for_sgd():
    adam = tiny_learner(Scheduler({Momentum: 1.0}), optimizer=torch.optim.Adam)
    message = (
        "Scheduler: Momentum must be 0 <= value < 1, but its schedule "
        "Constant(1.0, unit='step') gave 1.0 at t=0"
    )
    with pytest.raises(ScheduleError, match=from_scheduler(message)):
        adam.fit(1)
    assert adam.optimizer.param_groups[0]["betas"] == (0.9, 0.999)
    sgd = tiny_learner(Scheduler({Momentum: 1.0}))  # torch takes any momentum >= 0
    sgd.fit(1)
    assert sgd.optimizer.param_groups[0]["momentum"] == 1.0


def test_the_message_gives_the_time_in_the_schedules_unit():
    schedule = linear(0.35, -0.05, 1, unit="epoch")  # -0.05 from the second epoch on
    learner = tiny_learner(Scheduler({LearningRate: schedule}))
    with pytest.raises(ScheduleError, match=r" gave -0\.05 at t=4 \(epoch 1\.0\), which was not "):
        learner.fit(2)
    assert learner.fitstate.step == 4


def test_momentum_over_adam_and_sgd_takes_the_narrower_domain():
    params = [torch.zeros(1, requires_grad=True)]
    adam, sgd = torch.optim.Adam(params), torch.optim.SGD(params, lr=0.1, momentum=0.9)
    entry = Scheduled(Momentum(), Constant(0.9))
    assert entry.domain_on([sgd]) == (0.0, math.inf)
    assert entry.domain_on([sgd, adam]) == (0.0, 1.0)
    assert Scheduled(LearningRate(), Constant(0.1)).domain_on([sgd, adam]) == (0.0, math.inf)


class Temperature(HyperParameter):
    stateaccess = {"model": Write}

    def sethyperparameter(self, learner, value):
        learner.model.temperature = value


class Probability(Temperature):
    domain = (0.0, 1.0)


def test_a_hyperparameter_of_your_own_takes_finite_values_by_default():
    assert Temperature.domain == FINITE and domain_text(*FINITE) == "finite (-inf < value < inf)"
    learner = tiny_learner(Scheduler({Temperature: -1e300}))
    learner.fit(1)
    assert learner.model.temperature == -1e300
    for bad in (math.inf, -math.inf, math.nan):
        message = (
            f"Scheduler: Temperature must be finite (-inf < value < inf), but its schedule "
            f"Constant({bad!r}, unit='step') gave {bad!r} at t=0"
        )
        with pytest.raises(ScheduleError, match=from_scheduler(message)):
            tiny_learner(Scheduler({Temperature: bad})).fit(1)


class Scale(Temperature):
    domain = (math.ulp(0.0), math.inf)  # positive


def test_a_hyperparameter_of_your_own_can_narrow_its_domain():
    tiny_learner(Scheduler({Probability: 0.0, Scale: 1e-300})).fit(1)
    with pytest.raises(ScheduleError, match=r"^Scheduler: Probability must be 0 <= value < 1, "):
        tiny_learner(Scheduler({Probability: 1.0})).fit(1)
    with pytest.raises(ScheduleError, match=r"^Scheduler: Scale must be 0 < value < inf, "):
        tiny_learner(Scheduler({Scale: 0.0})).fit(1)


@pytest.mark.parametrize("domain", [(1.0, 0.0), (0.0, math.nan), (0.0,), [0.0, 1.0], ("a", "b")])
def test_a_bad_domain_is_refused_when_the_scheduler_is_built(domain):
    class Broken(Temperature):
        pass

    Broken.domain = domain
    message = (
        f"Scheduler: Broken.domain must be (low, high) with low < high, meaning low <= value < "
        f"high, got {domain!r}. Set e.g. domain = (0.0, 1.0), or leave it out for any finite "
        f"value."
    )
    with pytest.raises(HyperParameterError, match=exactly(message)):
        Scheduler({Broken: 0.5})


def nan_from_step_2(t):
    return math.nan if t >= 2 else 0.1 / (1 + t)


def test_torch_scheduler_rejects_a_nan_and_stays_at_its_step():
    w = torch.zeros(1, requires_grad=True)
    optimizer = torch.optim.SGD([w], lr=1.0)
    scheduler = TorchScheduler(optimizer, {LearningRate: nan_from_step_2})
    optimizer.step()
    scheduler.step()
    optimizer.step()
    message = (
        "TorchScheduler: LearningRate must be 0 <= value < inf, but its schedule "
        "FunctionSchedule('nan_from_step_2', unit='step') gave nan at t=2"
    )
    with pytest.raises(ScheduleError, match=exactly(message + FIX)):
        scheduler.step()
    assert scheduler.t == 1 and optimizer.param_groups[0]["lr"] == 0.05


def test_torch_scheduler_rejects_a_bad_value_at_construction():
    optimizer = torch.optim.Adam([torch.zeros(1, requires_grad=True)])
    message = (
        "TorchScheduler: Momentum must be 0 <= value < 1, but its schedule "
        "Constant(1.5, unit='step') gave 1.5 at t=0"
    )
    with pytest.raises(ScheduleError, match=exactly(message + FIX)):
        TorchScheduler(optimizer, {Momentum: 1.5})
    assert optimizer.param_groups[0]["betas"] == (0.9, 0.999)
