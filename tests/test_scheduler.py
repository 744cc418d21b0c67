import copy
import math

import numpy as np
import pytest
import torch

from fluxtrain import (
    Callback,
    CancelStep,
    HyperParameter,
    HyperParameterError,
    Learner,
    LearningRate,
    Metrics,
    Momentum,
    Read,
    ScheduleError,
    TrainingPhase,
    WeightDecay,
    Write,
)
from fluxtrain.easings import sineio
from fluxtrain.scheduler import Scheduler
from fluxtrain.schedules.base import BaseSchedule, FunctionSchedule
from fluxtrain.schedules.keyframes import Schedule
from fluxtrain.testing import Unsized, regression_data, tiny_learner


class Probe(Callback):
    """Reads the optimizer's values during each training step (at BackwardEnd) and during
    each validation step (at LossBegin)."""

    stateaccess = {"optimizer": Read}

    def __init__(self, keys=("lr",)):
        self.keys = keys
        self.train, self.valid = [], []

    def _read(self, learner):
        return [
            tuple(g["betas"][0] if k == "betas0" else g[k] for k in self.keys)
            for g in learner.optimizer.param_groups
        ]

    def on_backward_end(self, phase, learner):
        self.train.append(self._read(learner))

    def on_loss_begin(self, phase, learner):
        if not isinstance(phase, TrainingPhase):
            self.valid.append(self._read(learner))


def two_group_learner(*callbacks, optimizer="sgd", n_batches=4, batch_sizes=None):
    model = torch.nn.Linear(1, 1)
    groups = [{"params": [model.weight]}, {"params": [model.bias], "lr": 0.5}]
    if optimizer == "sgd":
        opt = torch.optim.SGD(groups, lr=0.01, momentum=0.9, weight_decay=0.0)
    else:
        opt = torch.optim.AdamW(groups, lr=0.01)
    train = regression_data(n_batches, 8, seed=0)
    valid = regression_data(2, 8, seed=1)
    return Learner(
        model,
        (train, valid),
        opt,
        torch.nn.functional.mse_loss,
        *callbacks,
        usedefaultcallbacks=False,
    )


LR_ALL = Schedule([0, 1, 3], [0.01, 0.1, 0.001], sineio())  # epochs
LR_GROUPS = [Schedule([0, 2], [0.1, 0.0]), lambda t: 0.05 / (1 + t)]


def momentum_at(t):
    return 0.9 - 0.01 * t


@pytest.mark.parametrize("optimizer", ["sgd", "adamw"])
@pytest.mark.parametrize("per_group", [False, True])
def test_values_during_each_training_step(optimizer, per_group):
    lr = LR_GROUPS if per_group else LR_ALL
    scheduler = Scheduler({LearningRate: lr, Momentum: momentum_at})
    momentum_key = "momentum" if optimizer == "sgd" else "betas0"
    probe = Probe(("lr", momentum_key))
    learner = two_group_learner(scheduler, probe, optimizer=optimizer)
    learner.fit(2)
    learner.fit(1)  # time continues: t = 8 at its first step
    assert len(probe.train) == 12
    for t, groups in enumerate(probe.train):
        for g, (lr_value, momentum) in enumerate(groups):
            if per_group:
                expected = LR_GROUPS[0](t / 4) if g == 0 else 0.05 / (1 + t)
            else:
                expected = LR_ALL(t / 4)
            assert lr_value == expected
            assert momentum == momentum_at(t)
    # validation steps see the values of the last training step before them
    assert len(probe.valid) == 6
    for epoch in range(3):
        last_train = probe.train[4 * epoch + 3]
        assert probe.valid[2 * epoch] == last_train
        assert probe.valid[2 * epoch + 1] == last_train


def test_records_match_applied_values_and_names():
    learner = two_group_learner(Scheduler({LearningRate: LR_GROUPS, Momentum: momentum_at}))
    learner.fit(1)
    records = learner.cbstate.hyperparams
    assert list(records) == ["LearningRate[group=0]", "LearningRate[group=1]", "Momentum"]
    assert records["LearningRate[group=1]"] == [(t, 0.05 / (1 + t)) for t in range(4)]
    assert records["Momentum"] == [(t, momentum_at(t)) for t in range(4)]


