"""One rank of a distributed run for ``test_distributed.py``: ``python ddp_script.py SCENARIO OUT``.

Started once per rank with ``RANK``, ``WORLD_SIZE``, ``MASTER_ADDR`` and ``MASTER_PORT`` set (as
``torchrun`` does), it joins a gloo process group on 127.0.0.1, runs the scenario and saves
what the test checks to ``OUT/rank<r>.pt``; its stderr goes to ``OUT/stderr<r>.txt``. The test
imports the same functions to run its single-process references.

``python ddp_script.py --serve RANK WORLD_SIZE`` imports torch once, then runs one rank per
line ``SCENARIO OUT PORT`` read from stdin, each forked from it (so a test can start, kill and
restart runs without paying for the imports every time): it prints ``pid <pid>`` before the
run's own output and ``exit <code>`` after it (``-9`` for a SIGKILL).

Scenarios:
    equivalence: two epochs of an MLP with metrics, a schedule, progress output and a
        Checkpointer writing to ``OUT/checkpoints``; then each rank gives its own folder
        ``OUT/local<rank>`` (node-local storage), which must fail at ``FitBegin``.
    accumulate: gradient accumulation under DDP, counting the all-reduces with a comm hook;
        then the same with float16 mixed precision.
    resume: a shuffled, dropout-using run that checkpoints into ``OUT/checkpoints`` after
        every step and resumes with ``fit(N, resume="latest")``; rank 0 prints ``step <n>``.
"""

from __future__ import annotations

import datetime
import functools
import io
import os
import sys
import time
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from fork_server import run_forked
from torch.utils.data import DataLoader, TensorDataset

from fluxtrain import (
    Accuracy,
    Callback,
    Learner,
    LearningRate,
    Metrics,
    MetricsPrinter,
    MixedPrecision,
    ProgressPrinter,
    Read,
    Recorder,
    Schedule,
    Scheduler,
)
from fluxtrain.callbacks.checkpointer import Checkpointer
from fluxtrain.callbacks.gradients import GradientAccumulation
from fluxtrain.distributed import rank
from fluxtrain.distributed.allreduce import OrderedAllReduce
from fluxtrain.exceptions import CheckpointError

N_SAMPLES = 64
RESUME_EPOCHS = 3


def dataset(n: int = N_SAMPLES, seed: int = 0) -> TensorDataset:
    """Four classes of 8-dimensional points."""
    generator = torch.Generator().manual_seed(seed)
    inputs = torch.randn(n, 8, generator=generator)
    targets = (inputs[:, :4].argmax(1) + (inputs[:, 4] > 0).long()) % 4
    return TensorDataset(inputs, targets)


def mlp(dropout: float = 0.0) -> torch.nn.Module:
    torch.manual_seed(0)  # the same initial weights everywhere
    return torch.nn.Sequential(
        torch.nn.Linear(8, 16),
        torch.nn.ReLU(),
        torch.nn.Dropout(dropout) if dropout else torch.nn.Identity(),
        torch.nn.Linear(16, 4),
    )


def learner(batch_size: int, *callbacks: Callback, dropout: float = 0.0, **loader: Any) -> Learner:
    """An MLP learner over :func:`dataset`; under DDP ``batch_size`` is per rank."""
    model = mlp(dropout)
    train = DataLoader(dataset(), batch_size=batch_size, **loader)
    valid = DataLoader(dataset(32, seed=1), batch_size=batch_size)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    return Learner(
        model,
        (train, valid),
        optimizer,
        torch.nn.functional.cross_entropy,
        *callbacks,
        usedefaultcallbacks=False,
    )


def results(learner: Learner) -> dict[str, Any]:
    cbstate = learner.cbstate
    return {
        "model_class": type(learner.model).__name__,
        "model": learner.model.state_dict(),
        "optimizer": learner.optimizer.state_dict(),
        "metrics_epoch": cbstate.get("metrics_epoch"),
        "hyperparams": cbstate.get("hyperparams"),
        "history": cbstate.get("history"),
        "rng": torch.get_rng_state(),
    }


# -- equivalence ---------------------------------------------------------------------------------


def equivalence_learner(batch_size: int, *callbacks: Callback) -> Learner:
    schedule = Schedule([0, 2], [0.1, 0.02])  # epoch unit: the same time on every rank
    return learner(
        batch_size,
        Recorder(),
        Metrics(Accuracy()),
        Scheduler({LearningRate: schedule}),
        *callbacks,
    )


