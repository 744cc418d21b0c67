"""A training run for the kill test: ``python tests/checkpoints/resume_script.py FOLDER OUT
[MODE]``.

MODE ``epochs`` (the default) runs ``fit(4)``, ``steps`` runs ``fit(steps=20, validate_every=4)``
with a Checkpointer that also keeps the best by ``valid/Loss``.

Trains a tiny MLP on generated data with ``fit(N_EPOCHS, resume="latest")``, checkpointing into
FOLDER after every training step, and prints ``step <n>`` after each training step. Killed
and started again it continues from its newest good checkpoint; the run that completes saves
the weights, the optimizer state and the recorded history to OUT.

``python tests/checkpoints/resume_script.py --serve`` imports torch once, then runs one training
process per line ``FOLDER OUT`` read from stdin, each forked from it (so a test can kill and restart
runs without paying for the import every time): it prints ``pid <pid>`` before the run's own
output and ``exit <code>`` after it (``-9`` for a SIGKILL).
"""

from __future__ import annotations

import functools
import sys
import time

import torch
from fork_server import run_forked
from torch.utils.data import DataLoader, TensorDataset

from fluxtrain import Callback, Learner, LearningRate, Metrics, Momentum, Read, Recorder
from fluxtrain.callbacks.checkpointer import Checkpointer

try:
    from fluxtrain.scheduler import Scheduler
except ImportError:  # the scheduler is optional for this test
    Scheduler = None  # type: ignore[assignment,misc]

N_EPOCHS = 4
STEPS_PER_EPOCH = 6
N_STEPS, VALIDATE_EVERY = 20, 4  # the "steps" mode: fit(steps=20, validate_every=4)
torch.use_deterministic_algorithms(True)  # here, so that a --serve process pays its import once


class PrintSteps(Callback):
    """Prints ``step <n>`` after every training step; pauses a little before each one."""

    stateaccess = {"fitstate": Read}

    def on_step_begin(self, phase, learner):
        if phase.name == "train":
            time.sleep(0.004)

    def on_step_end(self, phase, learner):
        if phase.name == "train":
            print(f"step {learner.fitstate.total_steps}", flush=True)


def build(folder: str, mode: str = "epochs") -> Learner:
    torch.manual_seed(0)
    torch.set_num_threads(1)
    data = torch.Generator().manual_seed(1)
    inputs = torch.randn(8 * STEPS_PER_EPOCH, 4, generator=data)
    targets = inputs @ torch.tensor([[1.0], [-2.0], [0.5], [3.0]]) + 0.1
    train = DataLoader(
        TensorDataset(inputs, targets),
        batch_size=8,
        shuffle=True,
        generator=torch.Generator().manual_seed(2),
    )
    valid = DataLoader(TensorDataset(inputs[:16], targets[:16]), batch_size=8)
    model = torch.nn.Sequential(
        torch.nn.Linear(4, 16), torch.nn.ReLU(), torch.nn.Dropout(0.1), torch.nn.Linear(16, 1)
    )
    optimizer = torch.optim.SGD(model.parameters(), lr=0.02, momentum=0.9)
    callbacks: list[Callback] = [Recorder(), Metrics()]
    if Scheduler is not None:
        callbacks.append(
            Scheduler(
                {
                    LearningRate: lambda t: 0.02 / (1 + 0.1 * t),
                    Momentum: lambda t: 0.9 - 0.01 * (t % 5),
                }
            )
        )
    monitor = "valid/Loss" if mode == "steps" else None
    callbacks += [Checkpointer(folder, every_steps=1, keep_last=2, monitor=monitor), PrintSteps()]
    return Learner(
        model,
        (train, valid),
        optimizer,
        torch.nn.functional.mse_loss,
        *callbacks,
        usedefaultcallbacks=False,
    )


def main(folder: str, out: str, mode: str = "epochs") -> None:
    learner = build(folder, mode)
    if mode == "steps":
        result = learner.fit(steps=N_STEPS, validate_every=VALIDATE_EVERY, resume="latest")
    else:
        result = learner.fit(N_EPOCHS, resume="latest")
    cbstate = learner.cbstate
    torch.save(
        {
            "model": learner.model.state_dict(),
            "optimizer": learner.optimizer.state_dict(),
            "history": cbstate.history,
            "metrics_epoch": cbstate.metrics_epoch,
            "metrics_step": cbstate.metrics_step,
            "metrics_at": cbstate.metrics_at,
            "hyperparams": cbstate.get("hyperparams"),
            "result": result,
            "rng": torch.get_rng_state(),
        },
        out,
    )
    print("done", flush=True)


def serve() -> None:
    for line in sys.stdin:
        run_forked(functools.partial(main, *line.split()))


if __name__ == "__main__":
    if sys.argv[1:] == ["--serve"]:
        serve()
    else:
        main(*sys.argv[1:])