def test_single_group_key_leaves_other_groups_alone():
    probe = Probe()
    learner = two_group_learner(Scheduler({LearningRate(group=1): lambda t: 0.001 * t}), probe)
    learner.fit(1)
    assert probe.train == [[(0.01,), (0.001 * t,)] for t in range(4)]


def test_tensor_lr_is_filled_in_place_at_every_step():
    model = torch.nn.Linear(1, 1)
    lr = torch.tensor(0.01)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr, foreach=False)

    class ProbeTensor(Probe):
        def _read(self, learner):
            return float(learner.optimizer.param_groups[0]["lr"])

    probe = ProbeTensor()
    learner = Learner(
        model,
        regression_data(4, 8),
        optimizer,
        torch.nn.functional.mse_loss,
        Scheduler({LearningRate: lambda t: 0.25 / (1 + t)}),
        probe,
        usedefaultcallbacks=False,
    )
    learner.fit(1)
    assert optimizer.param_groups[0]["lr"] is lr
    assert probe.train == [float(torch.tensor(0.25 / (1 + t))) for t in range(4)]


def test_param_group_added_between_fits_is_scheduled():
    probe = Probe()
    learner = two_group_learner(Scheduler({LearningRate: lambda t: 0.001 * (t + 1)}), probe)
    learner.fit(1)
    extra = torch.nn.Parameter(torch.zeros(1))
    learner.optimizer.add_param_group({"params": [extra], "lr": 9.0})
    learner.fit(1)
    assert probe.train[4:] == [[(0.001 * (t + 1),)] * 3 for t in range(4, 8)]


def test_order_given_is_order_applied():
    probe = Probe()
    learner = two_group_learner(Scheduler((LearningRate, 0.2), (LearningRate(group=0), 0.3)), probe)
    learner.fit(1)
    assert probe.train[0] == [(0.3,), (0.2,)]


# -- units ---------------------------------------------------------------------------------


def identity(unit):
    return FunctionSchedule(lambda t: t, unit=unit)


def applied(learner, name="WeightDecay"):
    """The values of hyperparameter ``name`` recorded at each training step, in order."""
    return [v for _, v in learner.cbstate.hyperparams[name]]


def test_epoch_unit_is_fractional():
    learner = tiny_learner(
        Scheduler({WeightDecay: identity("epoch")}, steps_per_epoch=4), n_batches=4
    )
    learner.fit(2)
    assert applied(learner) == [0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 1.75]


def test_epoch_unit_from_constructor_for_data_without_len():
    scheduler = Scheduler({WeightDecay: identity("epoch")}, steps_per_epoch=2)
    learner = tiny_learner(scheduler)
    learner.fit(1, Unsized(regression_data(3, 8)))
    assert applied(learner) == [0.0, 0.5, 1.0]


def test_epoch_unit_continues_when_the_data_length_changes():
    learner = tiny_learner(Scheduler({WeightDecay: identity("epoch")}), n_batches=4)
    learner.fit(1)
    learner.fit(1, regression_data(2, 8))
    assert applied(learner) == [0.0, 0.25, 0.5, 0.75, 1.0, 1.5]


def test_fraction_unit_over_two_fit_calls():
    learner = tiny_learner(Scheduler({WeightDecay: identity("fraction")}), n_batches=4)
    learner.fit(2)
    learner.fit(1)
    assert applied(learner) == [k / 8 for k in range(8)] + [k / 4 for k in range(4)]


def test_sample_unit_counts_a_short_last_batch():
    data = regression_data(2, 8) + regression_data(1, 3, seed=5)
    learner = tiny_learner(Scheduler({WeightDecay: identity("sample")}))
    learner.fit(2, data)
    assert applied(learner) == [0, 8, 16, 19, 27, 35]


def test_step_unit_and_steps_recorded_across_fits():
    learner = tiny_learner(Scheduler({WeightDecay: identity("step")}), n_batches=3)
    learner.fit(1)
    learner.fit(1)
    assert learner.cbstate.hyperparams["WeightDecay"] == [(t, float(t)) for t in range(6)]


