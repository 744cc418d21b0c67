"""Custom phases inside fit, several optimizers, and the pieces of the training step."""

from __future__ import annotations

import copy

import pytest
import torch

from fluxtrain import (
    Callback,
    CancelFitting,
    FluxTrainError,
    GradientAccumulation,
    GradientClipping,
    HyperParameterError,
    Learner,
    LearningRate,
    Metrics,
    MixedPrecision,
    Read,
    Recorder,
    Scheduler,
    TrainingPhase,
    ValidationPhase,
)
from fluxtrain.events import EVENTS


class Pair(torch.nn.Module):
    """A generator and a discriminator, as in a GAN on one-dimensional data."""

    def __init__(self):
        super().__init__()
        self.generator = torch.nn.Linear(2, 1)
        self.discriminator = torch.nn.Linear(1, 1)


class PairPhase(TrainingPhase):
    """The discriminator's update, then the generator's, each with its own loss."""

    def step(self, learner, batch):
        self.begin(learner, batch)
        real = learner.batch.inputs
        pair = learner.model
        noise = torch.randn(real.shape[0], 2)
        fake = self.forward(learner, pair.generator, noise)
        logits = pair.discriminator(torch.cat([real, fake.detach()]))
        labels = torch.cat([torch.ones(len(real), 1), torch.zeros(len(real), 1)])
        loss_d = torch.nn.functional.binary_cross_entropy_with_logits(logits, labels)
        if self.backward(learner, loss_d, "discriminator"):
            self.update(learner)
        fooled = pair.discriminator(fake)
        loss_g = torch.nn.functional.binary_cross_entropy_with_logits(
            fooled, torch.ones_like(fooled)
        )
        if self.backward(learner, loss_g, "generator"):
            self.update(learner)
        self.end(learner)


class PairValidation(ValidationPhase):
    def step(self, learner, batch):
        self.begin(learner, batch)
        fake = self.forward(learner, learner.model.generator, torch.zeros(len(batch[0]), 2))
        learner.batch.loss = (fake - learner.batch.inputs).pow(2).mean()
        self.end(learner)


def pair_learner(*callbacks, n_batches=4, seed=0):
    torch.manual_seed(seed)
    model = Pair()
    g = torch.Generator().manual_seed(0)
    data = [(torch.randn(8, 1, generator=g) + 2.0,) for _ in range(n_batches)]
    optimizers = {
        "generator": torch.optim.Adam(model.generator.parameters(), lr=1e-2),
        "discriminator": torch.optim.SGD(model.discriminator.parameters(), lr=1e-1, momentum=0.9),
    }
    return Learner(model, (data, data[:2]), optimizers, None, *callbacks, usedefaultcallbacks=False)


class Events(Callback):
    stateaccess = {"batch.updating": Read}

    def __init__(self):
        self.log = []

    def __getattribute__(self, name):
        return object.__getattribute__(self, name)


for _event in EVENTS:

    def _hook(self, phase, learner, _name=_event.__name__):
        updating = learner.batch.updating if _name in ("BackwardBegin", "BackwardEnd") else ()
        self.log.append((_name, phase.name, *updating))

    setattr(Events, _event.hook, _hook)


def test_events_of_a_fit_with_a_two_optimizer_phase():
    events = Events()
    learner = pair_learner(events, n_batches=1)
    result = learner.fit(1, phases=(PairPhase(), PairValidation()))
    assert result.steps_completed == 1
    assert events.log == [
        ("FitBegin", "train"),
        ("EpochBegin", "train"),
        ("StepBegin", "train"),
        ("LossBegin", "train"),
        ("BackwardBegin", "train", "discriminator"),
        ("BackwardEnd", "train", "discriminator"),
        ("BackwardBegin", "train", "generator"),
        ("BackwardEnd", "train", "generator"),
        ("StepEnd", "train"),
        ("EpochEnd", "train"),
        ("EpochBegin", "valid"),
        ("StepBegin", "valid"),
        ("LossBegin", "valid"),
        ("StepEnd", "valid"),
        ("EpochEnd", "valid"),
        ("FitEnd", "train"),
    ]


def test_each_optimizer_steps_with_its_own_scheduled_learning_rate():
    steps = []
    scheduler = Scheduler(
        {
            LearningRate(optimizer="generator"): lambda t: 0.01 / (1 + t),
            LearningRate(optimizer="discriminator"): lambda t: 0.1 * 0.5**t,
        }
    )
    learner = pair_learner(scheduler)
    for name, optimizer in learner.optimizers.items():

        def record(opt, args, kwargs, name=name):
            steps.append((name, opt.param_groups[0]["lr"]))

        optimizer.register_step_pre_hook(record)
    learner.fit(2, phases=(PairPhase(), None))
    expected = [
        pair
        for t in range(8)
        for pair in (("discriminator", 0.1 * 0.5**t), ("generator", 0.01 / (1 + t)))
    ]
    assert steps == expected
    records = learner.cbstate.hyperparams
    assert records["LearningRate[optimizer=generator]"] == [(t, 0.01 / (1 + t)) for t in range(8)]
    assert records["LearningRate[optimizer=discriminator]"] == [(t, 0.1 * 0.5**t) for t in range(8)]


