"""Checks that need a CUDA device; each is skipped cleanly without one."""

import io

import pytest
import torch

from fluxtrain import (
    Accuracy,
    Callback,
    Learner,
    Metrics,
    MetricsPrinter,
    ProgressPrinter,
    Recorder,
    Scheduler,
    StopOnNaNLoss,
    ToDevice,
)

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


class SyncGuard(Callback):
    """Turns CUDA's sync debug mode to "error" for the steps of each epoch."""

    def __init__(self, on: bool):
        self.on = on

    def on_epoch_begin(self, phase, learner):
        if self.on:
            torch.cuda.set_sync_debug_mode("error")

    def on_epoch_end(self, phase, learner):
        if not self.on:
            torch.cuda.set_sync_debug_mode(0)


def test_default_callbacks_and_scheduler_make_no_host_sync_per_step():
    g = torch.Generator().manual_seed(0)
    batches = [
        (torch.randn(32, 16, generator=g), torch.randint(0, 4, (32,), generator=g))
        for _ in range(20)
    ]
    model = torch.nn.Sequential(torch.nn.Linear(16, 32), torch.nn.ReLU(), torch.nn.Linear(32, 4))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    out = io.StringIO()
    learner = Learner(
        model,
        (batches, batches[:5]),
        optimizer,
        torch.nn.functional.cross_entropy,
        SyncGuard(on=False),  # first at EpochEnd: off before metrics are read
        ToDevice("cuda"),
        Scheduler.onecycle(2, 0.1),
        Recorder(),
        Metrics(Accuracy()),
        StopOnNaNLoss(),
        ProgressPrinter(file=out, interval=0.0),
        MetricsPrinter(file=out),
        SyncGuard(on=True),  # last at EpochBegin: on for the steps only
        usedefaultcallbacks=False,
    )
    try:
        result = learner.fit(2)
    finally:
        torch.cuda.set_sync_debug_mode(0)
    assert result.steps_completed == 40
    assert "loss=" in out.getvalue()
    assert len(learner.cbstate.metrics_epoch["valid/Accuracy"]) == 2


def test_stop_on_nan_loss_stops_within_a_few_steps_without_syncing():
    batches = [(torch.ones(4, 1), torch.ones(4, 1))] * 50
    model = torch.nn.Linear(1, 1)
    learner = Learner(
        model,
        batches,
        torch.optim.SGD(model.parameters(), lr=0.1),
        lambda o, t: ((o - t) ** 2).mean() * float("nan"),
        ToDevice("cuda"),
        StopOnNaNLoss(),
        usedefaultcallbacks=False,
    )
    result = learner.fit(1)
    assert result.stopped_by == "StopOnNaNLoss"
    assert result.steps_completed < 50