def test_cancelled_step_is_neither_counted_nor_recorded():
    class CancelSecond(Callback):
        def __init__(self):
            self.n = 0

        def on_loss_begin(self, phase, learner):
            if isinstance(phase, TrainingPhase):
                self.n += 1
                if self.n in (2, 4):
                    raise CancelStep()

    learner = tiny_learner(
        Scheduler({WeightDecay: identity("step")}), CancelSecond(), n_batches=4, validation=False
    )
    learner.fit(1)
    assert learner.cbstate.hyperparams["WeightDecay"] == [(0, 0.0), (1, 1.0)]
    assert learner.callbacks[0].state_dict()["t"] == 2


# -- errors --------------------------------------------------------------------------------


def test_momentum_on_adagrad_fails_before_any_step():
    learner = tiny_learner(Scheduler({Momentum: 0.9}), optimizer=torch.optim.Adagrad)
    with pytest.raises(HyperParameterError, match="Momentum cannot be set on Adagrad"):
        learner.fit(1)
    assert learner.model.weight.item() == 0.0
    assert learner.cbstate.hyperparams == {}


def test_group_out_of_range():
    learner = two_group_learner(Scheduler({LearningRate(group=2): 0.1}))
    with pytest.raises(HyperParameterError, match=r"2 param group\(s\), so group=2 does not"):
        learner.fit(1)


def test_list_length_must_match_param_groups():
    learner = two_group_learner(Scheduler({LearningRate: [0.1, 0.2, 0.3]}))
    with pytest.raises(HyperParameterError, match=r"gives 3 schedules.*has 2 param group"):
        learner.fit(1)


@pytest.mark.parametrize("unit", ["epoch", "fraction"])
def test_unresolvable_unit_says_what_to_pass(unit):
    learner = tiny_learner(Scheduler({LearningRate: identity(unit)}))
    with pytest.raises(
        ScheduleError,
        match=r"no len\(\) \(an IterableDataset, a stream\)\. "
        r"Pass Scheduler\(\.\.\., steps_per_epoch",
    ):
        learner.fit(1, Unsized(regression_data(2, 8)))
    assert learner.cbstate.hyperparams == {}


@pytest.mark.parametrize(
    ("args", "error", "match"),
    [
        (({"lr": 0.1},), HyperParameterError, "keys must be HyperParameter classes or instances"),
        (({LearningRate: "fast"},), ScheduleError, r"Scheduler\[LearningRate\]: expected a"),
        ((LearningRate,), HyperParameterError, "or \\(HyperParameter, schedule\\) pairs, got"),
        (((LearningRate, 0.1), (LearningRate, 0.2)), HyperParameterError, "more than once"),
        (
            ({LearningRate: [0.1, 0.2], LearningRate(group=1): 0.3},),
            HyperParameterError,
            r"LearningRate\[group=1\] is scheduled more than once",
        ),
        (({LearningRate(group=0): [0.1, 0.2]},), HyperParameterError, "a list of schedules"),
        ((), HyperParameterError, "at least one"),
    ],
)
def test_bad_arguments(args, error, match):
    with pytest.raises(error, match=match):
        Scheduler(*args)


def test_bad_steps_per_epoch():
    with pytest.raises(ScheduleError, match="steps_per_epoch must be an int > 0, got 0"):
        Scheduler({LearningRate: 0.1}, steps_per_epoch=0)


def test_hyperparameter_needing_arguments():
    class Scaled(HyperParameter):
        def __init__(self, factor):
            self.factor = factor

    with pytest.raises(HyperParameterError, match=r"could not build Scaled\(\)"):
        Scheduler({Scaled: 0.1})


# -- state access ----------------------------------------------------------------------------


def test_accesses_merge_hyperparameters_and_own():
    class LossWeight(HyperParameter):
        stateaccess = {"cbstate.loss_weight": Write}

    access = Scheduler({LearningRate: 0.1, LossWeight: 1.0}).accesses()
    assert access == {
        "optimizer": Write,
        "cbstate.loss_weight": Write,
        "fitstate": Read,
        "batch.inputs": Read,
        "cbstate.hyperparams": Write,
        "cbstate.metrics_epoch": Read,
    }


def test_two_schedulers_of_different_hyperparameters():
    learner = tiny_learner(Scheduler({LearningRate: 0.1}), Scheduler({WeightDecay: 0.2}))
    learner.fit(1)
    assert set(learner.cbstate.hyperparams) == {"LearningRate", "WeightDecay"}


# -- metric-driven schedules -----------------------------------------------------------------


