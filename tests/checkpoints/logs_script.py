"""A run for the log and metric kill test: ``python logs_script.py FOLDER LOG OUT [KILL_AT]``.

It trains a classifier with a torchmetrics accuracy and a CSV log (``append=True``) and a
checkpoint after every step, resuming from ``FOLDER``; with ``KILL_AT`` it SIGKILLs itself
right after that training step. At the end it saves the epoch metrics to ``OUT``.
"""

from __future__ import annotations

import os
import signal
import sys

import torch
import torchmetrics
from torch.utils.data import DataLoader, TensorDataset

from fluxtrain import Callback, Checkpointer, CSVBackend, Learner, LogMetrics, Metrics, Read


class Kill(Callback):
    stateaccess = {"fitstate": Read}

    def __init__(self, at: int | None) -> None:
        self.at = at

    def on_step_end(self, phase, learner):
        if phase.name == "train" and learner.fitstate.total_steps == self.at:
            os.kill(os.getpid(), signal.SIGKILL)


def main(folder: str, log: str, out: str, kill_at: str | None = None) -> None:
    torch.manual_seed(0)
    torch.set_num_threads(1)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(96, 5, generator=g)
    y = (x[:, 0] + x[:, 1] > 0).long() + (x[:, 2] > 1).long()
    train = DataLoader(TensorDataset(x, y), batch_size=8, shuffle=True, generator=g)
    valid = DataLoader(TensorDataset(x[:32], y[:32]), batch_size=8)
    model = torch.nn.Linear(5, 3)
    accuracy = torchmetrics.classification.MulticlassAccuracy(num_classes=3, average="micro")
    learner = Learner(
        model,
        (train, valid),
        torch.optim.SGD(model.parameters(), lr=0.1),
        torch.nn.functional.cross_entropy,
        Metrics(accuracy),
        LogMetrics(CSVBackend(log, append=True)),
        Kill(None if kill_at is None else int(kill_at)),
        Checkpointer(folder, every_steps=1),
        usedefaultcallbacks=False,
    )
    learner.fit(3, resume="latest")
    torch.save(dict(learner.cbstate.metrics_epoch), out)


if __name__ == "__main__":
    main(*sys.argv[1:])