def test_a_backward_for_one_optimizer_leaves_the_other_gradients_alone():
    learner = pair_learner()
    learner.fit(1, phases=(PairPhase(), None))
    # the generator's loss flows through the discriminator, whose gradients stay unset
    assert all(p.grad is None for p in learner.model.discriminator.parameters())
    assert all(p.grad is None for p in learner.model.generator.parameters())


def weights(learner):
    return {
        "model": copy.deepcopy(learner.model.state_dict()),
        "optimizers": {n: copy.deepcopy(o.state_dict()) for n, o in learner.optimizers.items()},
    }


def test_a_state_dict_round_trip_mid_epoch_continues_bitwise_with_both_optimizers():
    def scheduler():
        return Scheduler({LearningRate(optimizer="discriminator"): lambda t: 0.1 / (1 + t)})

    phases = (PairPhase(), PairValidation())
    straight = pair_learner(scheduler(), Recorder(), Metrics())
    torch.manual_seed(1)
    straight.fit(2, phases=phases)

    class Stop(Callback):
        stateaccess = {"fitstate": Read}

        def on_step_end(self, phase, learner):
            if phase.name == "train" and learner.fitstate.total_steps == 6:
                raise KeyboardInterrupt

    interrupted = pair_learner(scheduler(), Recorder(), Metrics(), Stop())
    torch.manual_seed(1)
    with pytest.raises(KeyboardInterrupt):
        interrupted.fit(2, phases=phases)
    state = copy.deepcopy(interrupted.state_dict())
    assert set(state["optimizer"]) == {"generator", "discriminator"}
    assert state["optimizer_class"] == {"generator": "Adam", "discriminator": "SGD"}

    resumed = pair_learner(scheduler(), Recorder(), Metrics(), Stop(), seed=5)
    resumed.fit(2, phases=phases, resume=state)
    ours, theirs = weights(resumed), weights(straight)
    for key, value in theirs["model"].items():
        assert torch.equal(ours["model"][key], value)
    for name in ("generator", "discriminator"):
        for index, entry in theirs["optimizers"][name]["state"].items():
            for k, v in entry.items():
                assert torch.equal(
                    torch.as_tensor(ours["optimizers"][name]["state"][index][k]), torch.as_tensor(v)
                )
    assert resumed.cbstate.metrics_epoch == straight.cbstate.metrics_epoch
    assert resumed.cbstate.hyperparams == straight.cbstate.hyperparams


def test_a_checkpoint_of_other_optimizers_is_a_clear_error():
    learner = pair_learner()
    state = learner.state_dict()
    state["optimizer"] = {"generator": state["optimizer"]["generator"]}
    with pytest.raises(FluxTrainError, match=r"holds the optimizers \['generator'\].*by name"):
        pair_learner().load_state_dict(state)


def test_clipping_and_mixed_precision_act_on_each_optimizers_update():
    norms = []

    class Norms(Callback):
        stateaccess = {"model": Read, "batch.updating": Read}
        runafter = (GradientClipping,)

        def on_backward_end(self, phase, learner):
            part = getattr(learner.model, learner.batch.updating[0])
            norms.append(torch.cat([p.grad.flatten() for p in part.parameters()]).norm().item())

    scaler = torch.amp.GradScaler("cpu", init_scale=256.0)
    precision = MixedPrecision(torch.float16, scaler=scaler, device_type="cpu")
    learner = pair_learner(precision, GradientClipping(1e-3), Norms(), n_batches=2)
    learner.fit(1, phases=(PairPhase(), None))
    assert len(norms) == 4
    assert norms == [pytest.approx(1e-3, rel=1e-3)] * 4
    assert learner.cbstate.mixed_precision == {"skipped_steps": 0}


def test_gradient_accumulation_counts_one_micro_batch_per_step_of_two_updates():
    calls = []
    learner = pair_learner(GradientAccumulation(2), n_batches=4)
    for name, optimizer in learner.optimizers.items():
        optimizer.register_step_pre_hook(lambda opt, a, k, name=name: calls.append(name))
    assert learner.fit(1, phases=(PairPhase(), None)).steps_completed == 2
    assert calls == ["discriminator", "generator"] * 2


def test_unknown_optimizer_names_are_errors_before_any_step():
    learner = pair_learner(Scheduler({LearningRate(optimizer="critic"): 0.1}))
    with pytest.raises(HyperParameterError, match=r"no optimizer named 'critic'.*'generator'"):
        learner.fit(1, phases=(PairPhase(), None))
    assert learner.fitstate.total_steps == 0

    class Misnamed(TrainingPhase):
        def step(self, learner, batch):
            self.begin(learner, batch)
            self.backward(learner, learner.model.generator(torch.zeros(1, 2)).sum(), "gen")

    with pytest.raises(FluxTrainError, match=r"no optimizer named 'gen'"):
        pair_learner().fit(1, phases=(Misnamed(), None))


@pytest.mark.parametrize(
    "phases",
    [(ValidationPhase(), None), (TrainingPhase(),), (TrainingPhase(), TrainingPhase()), "train"],
)
def test_bad_phases_are_an_error_at_fit(phases):
    with pytest.raises(
        FluxTrainError, match=r"phases must be \(training_phase, validation_phase\)"
    ):
        pair_learner().fit(1, phases=phases)


def test_a_phase_that_cancels_the_fit_reports_it():
    class Once(TrainingPhase):
        def step(self, learner, batch):
            raise CancelFitting("enough")

    assert pair_learner().fit(1, phases=(Once(), None)).reason == "enough"
