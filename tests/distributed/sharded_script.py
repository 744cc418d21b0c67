"""One rank of a sharded (FSDP2) or DDP run for ``test_sharded.py``.

``python sharded_script.py SCENARIO OUT`` under ``torchrun`` joins the group with
``fluxtrain.distributed.init_distributed`` (so ``--max-restarts`` works), runs the scenario and
saves what the test checks to ``OUT/rank<r>.pt``. With ``KILL_AT=<rank>:<step>`` in its
environment, that rank SIGKILLs itself after that step in torchrun's first attempt.

``python sharded_script.py --serve RANK`` serves runs as ``ddp_script.py --serve`` does, one
per line ``SCENARIO OUT PORT WORLD_SIZE`` (ranks beyond the world size skip the line).

Every process prints ``worker <rank> <pid>`` first; rank 0 prints ``step <n>`` after each
training step.

Scenarios:
    fsdp_equivalence: two epochs of an MLP sharded with ``fully_shard``, with metrics and LR
        and momentum schedules, sharded checkpoints into ``OUT/checkpoints``.
    no_sync: gradients of two micro-batches on an FSDP2 model, the first under
        ``no_gradient_sync``.
    fsdp, ddp: a shuffled, dropout-using run checkpointing after every step into
        ``OUT/checkpoints``, resumed with ``fit(N, resume="latest")``; fsdp_async: the same
        with ``Checkpointer(..., async_save=True)``.
"""

from __future__ import annotations

import functools
import os
import signal
import sys
import warnings
from pathlib import Path
from typing import Any

import torch
from ddp_script import PrintSteps, dataset, mlp
from fork_server import run_forked
from torch.distributed.checkpoint.state_dict import (
    StateDictOptions,
    get_model_state_dict,
    get_optimizer_state_dict,
)
from torch.distributed.device_mesh import init_device_mesh
from torch.distributed.fsdp import fully_shard
from torch.utils.data import DataLoader

from fluxtrain import (
    Accuracy,
    Callback,
    Learner,
    LearningRate,
    Metrics,
    Momentum,
    Recorder,
    Schedule,
    Scheduler,
)
from fluxtrain.callbacks.checkpointer import Checkpointer
from fluxtrain.distributed import (
    destroy_distributed,
    init_distributed,
    no_gradient_sync,
    rank,
    world_size,
)

EPOCHS = 2
BATCH = 4  # per rank


def shard(model: torch.nn.Module) -> torch.nn.Module:
    """FSDP2 over every rank: each ``Linear``, then the whole model."""
    mesh = init_device_mesh("cpu", (world_size(),))
    for layer in model:
        if isinstance(layer, torch.nn.Linear):
            fully_shard(layer, mesh=mesh)
    fully_shard(model, mesh=mesh)
    return model


def build(
    kind: str, batch_size: int, *callbacks: Callback, dropout: float = 0.0, shuffle: bool = True
) -> Learner:
    """An MLP learner over ``ddp_script.dataset``, sharded first when ``kind == "fsdp"``."""
    model = mlp(dropout)
    if kind == "fsdp" and world_size() > 1:
        shard(model)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)  # after sharding
    shuffled = torch.Generator().manual_seed(7)
    train = DataLoader(dataset(), batch_size=batch_size, shuffle=shuffle, generator=shuffled)
    valid = DataLoader(dataset(32, seed=1), batch_size=batch_size)
    loss = torch.nn.functional.cross_entropy
    return Learner(model, (train, valid), optimizer, loss, *callbacks, usedefaultcallbacks=False)


def schedules() -> Scheduler:
    return Scheduler(
        {
            LearningRate: Schedule([0, 2], [0.1, 0.02]),  # epoch unit: the same on any world
            Momentum: Schedule([0, 2], [0.9, 0.8]),
        }
    )


def results(learner: Learner) -> dict[str, Any]:
    """The full (gathered) model and optimizer states, this rank's shards, the records."""
    model, optimizer = learner.model, learner.optimizer
    full = StateDictOptions(full_state_dict=True)
    local = {k: getattr(v, "_local_tensor", v) for k, v in model.state_dict().items()}
    return {
        "model": get_model_state_dict(model, options=full),
        "optimizer": get_optimizer_state_dict(model, optimizer, options=full),
        "local": local,
        "metrics_epoch": learner.cbstate.get("metrics_epoch"),
        "hyperparams": learner.cbstate.get("hyperparams"),
        "history": learner.cbstate.get("history"),
        "rng": torch.get_rng_state(),
        "model_class": type(model).__name__,
    }


