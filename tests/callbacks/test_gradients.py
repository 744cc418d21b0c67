import pytest
import torch

from fluxtrain import (
    Callback,
    FluxTrainError,
    GradientClipNorm,
    GradientClipping,
    HyperParameterError,
    Learner,
    LearningRate,
    MixedPrecision,
    Read,
    Schedule,
    Scheduler,
)
from fluxtrain.callbacks.gradients import GradientAccumulation
from fluxtrain.testing import tiny_learner


class OptimizerSteps(Callback):
    """Counts real optimizer steps and the learning rate each one used."""

    stateaccess = {"optimizer": Read}

    def __init__(self):
        self.lrs = []

    def init(self, learner):
        original = learner.optimizer.step
        lrs = self.lrs

        def counted(*args, **kwargs):
            lrs.append(learner.optimizer.param_groups[0]["lr"])
            return original(*args, **kwargs)

        learner.optimizer.step = counted


def linear_learner(batches, *callbacks, lr=0.1):
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 1)
    return Learner(
        model,
        batches,
        torch.optim.SGD(model.parameters(), lr=lr),
        torch.nn.functional.mse_loss,
        *callbacks,
        usedefaultcallbacks=False,
    )


def make_batches(n, size, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [
        (torch.randn(size, 3, generator=g), torch.randn(size, 1, generator=g)) for _ in range(n)
    ]


def test_accumulation_of_4_equals_a_4x_larger_batch_on_a_linear_model():
    micro = make_batches(8, 5)
    large = [
        (torch.cat([x for x, _ in micro[i : i + 4]]), torch.cat([y for _, y in micro[i : i + 4]]))
        for i in (0, 4)
    ]
    accumulated = linear_learner(micro, GradientAccumulation(4))
    plain = linear_learner(large)
    assert accumulated.fit(2).steps_completed == plain.fit(2).steps_completed == 4
    for a, b in zip(accumulated.model.parameters(), plain.model.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)


def test_scheduler_time_advances_once_per_4_micro_batches():
    steps = OptimizerSteps()
    scheduler = Scheduler({LearningRate: lambda t: 0.1 / (1 + t)})
    learner = linear_learner(make_batches(8, 5), GradientAccumulation(4), scheduler, steps)
    learner.fit(2)
    assert learner.cbstate.hyperparams["LearningRate"] == [(t, 0.1 / (1 + t)) for t in range(4)]
    assert steps.lrs == [0.1 / (1 + t) for t in range(4)]


def test_epoch_unit_counts_updates_per_epoch_under_accumulation():
    schedule = Schedule([0, 2], [0.0, 1.0], unit="epoch")  # 8 batches, 2 updates per epoch
    scheduler = Scheduler({LearningRate: schedule})
    learner = linear_learner(make_batches(8, 5), GradientAccumulation(4), scheduler)
    learner.fit(2)
    assert learner.fitstate.updates_per_epoch == 2
    assert learner.cbstate.hyperparams["LearningRate"] == [(t, t / 4) for t in range(4)]


def test_accumulation_updates_at_the_end_of_an_epoch_with_a_short_group():
    steps = OptimizerSteps()
    learner = linear_learner(make_batches(6, 5), GradientAccumulation(4), steps)
    assert learner.fit(1).steps_completed == 2
    assert len(steps.lrs) == 2


def test_float16_scaler_skips_the_step_with_inf_gradients_and_schedules_stay_aligned():
    batches = make_batches(4, 5)
    batches[1] = (batches[1][0] * 1e5, batches[1][1])  # float16 overflow in this step only
    steps = OptimizerSteps()
    scaler = torch.amp.GradScaler("cpu", init_scale=1.0, growth_interval=1000)
    precision = MixedPrecision(torch.float16, scaler=scaler, device_type="cpu")
    scheduler = Scheduler({LearningRate: lambda t: 0.1 / (1 + t)})
    learner = linear_learner(batches, precision, scheduler, steps)
    result = learner.fit(1)
    assert result.steps_completed == 3
    assert learner.cbstate.mixed_precision == {"skipped_steps": 1}
    assert learner.cbstate.hyperparams["LearningRate"] == [(t, 0.1 / (1 + t)) for t in range(3)]
    assert steps.lrs == [0.1 / (1 + t) for t in range(3)]
    assert scaler.get_scale() == 0.5
    assert all(torch.isfinite(p).all() for p in learner.model.parameters())


def test_clipping_sees_unscaled_gradients_and_its_norm_can_be_scheduled():
    seen = []

    class Norms(Callback):
        stateaccess = {"model": Read}
        runafter = (GradientClipping,)

        def on_backward_end(self, phase, learner):
            seen.append(torch.cat([p.grad.flatten() for p in learner.model.parameters()]).norm())

    clip = GradientClipping(1.0)
    scheduler = Scheduler({GradientClipNorm: lambda t: 0.5 / (1 + t)})
    precision = MixedPrecision(torch.float16, scaler=torch.amp.GradScaler("cpu", init_scale=8.0))
    batches = [(x * 10, y * 10) for x, y in make_batches(3, 5)]
    learner = linear_learner(batches, Norms(), clip, scheduler, precision)
    learner.fit(1)
    assert learner.cbstate.mixed_precision == {"skipped_steps": 0}
    assert [cb.name for cb in learner.callbacks][-1] == "Norms"
    assert len(seen) == 3
    for t, norm in enumerate(seen):
        assert norm.item() == pytest.approx(0.5 / (1 + t), rel=1e-3)
    assert clip.max_norm == 0.5 / 3


def test_bad_arguments():
    with pytest.raises(FluxTrainError, match="n must be an int >= 1, got 0"):
        GradientAccumulation(0)
    with pytest.raises(FluxTrainError, match="max_norm must be a number > 0, got -1"):
        GradientClipping(-1)
    with pytest.raises(FluxTrainError, match="dtype must be torch.bfloat16 or torch.float16"):
        MixedPrecision(torch.float32)
    learner = tiny_learner(Scheduler({GradientClipNorm: 1.0}))
    with pytest.raises(HyperParameterError, match="no GradientClipping callback"):
        learner.fit(1)
