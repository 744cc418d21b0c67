"""Step budgets over sized, unsized and endless data, validation every k steps, evaluate and
predict, and the best checkpoint."""

from __future__ import annotations

import copy
import itertools
import random

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, IterableDataset, TensorDataset

from fluxtrain import (
    Callback,
    Checkpointer,
    EarlyStopping,
    FluxTrainError,
    Learner,
    LearningRate,
    Metrics,
    Read,
    Recorder,
    RunFirst,
    ScheduleError,
    Scheduler,
    Write,
)
from fluxtrain.events import EVENTS
from fluxtrain.schedules import linear
from fluxtrain.testing import Unsized, regression_data, tiny_learner


class Endless:
    """Batches forever, from a seeded generator (re-iterable: each pass starts over)."""

    def __iter__(self):
        g = torch.Generator().manual_seed(0)
        while True:
            x = torch.randn(4, 1, generator=g)
            yield x, 3 * x


class Stream(IterableDataset):
    def __iter__(self):
        g = torch.Generator().manual_seed(1)
        for _ in range(10):
            x = torch.randn(1, generator=g)
            yield x, 3 * x


class Steps(Callback):
    """Counts optimizer steps as the optimizer sees them."""

    def __init__(self):
        self.count = 0

    def init(self, learner):
        def hook(opt, args, kwargs):
            self.count += 1

        learner.optimizer.register_step_pre_hook(hook)


@pytest.mark.parametrize(
    "data",
    [
        regression_data(4),
        Unsized(regression_data(4)),
        Endless(),
        DataLoader(Stream(), batch_size=3),
    ],
    ids=["sized", "unsized", "endless", "iterable-dataset"],
)
def test_exactly_n_optimizer_steps(data):
    counter = Steps()
    learner = tiny_learner(counter, Recorder(), validation=False)
    result = learner.fit(steps=11, data=data)
    assert counter.count == 11 == result.steps_completed == learner.fitstate.total_steps
    assert learner.cbstate.history["train"].steps == 11


def test_a_sized_pass_is_an_epoch_and_the_last_one_may_be_partial():
    learner = tiny_learner(Recorder())  # 4 batches per pass, validation at each pass's end
    result = learner.fit(steps=10)
    assert (result.epochs_completed, result.steps_completed) == (3, 10)
    history = learner.cbstate.history
    assert (history["train"].epochs, history["train"].steps_epoch) == (3, 2)
    assert history["valid"].epochs == 3


class Events(Callback):
    stateaccess = {"fitstate": Read}

    def __init__(self):
        self.log = []


for _event in EVENTS:

    def _hook(self, phase, learner, _name=_event.__name__):
        if _name in ("StepEnd", "EpochBegin", "EpochEnd"):
            self.log.append((_name, phase.name, learner.fitstate.total_steps))
        elif _name in ("FitBegin", "FitEnd"):
            self.log.append((_name, phase.name))

    setattr(Events, _event.hook, _hook)


def test_events_of_a_step_budget_with_validate_every():
    events = Events()
    learner = tiny_learner(events, n_batches=3)
    learner.fit(steps=4, validate_every=2, data=(regression_data(3), regression_data(1, seed=1)))
    assert events.log == [
        ("FitBegin", "train"),
        ("EpochBegin", "train", 0),
        ("StepEnd", "train", 1),
        ("StepEnd", "train", 2),
        ("EpochBegin", "valid", 2),
        ("StepEnd", "valid", 2),
        ("EpochEnd", "valid", 2),
        ("StepEnd", "train", 3),
        ("EpochEnd", "train", 3),
        ("EpochBegin", "train", 3),
        ("StepEnd", "train", 4),
        ("EpochBegin", "valid", 4),
        ("StepEnd", "valid", 4),
        ("EpochEnd", "valid", 4),
        ("EpochEnd", "train", 4),
        ("FitEnd", "train"),
    ]


def test_validations_inside_training_keep_both_phases_metrics_and_their_steps():
    learner = tiny_learner(Metrics(), n_batches=4)
    learner.fit(steps=8, validate_every=3)
    metrics, at = learner.cbstate.metrics_epoch, learner.cbstate.metrics_at
    assert at == {"valid/Loss": [3, 6], "train/Loss": [4, 8]}
    # the training epochs' values are their own 4 batches' means, validations did not reset them
    reference = tiny_learner(Metrics(), n_batches=4, validation=False)
    reference.fit(steps=8)
    assert metrics["train/Loss"] == reference.cbstate.metrics_epoch["train/Loss"]


