import io
import math
from collections import namedtuple

import pytest
import torch

from fluxtrain import (
    Accuracy,
    Callback,
    CustomCallback,
    EpochEnd,
    FitResult,
    FluxTrainError,
    Learner,
    Metrics,
    MetricsPrinter,
    ProgressPrinter,
    Read,
    Recorder,
    StepEnd,
    StopOnNaNLoss,
    ToDevice,
    TrainingPhase,
    ValidationPhase,
    throttle,
)
from fluxtrain.batches import move
from fluxtrain.callbacks.recorder import PhaseHistory
from fluxtrain.events import EVENTS
from fluxtrain.testing import Unsized, regression_data, tiny_learner


def classification_learner(*callbacks, sizes=(4, 4, 3), seed=0):
    generator = torch.Generator().manual_seed(seed)
    batches = [
        (torch.randn(n, 5, generator=generator), torch.randint(0, 3, (n,), generator=generator))
        for n in sizes
    ]
    model = torch.nn.Linear(5, 3)
    return Learner(
        model,
        batches,
        torch.optim.SGD(model.parameters(), lr=0.0),
        torch.nn.functional.cross_entropy,
        *callbacks,
        usedefaultcallbacks=False,
    ), batches


def test_every_event_has_exactly_one_hook_on_callback():
    hooks = [name for name in vars(Callback) if name.startswith("on_")]
    assert sorted(hooks) == sorted(event.hook for event in EVENTS)
    assert len({event.hook for event in EVENTS}) == len(EVENTS) == 9


def test_metrics_epoch_mean_is_weighted_by_batch_size_with_short_last_batch():
    learner, batches = classification_learner(Metrics(Accuracy()))
    learner.fit(1)
    model = learner.model
    with torch.no_grad():
        losses = [
            torch.nn.functional.cross_entropy(model(x), y, reduction="sum").item()
            for x, y in batches
        ]
        correct = [(model(x).argmax(-1) == y).sum().item() for x, y in batches]
    n = sum(len(y) for _, y in batches)
    metrics = learner.cbstate.metrics_epoch
    assert metrics["train/Loss"] == [pytest.approx(sum(losses) / n, rel=1e-6)]
    assert metrics["train/Accuracy"] == [pytest.approx(sum(correct) / n, rel=1e-7)]
    unweighted = sum(loss / len(y) for loss, (_, y) in zip(losses, batches)) / 3
    assert sum(losses) / n != pytest.approx(unweighted)


def test_metrics_accept_functions_and_torchmetrics_like_objects():
    class MeanTarget:
        def __init__(self):
            self.reset()

        def reset(self):
            self.total, self.count = 0.0, 0

        def update(self, preds, target):
            self.total += target.sum().item()
            self.count += len(target)

        def compute(self):
            return torch.tensor(self.total / self.count)

    def max_output(outputs, targets):
        return outputs.max()

    learner, batches = classification_learner(Metrics(max_output, MeanTarget()))
    learner.fit(1)
    metrics = learner.cbstate.metrics_epoch
    targets = torch.cat([y for _, y in batches]).float()
    assert metrics["train/MeanTarget"] == [pytest.approx(targets.mean().item(), rel=1e-12)]
    with torch.no_grad():
        maxima = [learner.model(x).max().item() * len(y) for x, y in batches]
    assert metrics["train/max_output"] == [pytest.approx(sum(maxima) / len(targets), rel=1e-6)]
    step = learner.cbstate.metrics_step
    assert set(step) == {"train/Loss", "train/max_output"}
    assert isinstance(step["train/Loss"], torch.Tensor)


def test_metrics_bad_input_and_duplicate_names():
    with pytest.raises(FluxTrainError, match="expected a Metric, an object with update"):
        Metrics(3)
    with pytest.raises(FluxTrainError, match="two metrics are named Accuracy"):
        Metrics(Accuracy(), Accuracy())


def test_no_host_reads_of_the_loss_per_step_with_default_callbacks(monkeypatch):
    reads = []
    for name in ("item", "cpu", "tolist", "__float__", "__bool__"):
        original = getattr(torch.Tensor, name)

        def counting(self, *args, _original=original, _name=name, **kwargs):
            reads.append(_name)
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(torch.Tensor, name, counting)
    learner = tiny_learner(n_batches=50, usedefaultcallbacks=True)
    stop = next(cb for cb in learner.callbacks if isinstance(cb, StopOnNaNLoss))
    learner.remove_callback(stop)  # checks before each update by design, documented
    for cb in learner.callbacks:
        if isinstance(cb, ProgressPrinter):
            cb.file, cb.interval = io.StringIO(), 3600.0
        if isinstance(cb, MetricsPrinter):
            cb.file = io.StringIO()
    learner.fit(2)
    # only at epoch ends: 2 epochs x 2 phases x (Loss.compute + the bar's last redraw)
    assert reads == ["__float__"] * 8


