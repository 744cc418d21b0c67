"""Train a small network on scikit-learn's handwritten digits (8x8 images, offline).

Reaches over 95% validation accuracy in a few seconds on two CPU cores, with progress bars, a
metrics table, and a one-cycle schedule for the learning rate and momentum.

    python examples/digits.py            # 10 epochs
    FLUXTRAIN_FAST=1 python examples/digits.py   # 2 epochs, for CI
"""

from __future__ import annotations

import os

import torch
from digits_data import digits_loaders, digits_model

from fluxtrain import Accuracy, Learner, Metrics, Scheduler


def main() -> None:
    torch.manual_seed(0)
    n_epochs = 2 if os.environ.get("FLUXTRAIN_FAST") else 10
    model = digits_model()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    learner = Learner(
        model,
        digits_loaders(),
        optimizer,
        torch.nn.functional.cross_entropy,
        Metrics(Accuracy()),
        Scheduler.onecycle(n_epochs, 0.5),
    )
    learner.fit(n_epochs)
    accuracy = learner.cbstate.metrics_epoch["valid/Accuracy"][-1]
    print(f"validation accuracy: {accuracy:.3f}")
    if not os.environ.get("FLUXTRAIN_FAST"):
        assert accuracy > 0.95, accuracy


if __name__ == "__main__":
    main()