def test_fraction_follows_the_step_budget_and_epoch_units_need_a_length():
    scheduler = Scheduler({LearningRate: linear(0.1, 0.0, 1.0, unit="fraction")})
    learner = tiny_learner(scheduler, validation=False)
    learner.fit(steps=5, data=Endless())
    assert learner.cbstate.hyperparams["LearningRate"] == [
        (t, pytest.approx(0.1 * (1 - t / 5), abs=1e-15)) for t in range(5)
    ]
    epochs = tiny_learner(Scheduler({LearningRate: linear(0.1, 0.0, 1.0, unit="epoch")}))
    with pytest.raises(ScheduleError, match=r"no len\(\).*steps_per_epoch=N"):
        epochs.fit(steps=5, data=Endless())
    assert epochs.fitstate.total_steps == 0


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({}, "give n_epochs or steps=, not both and not neither"),
        ({"n_epochs": 2, "steps": 3}, "not both"),
        ({"steps": -1}, r"steps must be an int >= 0, got -1"),
        ({"steps": 2.5}, r"steps must be an int >= 0, got 2.5"),
        ({"steps": 4, "validate_every": 0}, r"validate_every must be an int >= 1"),
    ],
)
def test_bad_budgets_are_errors_before_any_step(kwargs, match):
    learner = tiny_learner()
    with pytest.raises(FluxTrainError, match=match):
        learner.fit(**kwargs)
    assert learner.fitstate.total_steps == 0


def test_validate_every_without_validation_data_is_an_error():
    with pytest.raises(FluxTrainError, match=r"validate_every=2 needs validation data"):
        tiny_learner(validation=False).fit(steps=4, validate_every=2)


def test_resume_a_step_budget_with_validate_every_mid_validation_is_bitwise():
    class StopAt(Callback):
        stateaccess = {"fitstate": Read}

        def __init__(self, phase, k):
            self.phase, self.k, self.calls = phase, k, 0

        def on_step_end(self, phase, learner):
            if phase.name == self.phase:
                self.calls += 1
                if self.calls == self.k:
                    raise KeyboardInterrupt

    def build(*callbacks):
        torch.manual_seed(0)
        model = torch.nn.Sequential(
            torch.nn.Linear(1, 8), torch.nn.Dropout(0.2), torch.nn.Linear(8, 1)
        )
        g = torch.Generator().manual_seed(1)
        x = torch.randn(40, 1, generator=g)
        train = DataLoader(TensorDataset(x, 3 * x), batch_size=8, shuffle=True, generator=g)
        valid = DataLoader(TensorDataset(x[:24], 3 * x[:24]), batch_size=8)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
        loss = torch.nn.functional.mse_loss
        return Learner(model, (train, valid), optimizer, loss, Recorder(), Metrics(), *callbacks,
                       usedefaultcallbacks=False)  # fmt: skip

    straight = build(StopAt("none", 0))
    straight.fit(steps=13, validate_every=3)
    for phase, k in [("valid", 5), ("valid", 3), ("train", 6), ("train", 9)]:
        interrupted = build(StopAt(phase, k))
        with pytest.raises(KeyboardInterrupt):
            interrupted.fit(steps=13, validate_every=3)
        state = copy.deepcopy(interrupted.state_dict())
        resumed = build(StopAt("none", 0))
        resumed.fit(steps=13, validate_every=3, resume=state)
        for key, value in straight.model.state_dict().items():
            assert torch.equal(resumed.model.state_dict()[key], value), (phase, k, key)
        assert resumed.cbstate.metrics_epoch == straight.cbstate.metrics_epoch, (phase, k)
        assert resumed.cbstate.metrics_at == straight.cbstate.metrics_at
        assert resumed.cbstate.history == straight.cbstate.history


def test_resume_with_another_budget_says_which_call_to_make():
    learner = tiny_learner()
    learner.fit(steps=6, validate_every=2)
    state = learner.state_dict()
    state["fitstate"]["ending"] = "interrupted"
    with pytest.raises(FluxTrainError, match=r"saved during a fit\(steps=6, validate_every=2\)"):
        tiny_learner().fit(steps=8, validate_every=2, resume=state)


def test_evaluate_is_a_weighted_mean_and_touches_no_record():
    learner = tiny_learner(Metrics(), Recorder(), Scheduler({LearningRate: 0.01}))
    learner.fit(2)
    before = copy.deepcopy(vars(learner.cbstate))
    weights = copy.deepcopy(learner.model.state_dict())
    learner.model.train()
    states = (random.getstate(), np.random.get_state()[1].copy(), torch.get_rng_state())
    data = regression_data(3, 5, seed=7) + regression_data(1, 2, seed=8)
    result = learner.evaluate(data)
    with torch.no_grad():
        losses = [
            (len(x), float(torch.nn.functional.mse_loss(learner.model(x), y))) for x, y in data
        ]
    expected = sum(n * v for n, v in losses) / sum(n for n, _ in losses)
    assert result == {"Loss": pytest.approx(expected, rel=1e-12)}
    assert vars(learner.cbstate) == before
    assert learner.model.training
    assert all(torch.equal(v, learner.model.state_dict()[k]) for k, v in weights.items())
    assert random.getstate() == states[0]
    assert (np.random.get_state()[1] == states[1]).all()
    assert torch.equal(torch.get_rng_state(), states[2])