class Watching(BaseSchedule):
    def __init__(self, unit="epoch"):
        super().__init__(unit)
        self.seen = []

    def scalar(self, t):
        return 0.01 * (1 + len(self.seen))

    def observe(self, metrics, t):
        self.seen.append((dict(metrics), t))

    def state_dict(self):
        return {"n": len(self.seen)}

    def load_state_dict(self, state):
        self.seen = [({}, 0.0)] * state["n"]


@pytest.mark.parametrize("validation", [True, False])
def test_observe_sees_the_epoch_metrics_once_per_epoch(validation):
    schedule = Watching()
    learner = tiny_learner(Metrics(), Scheduler({LearningRate: schedule}), validation=validation)
    learner.fit(2)
    history = learner.cbstate.metrics_epoch
    assert [t for _, t in schedule.seen] == [1.0, 2.0]
    for epoch, (metrics, _) in enumerate(schedule.seen):
        assert metrics == {name: values[epoch] for name, values in history.items()}
    assert ("valid/Loss" in schedule.seen[0][0]) is validation
    assert (
        applied(learner, "LearningRate") == [0.01] * 4 + [0.02] * 4
    )  # the observed metric changes the next epoch


def test_observe_without_metrics_callback():
    schedule = Watching(unit="step")
    tiny_learner(Scheduler({LearningRate: schedule}), n_batches=3).fit(1)
    assert schedule.seen == [({}, 3)]


# -- simulate, onecycle, state ---------------------------------------------------------------


def test_simulate_equals_recorded_values():
    scheduler = Scheduler(
        {
            LearningRate: LR_ALL,
            Momentum: lambda t: 0.9 - 0.001 * t,
            WeightDecay: Schedule([0, 0.5, 1], [0.0, 0.1, 0.05], sineio(), unit="fraction"),
        }
    )
    simulated = scheduler.simulate(3, 4)
    learner = two_group_learner(scheduler)
    learner.fit(3)
    assert set(simulated) == set(learner.cbstate.hyperparams)
    for name, values in simulated.items():
        recorded = np.array(applied(learner, name))
        np.testing.assert_allclose(values, recorded, rtol=1e-14, atol=0)


def test_simulate_changes_nothing_and_needs_what_it_needs():
    scheduler = Scheduler({LearningRate: identity("sample")}, steps_per_epoch=2)
    np.testing.assert_array_equal(
        scheduler.simulate(2, batch_size=5)["LearningRate"], [0, 5, 10, 15]
    )
    assert scheduler.state_dict()["t"] == 0
    with pytest.raises(ScheduleError, match="needs the batch size.*batch_size="):
        scheduler.simulate(1)
    with pytest.raises(ScheduleError, match="pass steps_per_epoch"):
        Scheduler({LearningRate: 0.1}).simulate(1)
    with pytest.raises(ScheduleError, match="n_epochs must be an int >= 0"):
        scheduler.simulate(-1)


def _sineio_between(a, b, x):
    return a + (b - a) * (1 - math.cos(math.pi * x)) / 2


def test_onecycle_closed_form():
    scheduler = Scheduler.onecycle(2, 0.1, pct_start=0.25, steps_per_epoch=8)
    assert scheduler.names == ["LearningRate", "Momentum"]
    learner = tiny_learner(
        scheduler, n_batches=8, optimizer=lambda p, lr: torch.optim.SGD(p, lr=lr, momentum=0.9)
    )
    learner.fit(2)
    lrs = learner.cbstate.hyperparams["LearningRate"]
    moms = learner.cbstate.hyperparams["Momentum"]
    for (t, lr), (_, mom) in zip(lrs, moms):
        epoch = t / 8
        if epoch <= 0.5:
            x = epoch / 0.5
            expected_lr, expected_mom = (
                _sineio_between(0.004, 0.1, x),
                _sineio_between(0.95, 0.85, x),
            )
        else:
            x = (epoch - 0.5) / 1.5
            expected_lr, expected_mom = (
                _sineio_between(0.1, 1e-6, x),
                _sineio_between(0.85, 0.95, x),
            )
        assert lr == pytest.approx(expected_lr, rel=1e-12)
        assert mom == pytest.approx(expected_mom, rel=1e-12)
    assert lrs[4] == (4, 0.1) and moms[4] == (4, 0.85)