class Steps(PrintSteps):
    """Rank 0 prints ``step <n>``; with ``kill`` this process SIGKILLs itself after that step."""

    def __init__(self, kill: int | None = None) -> None:
        self.kill = kill

    def on_step_end(self, phase, learner):
        super().on_step_end(phase, learner)
        if phase.name == "train" and learner.fitstate.total_steps == self.kill:
            os.kill(os.getpid(), signal.SIGKILL)


def equivalence(out: Path) -> dict[str, Any]:
    run = build(
        "fsdp",
        8 // world_size(),  # a global batch of 8
        Recorder(),
        Metrics(Accuracy()),
        schedules(),
        Checkpointer(out / "checkpoints"),
        shuffle=False,
    )
    fit = run.fit(EPOCHS)
    return {**results(run), "fit": fit}


def resume(kind: str, out: Path, async_save: bool = False) -> dict[str, Any]:
    kill, (who, _, step) = None, os.environ.get("KILL_AT", "").partition(":")
    if who and int(who) == rank() and os.environ.get("TORCHELASTIC_RESTART_COUNT") == "0":
        kill = int(step)
    callbacks: list[Callback] = [
        Recorder(),
        Metrics(Accuracy()),
        Scheduler({LearningRate: lambda t: 0.1 / (1 + 0.1 * t)}),
        Checkpointer(out / "checkpoints", every_steps=1, keep_last=2, async_save=async_save),
        Steps(kill),
    ]
    run = build(kind, BATCH, *callbacks, dropout=0.2)
    torch.manual_seed(1000 + rank())  # each rank's own dropout masks
    with warnings.catch_warnings(record=True) as caught:  # a skipped bad checkpoint
        warnings.simplefilter("always")
        fit = run.fit(EPOCHS, resume="latest")
    return {**results(run), "fit": fit, "warnings": [str(w.message) for w in caught]}


def no_sync(out: Path) -> dict[str, Any]:
    """Two micro-batches per rank on an FSDP2 model, the first under ``no_gradient_sync``."""
    model = shard(mlp())
    inputs, targets = dataset(16).tensors
    micro = [(inputs[i::4], targets[i::4]) for i in (rank(), rank() + 2)]
    loss = torch.nn.functional.cross_entropy
    with no_gradient_sync(model):
        loss(model(micro[0][0]), micro[0][1]).backward()
    inside = [p.grad is None for p in model.parameters()]  # nothing reduced yet
    loss(model(micro[1][0]), micro[1][1]).backward()  # reduces both micro-batches' sum
    full = StateDictOptions(full_state_dict=True)
    grads = {name: p.grad.full_tensor() for name, p in model.named_parameters()}
    return {"inside": inside, "grads": grads, "model": get_model_state_dict(model, options=full)}


SCENARIOS = {
    "no_sync": no_sync,
    "fsdp_equivalence": equivalence,
    "fsdp": functools.partial(resume, "fsdp"),
    "fsdp_async": functools.partial(resume, "fsdp", async_save=True),
    "ddp": functools.partial(resume, "ddp"),
}


def main(scenario: str, out: Path) -> None:
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    init_distributed(timeout=60)
    sys.stdout.flush()  # one write, atomic on a pipe the ranks share
    os.write(sys.stdout.fileno(), f"worker {rank()} {os.getpid()}\n".encode())
    try:
        found = SCENARIOS[scenario](out)
        torch.save(found, out / f"rank{rank()}.pt")
    except BaseException:
        destroy_distributed(barrier=False)  # the other ranks may be anywhere
        raise
    destroy_distributed()


def one_rank(scenario: str, out: str, port: str, rank: str, world_size: str) -> None:
    """This rank's part of one forked run, its errors in ``stderr<rank>.txt`` in ``out``."""
    with open(Path(out) / f"stderr{rank}.txt", "w") as stderr:
        os.dup2(stderr.fileno(), 2)
    os.environ.update(RANK=rank, LOCAL_RANK=rank, WORLD_SIZE=world_size, MASTER_PORT=port)
    main(scenario, Path(out))


def serve(rank: str) -> None:
    for line in sys.stdin:
        scenario, out, port, world = line.split()
        if int(rank) < int(world):
            run_forked(functools.partial(one_rank, scenario, out, port, rank, world))


if __name__ == "__main__":
    if sys.argv[1] == "--serve":
        serve(sys.argv[2])
    else:
        main(sys.argv[1], Path(sys.argv[2]))