def test_predict_is_the_models_outputs_in_eval_mode():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.Dropout(0.5))
    learner = Learner(model, None, torch.optim.SGD(model.parameters(), lr=0.1), None)
    batches = [(torch.randn(4, 2),), (torch.randn(3, 2),)]
    before = copy.deepcopy(vars(learner.cbstate))
    outputs = learner.predict(batches)
    model.eval()
    with torch.no_grad():
        expected = torch.cat([model(x) for (x,) in batches])
    assert torch.equal(outputs, expected) and outputs.shape == (7, 3)
    assert not outputs.requires_grad
    assert vars(learner.cbstate) == before

    class Pair(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.scale = torch.nn.Parameter(torch.tensor(2.0))

        def forward(self, x):
            return {"logits": x * self.scale}

    pair = Pair()
    dicts = Learner(pair, None, torch.optim.SGD(pair.parameters(), lr=0.1), None)
    out = dicts.predict([{"x": torch.ones(2)}, {"x": torch.zeros(1)}])
    assert isinstance(out, list) and [o["logits"].tolist() for o in out] == [[2.0, 2.0], [0.0]]


def test_evaluate_needs_metrics_and_data():
    with pytest.raises(FluxTrainError, match=r"evaluate: it reports the values of the Metrics"):
        tiny_learner().evaluate()
    with pytest.raises(FluxTrainError, match=r"evaluate: give an iterable of batches"):
        tiny_learner(Metrics(), validation=False).evaluate()


def test_the_best_checkpoint_outlives_rotation_and_load_best_restores_it(tmp_path):
    losses = iter([5.0, 1.0, 4.0, 3.0, 2.5, 6.0])

    class Script(Callback):
        """Replaces each validation loss with the next value of ``losses``."""

        stateaccess = {"cbstate.metrics_epoch": Write}

        def resolveconflict(self, other):
            return RunFirst(other)

        def on_epoch_end(self, phase, learner):
            if phase.name == "valid":
                learner.cbstate.metrics_epoch["valid/Loss"][-1] = next(losses)

    weights = {}

    class Snapshot(Callback):
        stateaccess = {"model": Read, "fitstate": Read}
        runafter = (Script,)

        def on_epoch_end(self, phase, learner):
            if phase.name == "valid":
                weights[learner.fitstate.total_steps] = learner.model.weight.detach().clone()

    checkpointer = Checkpointer(tmp_path, every_epochs=None, monitor="valid/Loss", keep_last=2)
    learner = tiny_learner(Metrics(), Script(), Snapshot(), checkpointer, n_batches=2)
    learner.fit(steps=12, validate_every=2)
    files = sorted(p.name for p in tmp_path.glob("checkpoint-*.pt"))
    assert len(files) == 3  # the newest two and the best
    best = checkpointer.best_checkpoint
    assert best is not None and best.name == "checkpoint-000002.pt"  # loss 1.0, after step 4
    other = tiny_learner(Metrics(), Script(), Snapshot(), Checkpointer(tmp_path), n_batches=2)
    assert checkpointer.load_best(other) == best
    assert torch.equal(other.model.weight, weights[4])
    assert not torch.equal(learner.model.weight, weights[4])


def test_early_stopping_can_restore_the_best_weights():
    seen = {}

    class Record(Callback):
        stateaccess = {"model": Read, "fitstate": Read, "cbstate.metrics_epoch": Read}
        runafter = (Metrics,)

        def on_epoch_end(self, phase, learner):
            if phase.name == "valid":
                loss = learner.cbstate.metrics_epoch["valid/Loss"][-1]
                seen[loss] = learner.model.weight.detach().clone()

    # a learning rate that overshoots: the validation loss rises after the first epochs
    learner = tiny_learner(
        Metrics(), Record(), EarlyStopping(patience=2, restore_best=True), lr=0.3
    )
    result = learner.fit(20)
    assert result.stopped_by == "EarlyStopping" and "its weights restored" in result.reason
    best = min(seen)
    assert torch.equal(learner.model.weight, seen[best])
    plain = tiny_learner(Metrics(), EarlyStopping(patience=2), lr=1.2, n_batches=2)
    plain.fit(20)
    assert not torch.equal(plain.model.weight, seen[best])


def test_a_dataloader_over_an_iterable_dataset_is_unsized():
    counter = Steps()
    learner = tiny_learner(counter, Recorder(), validation=False)
    learner.fit(2, data=DataLoader(Stream(), batch_size=4))  # 10 samples: 3 batches a pass
    assert counter.count == 6 and learner.fitstate.steps_per_epoch is None
    assert learner.cbstate.history["train"].samples == 20


def test_endless_data_with_epochs_never_ends_an_epoch_so_a_budget_is_needed():
    learner = tiny_learner(validation=False)
    result = learner.fit(steps=3, data=itertools.repeat(regression_data(1)[0]))
    assert result.steps_completed == 3