def equivalence(out: Path) -> dict[str, Any]:
    progress, table = io.StringIO(), io.StringIO()
    run = equivalence_learner(
        N_SAMPLES // 8 // 2,  # global batch 8 over 2 ranks
        ProgressPrinter(file=progress, interval=0),
        MetricsPrinter(file=table),
        Checkpointer(out / "checkpoints"),
    )
    fit = run.fit(2)
    again = equivalence_learner(
        N_SAMPLES // 8 // 2,
        ProgressPrinter(file=io.StringIO()),
        MetricsPrinter(file=io.StringIO()),
        Checkpointer(out / "checkpoints"),
    )
    resumed = again.fit(2, resume="latest")
    local = equivalence_learner(N_SAMPLES // 8 // 2, Checkpointer(out / f"local{rank()}"))
    try:
        local.fit(1)
    except CheckpointError as error:
        not_shared = str(error)
    return {
        **results(run),
        "fit": fit,
        "resumed": {**results(again), "fit": resumed},
        "not_shared": not_shared,
        "progress": progress.getvalue(),
        "table": table.getvalue(),
        "steps_per_epoch": run.fitstate.steps_per_epoch,
    }


# -- accumulate ----------------------------------------------------------------------------------


class CountAllReduces(Callback):
    """Counts the gradient buckets DDP all-reduces during each training step (the calls of the
    learner's wrapper's ``OrderedAllReduce`` hook)."""

    stateaccess = {"model": Read}

    def __init__(self) -> None:
        self.hook: Any = None
        self.per_step: list[int] = []

    def on_epoch_begin(self, phase, learner):
        if self.hook is None and isinstance(
            learner.model, torch.nn.parallel.DistributedDataParallel
        ):
            hooks = [hook.__self__ for hook, _ in learner.model._comm_hooks]
            self.hook = next(h for h in hooks if isinstance(h, OrderedAllReduce))

    def on_step_begin(self, phase, learner):
        self._before = self.hook.calls

    def on_step_end(self, phase, learner):
        if phase.name == "train":
            self.per_step.append(self.hook.calls - self._before)


def accumulate_learner(batch_size: int, *callbacks: Callback) -> Learner:
    return learner(batch_size, Metrics(), GradientAccumulation(2), *callbacks)


def accumulate(out: Path) -> dict[str, Any]:
    counter = CountAllReduces()
    run = accumulate_learner(4, counter)  # micro-batches of 4 per rank: 8 samples per update
    fit = run.fit(1)
    mixed = accumulate_learner(4, MixedPrecision(torch.float16))
    mixed_fit = mixed.fit(1)
    return {
        **results(run),
        "fit": fit,
        "allreduces": counter.per_step,
        "mixed": results(mixed),
        "mixed_fit": mixed_fit,
    }


SAMPLE_SIZES = ([3, 9], [6, 2])  # each rank's micro-batches: unequal within and across ranks


def samples_learner(batches: list[Any], accumulate: bool = True) -> Learner:
    """One update over ``batches`` (a list: each rank passes its own, never sharded)."""
    model = mlp()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    callbacks = [GradientAccumulation(2, normalize="samples")] if accumulate else []
    return Learner(
        model,
        batches,
        optimizer,
        torch.nn.functional.cross_entropy,
        *callbacks,
        usedefaultcallbacks=False,
    )


def samples(out: Path) -> dict[str, Any]:
    start = sum(map(sum, SAMPLE_SIZES[: rank()]))
    data, batches = dataset(), []
    for n in SAMPLE_SIZES[rank()]:
        batches.append(data[start : start + n])
        start += n
    run = samples_learner(batches)
    fit = run.fit(1)
    return {**results(run), "fit": fit}


# -- resume --------------------------------------------------------------------------------------


class PrintSteps(Callback):
    """Rank 0 prints ``step <n>`` after every training step; each step pauses a little."""

    stateaccess = {"fitstate": Read}

    def on_step_begin(self, phase, learner):
        if phase.name == "train":
            time.sleep(0.02)

    def on_step_end(self, phase, learner):
        if phase.name == "train" and rank() == 0:
            print(f"step {learner.fitstate.total_steps}", flush=True)


def resume(out: Path) -> dict[str, Any]:
    run = learner(
        8,
        Recorder(),
        Metrics(Accuracy()),
        Scheduler({LearningRate: lambda t: 0.1 / (1 + 0.1 * t)}),
        Checkpointer(out / "checkpoints", every_steps=1, keep_last=2),
        PrintSteps(),
        dropout=0.2,
        shuffle=True,
        generator=torch.Generator().manual_seed(7),
    )
    torch.manual_seed(1000 + rank())  # each rank's own dropout masks
    fit = run.fit(RESUME_EPOCHS, resume="latest")
    return {**results(run), "fit": fit}


SCENARIOS = {
    "equivalence": equivalence,
    "accumulate": accumulate,
    "samples": samples,
    "resume": resume,
}


def main(scenario: str, out: Path) -> None:
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    dist.init_process_group("gloo", timeout=datetime.timedelta(seconds=30))
    try:
        found = SCENARIOS[scenario](out)
        torch.save(found, out / f"rank{rank()}.pt")
    finally:
        dist.destroy_process_group()


def one_rank(scenario: str, out: str, port: str, rank: str, world_size: str) -> None:
    """This rank's part of one run, its errors written to ``stderr<rank>.txt`` in ``out``."""
    with open(Path(out) / f"stderr{rank}.txt", "w") as stderr:
        os.dup2(stderr.fileno(), 2)
    os.environ.update(RANK=rank, LOCAL_RANK=rank, WORLD_SIZE=world_size, MASTER_PORT=port)
    main(scenario, Path(out))


def serve(rank: str, world_size: str) -> None:
    torch.optim.SGD(mlp().parameters(), lr=0.1)  # the optimizer's first use imports much
    for line in sys.stdin:
        scenario, out, port = line.split()
        run_forked(functools.partial(one_rank, scenario, out, port, rank, world_size))


if __name__ == "__main__":
    if sys.argv[1] == "--serve":
        serve(sys.argv[2], sys.argv[3])
    else:
        main(sys.argv[1], Path(sys.argv[2]))
