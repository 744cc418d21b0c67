"""Log a digits run to CSV (and TensorBoard, if installed), then plot its history.

Trains a small network on scikit-learn's handwritten digits (offline) with a one-cycle schedule,
and writes into an output folder (a new temporary one unless given):

    log.csv       one row per scalar: step,epoch,phase,name,value
    tensorboard/  event files, when tensorboard is installed (tensorboard --logdir <folder>)
    history.png   loss and accuracy per epoch, learning rate and momentum per step

    python examples/logging_digits.py [output folder]
    FLUXTRAIN_FAST=1 python examples/logging_digits.py   # 2 epochs, for CI
"""

from __future__ import annotations

import csv
import importlib.util
import os
import sys
import tempfile

import torch
from digits_data import digits_loaders, digits_model

from fluxtrain import Accuracy, Learner, Metrics
from fluxtrain.callbacks.backends import CSVBackend, LoggerBackend, TensorBoardBackend
from fluxtrain.callbacks.logging import LogHyperParams, LogMetrics
from fluxtrain.history_plot import plot_history
from fluxtrain.scheduler import Scheduler


def main(output: str) -> None:
    torch.manual_seed(0)
    n_epochs = 2 if os.environ.get("FLUXTRAIN_FAST") else 10
    os.makedirs(output, exist_ok=True)
    backends: list[LoggerBackend] = [CSVBackend(os.path.join(output, "log.csv"))]
    if importlib.util.find_spec("tensorboard") is not None:
        backends.append(TensorBoardBackend(os.path.join(output, "tensorboard")))

    model = digits_model()
    learner = Learner(
        model,
        digits_loaders(),
        torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9),
        torch.nn.functional.cross_entropy,
        Metrics(Accuracy()),
        Scheduler.onecycle(n_epochs, 0.5),
        LogMetrics(*backends, every=5),  # per-step values every 5 steps: one host read each
        LogHyperParams(*backends),
    )
    learner.fit(n_epochs)
    plot_history(learner, os.path.join(output, "history.png"))

    with open(os.path.join(output, "log.csv"), newline="") as file:
        rows = [row for row in csv.DictReader(file) if row["name"] == "valid/Accuracy"]
    print(f"validation accuracy: {float(rows[-1]['value']):.3f} (from log.csv)")
    print(f"wrote {', '.join(sorted(os.listdir(output)))} to {output}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp(prefix="fluxtrain-logging-"))
