"""What each shipped callback adds to one training step, measured on its hooks alone.

Fires the five events of a training step on a learner holding one callback, with a real batch,
outputs and loss in place, and prints µs per step (best of repeats) above a learner with none.
Model, loss and optimizer do not run, so the numbers are the callbacks' own cost, free of the
noise that a whole training step carries on a shared machine.

    python benchmarks/callback_cost.py
    FLUXTRAIN_FAST=1 python benchmarks/callback_cost.py   # a quick check that it runs
"""

from __future__ import annotations

import io
import os
import time
from collections.abc import Callable

import torch
from torch import nn

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
    TrainingPhase,
)
from fluxtrain.events import (
    BackwardBegin,
    BackwardEnd,
    EpochBegin,
    FitBegin,
    LossBegin,
    StepBegin,
    StepEnd,
)

STEP = (StepBegin, LossBegin, BackwardBegin, BackwardEnd, StepEnd)


FAST = bool(os.environ.get("FLUXTRAIN_FAST"))


def step_cost(
    callbacks: list[Callback], n: int = 200 if FAST else 20000, repeats: int = 5
) -> float:
    """Best µs per step of firing one training step's events with these callbacks."""
    g = torch.Generator().manual_seed(0)
    data = [(torch.randn(32, 32, generator=g), torch.randint(0, 10, (32,), generator=g))] * 100
    model = nn.Sequential(nn.Linear(32, 64), nn.ReLU(), nn.Linear(64, 10))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    learner = Learner(
        model, data, optimizer, nn.functional.cross_entropy, *callbacks, usedefaultcallbacks=False
    )
    phase = TrainingPhase()
    learner.fitstate.n_epochs, learner.fitstate.updates_per_epoch = 2, len(data)
    learner.fire(FitBegin, phase)
    learner.fire(EpochBegin, phase)
    inputs, targets = data[0]
    batch = learner.batch
    batch.inputs, batch.targets = inputs, targets
    batch.outputs = model(inputs)
    batch.loss = nn.functional.cross_entropy(batch.outputs, targets)
    fire, state = learner.fire, learner.fitstate
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(n):
            for event in STEP:
                fire(event, phase)
            state.total_steps += 1
        best = min(best, (time.perf_counter() - start) / n * 1e6)
    return best


def main() -> None:
    torch.set_num_threads(1)
    sink = io.StringIO()
    cases: list[tuple[str, Callable[[], list[Callback]]]] = [
        ("Recorder", lambda: [Recorder()]),
        ("Metrics(Loss)", lambda: [Metrics()]),
        ("Metrics(Loss, Accuracy)", lambda: [Metrics(Accuracy())]),
        ("StopOnNaNLoss", lambda: [StopOnNaNLoss()]),
        ("ProgressPrinter", lambda: [ProgressPrinter(file=sink)]),
        ("MetricsPrinter", lambda: [MetricsPrinter(file=sink)]),
        ("Scheduler.onecycle (LR, momentum)", lambda: [Scheduler.onecycle(2, 0.1)]),
        (
            "all of the above",
            lambda: [
                Recorder(),
                Metrics(Accuracy()),
                StopOnNaNLoss(),
                ProgressPrinter(file=sink),
                MetricsPrinter(file=sink),
                Scheduler.onecycle(2, 0.1),
            ],
        ),
    ]
    empty = step_cost([])
    print(f"{'callbacks':<36}  {'µs/step':>8}")
    print(f"{'(none: firing five events)':<36}  {empty:8.2f}")
    for name, make in cases:
        print(f"{name:<36}  {step_cost(make()) - empty:8.2f}")


if __name__ == "__main__":
    main()
