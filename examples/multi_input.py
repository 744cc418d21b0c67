"""Train a model with two inputs and two outputs, with one loss made of two terms.

Each of scikit-learn's handwritten digits (8x8 images, offline) is cut into two inputs, its
top half and its bottom half, as if two sensors saw one half each. The model reads each half
in its own branch, joins them, and has two heads: the digit's class, and a regression of the
share of the image's ink that lies in its top half (a number in [0, 1] that needs both
halves). Batches are ``((top, bottom), (label, share))``: the learner calls ``model(top,
bottom)``, which returns ``(logits, share)``, and ``loss_fn(outputs, targets)`` adds the
cross-entropy of the class and the weighted squared error of the share. The metrics pick their
part of the outputs and targets with ``output_transform``.

    python examples/multi_input.py                  # 12 epochs
    FLUXTRAIN_FAST=1 python examples/multi_input.py   # 3 epochs, for CI
"""

from __future__ import annotations

import os

import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits
from torch.utils.data import DataLoader

from fluxtrain import Accuracy, FunctionMetric, Learner, Metrics, Scheduler

FAST = os.environ.get("FLUXTRAIN_FAST") == "1"
N_EPOCHS = 3 if FAST else 12


def halves_loaders(seed: int = 0) -> tuple[DataLoader, DataLoader]:
    """Training and validation loaders over 1,437 and 360 digits, split into two halves."""
    images, labels = load_digits(return_X_y=True)
    pixels = torch.tensor(images, dtype=torch.float32) / 16.0
    top, bottom = pixels[:, :32], pixels[:, 32:]  # rows 0-3 and rows 4-7
    share = top.sum(1) / pixels.sum(1)
    samples = list(zip(top, bottom, torch.tensor(labels), share))
    order = torch.randperm(len(samples), generator=torch.Generator().manual_seed(seed))
    train = [samples[i] for i in order[:1437]]
    valid = [samples[i] for i in order[1437:]]
    shuffle = torch.Generator().manual_seed(seed)
    return (
        DataLoader(train, batch_size=64, shuffle=True, collate_fn=collate, generator=shuffle),
        DataLoader(valid, batch_size=256, collate_fn=collate),
    )


def collate(samples):
    """Stacks samples ``(top, bottom, label, share)`` into ``((top, bottom), (label, share))``."""
    top, bottom, label, share = (torch.stack(column) for column in zip(*samples))
    return (top, bottom), (label, share)


class TwoHalves(torch.nn.Module):
    """One branch per half, a joint body, a class head and a regression head in (0, 1)."""

    def __init__(self, hidden: int = 64) -> None:
        super().__init__()
        self.top = torch.nn.Sequential(torch.nn.Linear(32, hidden), torch.nn.ReLU())
        self.bottom = torch.nn.Sequential(torch.nn.Linear(32, hidden), torch.nn.ReLU())
        self.body = torch.nn.Sequential(torch.nn.Linear(2 * hidden, hidden), torch.nn.ReLU())
        self.classes = torch.nn.Linear(hidden, 10)
        self.share = torch.nn.Linear(hidden, 1)

    def forward(self, top: torch.Tensor, bottom: torch.Tensor):
        features = self.body(torch.cat([self.top(top), self.bottom(bottom)], dim=1))
        return self.classes(features), torch.sigmoid(self.share(features)).squeeze(1)


def two_losses(outputs, targets):
    """Cross-entropy of the class plus ten times the squared error of the share (the share's
    errors are small numbers: the weight keeps the regression from being ignored)."""
    (logits, share), (label, true_share) = outputs, targets
    return F.cross_entropy(logits, label) + 10.0 * F.mse_loss(share, true_share)


def mean_absolute_error(preds, targets):
    return (preds - targets).abs().mean()


def main() -> None:
    torch.manual_seed(0)
    model = TwoHalves()
    learner = Learner(
        model,
        halves_loaders(),
        torch.optim.Adam(model.parameters()),
        two_losses,
        Metrics(
            Accuracy(output_transform=lambda o, t: (o[0], t[0])),
            FunctionMetric(
                mean_absolute_error, name="MAE", output_transform=lambda o, t: (o[1], t[1])
            ),
        ),
        Scheduler.onecycle(N_EPOCHS, 1e-2),  # with Adam, the momentum cycled is beta1
    )
    learner.fit(N_EPOCHS)

    metrics = learner.cbstate.metrics_epoch
    accuracy, mae = metrics["valid/Accuracy"][-1], metrics["valid/MAE"][-1]
    print(f"validation: class accuracy {accuracy:.3f}, mean absolute error of the share {mae:.4f}")
    min_accuracy, max_mae = (0.85, 0.04) if FAST else (0.95, 0.025)
    if accuracy < min_accuracy or mae > max_mae:
        raise SystemExit(f"expected accuracy >= {min_accuracy} and MAE <= {max_mae}")


if __name__ == "__main__":
    main()