def test_recorder_counts_steps_epochs_and_samples_per_phase():
    learner, _ = classification_learner(Recorder())
    learner.fit(2)
    assert learner.cbstate.history == {"train": PhaseHistory(2, 6, 3, 22)}


def test_stop_on_nan_stops_before_the_weights_change():
    bad = regression_data(3)
    bad[1] = (bad[1][0], bad[1][1] * float("nan"))
    learner = tiny_learner(StopOnNaNLoss())
    result = learner.fit(1, bad)
    assert result == FitResult(0, 1, "StopOnNaNLoss", "loss is nan at training step 1")
    assert math.isfinite(learner.model.weight.item())
    assert learner.model.weight.grad is None


def test_progress_printer_shows_bars_with_loss_also_without_len():
    out = io.StringIO()
    learner = tiny_learner(ProgressPrinter(file=out, interval=0.0))
    learner.fit(1, (Unsized(regression_data(3)), regression_data(2)))
    text = out.getvalue()
    assert "Epoch 1 train" in text and "Epoch 1 valid" in text
    assert "loss=" in text
    assert "2/2" in text


def test_metrics_printer_prints_a_row_per_phase_epoch():
    out = io.StringIO()
    learner, _ = classification_learner(Metrics(Accuracy()), MetricsPrinter(file=out))
    learner.fit(2)
    lines = out.getvalue().splitlines()
    metrics = learner.cbstate.metrics_epoch
    assert lines[0].split() == ["epoch", "phase", "Loss", "Accuracy"]
    assert [line.split()[:2] for line in lines[1:]] == [["1", "train"], ["2", "train"]]
    assert float(lines[2].split()[2]) == pytest.approx(metrics["train/Loss"][1], abs=5e-5)


def test_custom_callback_runs_at_its_event_in_its_phase():
    seen = []
    cb = CustomCallback(
        lambda learner: seen.append(learner.batch.loss is not None),
        StepEnd,
        ValidationPhase,
        stateaccess={"batch.loss": Read},
    )
    tiny_learner(cb, n_batches=2).fit(1)
    assert seen == [True, True]
    with pytest.raises(FluxTrainError, match="event must be an event class"):
        CustomCallback(print, "StepEnd")


def test_throttle_every_and_seconds():
    calls = []
    cb = CustomCallback(lambda learner: calls.append(1), StepEnd, TrainingPhase)
    tiny_learner(throttle(cb, StepEnd, every=3), n_batches=7, validation=False).fit(1)
    assert len(calls) == 2
    calls.clear()
    tiny_learner(throttle(cb, StepEnd, seconds=3600), n_batches=7, validation=False).fit(1)
    assert len(calls) == 1
    with pytest.raises(FluxTrainError, match="exactly one of every= or seconds="):
        throttle(cb, StepEnd)
    with pytest.raises(FluxTrainError, match="has no hook for EpochEnd"):
        throttle(cb, EpochEnd, every=2)


def test_move_handles_nested_structures():
    Pair = namedtuple("Pair", "a b")
    value = {"x": [torch.ones(1, dtype=torch.float64)], "p": Pair(torch.zeros(1), 3), "s": "t"}
    moved = move(value, torch.device("cpu"))
    assert moved["x"][0] is value["x"][0]
    assert isinstance(moved["p"], Pair) and moved["p"].b == 3 and moved["s"] == "t"


def test_to_device_moves_model_once_and_batches_every_step():
    moves = []

    class Recording(torch.nn.Linear):
        def to(self, *args, **kwargs):
            moves.append(args)
            return super().to(*args, **kwargs)

    model = Recording(1, 1)
    learner = Learner(
        model,
        regression_data(2),
        torch.optim.SGD(model.parameters(), lr=0.1),
        torch.nn.functional.mse_loss,
        ToDevice("cpu"),
        usedefaultcallbacks=False,
    )
    learner.fit(2)
    assert moves == []  # already there: never moved


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_to_device_on_cuda_moves_model_once_and_keeps_optimizer_params():
    model = torch.nn.Linear(1, 1)
    params = list(model.parameters())
    learner = Learner(
        model,
        regression_data(2),
        torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9),
        torch.nn.functional.mse_loss,
        ToDevice("cuda"),
        usedefaultcallbacks=False,
    )
    learner.fit(2)
    assert all(p.device.type == "cuda" for p in learner.optimizer.param_groups[0]["params"])
    assert [id(p) for p in model.parameters()] == [id(p) for p in params]
    assert learner.batch.inputs.device.type == "cuda"