def test_onecycle_options():
    scheduler = Scheduler.onecycle(10, 1.0, moms=None, unit="step", div=10, end_val=0.5)
    values = scheduler.simulate(1, 11)
    assert list(values) == ["LearningRate"]
    assert values["LearningRate"][0] == 0.1 and values["LearningRate"][10] == 0.5
    with pytest.raises(ScheduleError, match=r"moms must be \(start, peak, end\)"):
        Scheduler.onecycle(10, 1.0, moms=(0.9, 0.8))


def test_state_dict_round_trip_resumes_exactly():
    def make():
        return Scheduler(
            {LearningRate: Watching(), Momentum: LR_ALL * 5, WeightDecay: identity("sample")}
        )

    def sgd(params, lr):
        return torch.optim.SGD(params, lr=lr, momentum=0.9)

    reference = make()
    learner = tiny_learner(Metrics(), reference, n_batches=3, optimizer=sgd)
    learner.fit(1)
    state = reference.state_dict()
    learner.fit(2)
    expected = {k: v[3:] for k, v in learner.cbstate.hyperparams.items()}

    resumed = make()
    resumed.load_state_dict(state)
    other = tiny_learner(Metrics(), resumed, n_batches=3, optimizer=sgd)
    other.fit(2)
    assert other.cbstate.hyperparams == expected

    with pytest.raises(HyperParameterError, match="Build it with the same hyperparameters"):
        Scheduler({LearningRate: 0.1}).load_state_dict(state)


# -- custom hyperparameters ------------------------------------------------------------------


class LossWeight(HyperParameter):
    stateaccess = {"cbstate.loss_weight": Write}

    def sethyperparameter(self, learner, value):
        learner.cbstate.loss_weight = value


class DropoutProb(HyperParameter):
    stateaccess = {"model": Write}

    def sethyperparameter(self, learner, value):
        for module in learner.model.modules():
            if isinstance(module, torch.nn.Dropout):
                module.p = value


def test_custom_hyperparameters_with_learning_rate():
    class Seen(Callback):
        stateaccess = {"cbstate.loss_weight": Read, "model": Read, "optimizer": Read}

        def __init__(self):
            self.values = []

        def on_backward_end(self, phase, learner):
            self.values.append(
                (
                    learner.cbstate.loss_weight,
                    learner.model[0].p,
                    learner.optimizer.param_groups[0]["lr"],
                )
            )

    model = torch.nn.Sequential(torch.nn.Dropout(0.5), torch.nn.Linear(1, 1))
    seen = Seen()
    scheduler = Scheduler(
        (LearningRate, lambda t: 0.01 * (t + 1)),
        (DropoutProb, Schedule([0, 1], [0.5, 0.0])),
        (LossWeight, lambda t: 2.0**t),
    )
    learner = Learner(
        model,
        regression_data(4, 8),
        torch.optim.SGD(model.parameters(), lr=0.1),
        torch.nn.functional.mse_loss,
        scheduler,
        seen,
        usedefaultcallbacks=False,
    )
    learner.fit(2)
    assert seen.values == [(2.0**t, max(0.5 - 0.5 * t / 4, 0.0), 0.01 * (t + 1)) for t in range(8)]


def test_resumed_fit_continues_every_unit_exactly():
    class Snapshot(Callback):
        stateaccess = {"cbstate": Read}

        def __init__(self, at):
            self.at, self.state, self.steps = at, None, 0

        def init(self, learner):
            self.learner = learner

        def on_step_end(self, phase, learner):
            if isinstance(phase, TrainingPhase):
                self.steps += 1
                if self.steps == self.at:
                    self.state = copy.deepcopy(self.learner.state_dict())

    def make():
        scheduler = Scheduler(
            {
                LearningRate: identity("fraction"),
                Momentum: LR_ALL,
                WeightDecay: identity("sample"),
            }
        )
        snapshot = Snapshot(at=6)
        sgd = lambda p, lr: torch.optim.SGD(p, lr=lr, momentum=0.9)  # noqa: E731
        return tiny_learner(scheduler, snapshot, n_batches=4, optimizer=sgd), snapshot

    learner, snapshot = make()
    learner.fit(3)
    resumed, _ = make()
    resumed.fit(3, resume=snapshot.state)
    assert resumed.cbstate.hyperparams == learner.cbstate.hyperparams
    assert applied(resumed, "LearningRate") == [k / 12 for k in range(12)]
