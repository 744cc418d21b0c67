"""scikit-learn's handwritten digits (8x8 images, bundled: no download) and the small network
the examples train on them.

Not an example itself (run, it does nothing): the examples next to it import it (``from
digits_data import digits_loaders, digits_model``), which works because ``python examples/X.py``
puts ``examples/`` on the path.
"""

from __future__ import annotations

import torch
from sklearn.datasets import load_digits
from torch.utils.data import DataLoader, TensorDataset


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
            generator=torch.Generator().manual_seed(seed),  # a seeded order: replayed on resume
        ),
        DataLoader(TensorDataset(inputs[valid], targets[valid]), batch_size=256),
    )


def digits_model(hidden: int = 128, dropout: float = 0.1) -> torch.nn.Sequential:
    """A one-hidden-layer network from the 64 pixels to the 10 classes, with dropout."""
    return torch.nn.Sequential(
        torch.nn.Linear(64, hidden),
        torch.nn.ReLU(),
        torch.nn.Dropout(dropout),
        torch.nn.Linear(hidden, 10),
    )
