"""Train a small network on scikit-learn's handwritten digits (8x8 images, offline).

Reaches over 95% validation accuracy in a few seconds on two CPU cores, with progress bars, a
metrics table, and a one-cycle schedule for the learning rate and momentum.

    python examples/digits.py            # 10 epochs
    FLUXTRAIN_FAST=1 python examples/digits.py   # 2 epochs, for CI
"""

from __future__ import annotations

import os

import torch
from sklearn.datasets import load_digits
from torch.utils.data import DataLoader, TensorDataset

from fluxtrain import Accuracy, Learner, Metrics, Scheduler


def digits_loaders(batch_size: int = 64, seed: int = 0) -> tuple[DataLoader, DataLoader]:
    """Training and validation loaders over 1,437 and 360 of the 1,797 digit images."""
    images, labels = load_digits(return_X_y=True)
    inputs = torch.tensor(images, dtype=torch.float32) / 16.0
    targets = torch.tensor(labels)
    order = torch.randperm(len(inputs), generator=torch.Generator().manual_seed(seed))
    train, valid = order[:1437], order[1437:]
    return (
        DataLoader(
            TensorDataset(inputs[train], targets[train]),
            batch_size=batch_size,
            shuffle=True,
            generator=torch.Generator().manual_seed(seed),
        ),
        DataLoader(TensorDataset(inputs[valid], targets[valid]), batch_size=256),
    )


def main() -> None:
    torch.manual_seed(0)
    n_epochs = 2 if os.environ.get("FLUXTRAIN_FAST") else 10
    model = torch.nn.Sequential(
        torch.nn.Linear(64, 128),
        torch.nn.ReLU(),
        torch.nn.Dropout(0.1),
        torch.nn.Linear(128, 10),
    )
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
