"""Train on an endless stream with a step budget, validating every few hundred steps.

The training data is an ``IterableDataset`` that generates points of three interleaved spirals
forever (no ``len()``): ``fit(steps=N, validate_every=k)`` reads it until N optimizer steps are
done and runs a validation epoch on a small fixed set after every k steps. The learning rate
warms up, then follows a cosine decay, both counted in steps. A ``Checkpointer`` monitors the
validation loss, so the best checkpoint is on disk; ``EarlyStopping(restore_best=True)`` would
put the best weights back if it stopped the fit. At the end ``learner.evaluate`` measures the
model on a held-out test set and ``learner.predict`` classifies a few points.

The stream draws from a ``torch.Generator`` seeded in ``__iter__``, so iterating it again gives
the same batches: ``fit(..., resume="latest")`` replays it exactly after a crash.

    python examples/streaming.py                   # 4000 steps
    FLUXTRAIN_FAST=1 python examples/streaming.py  # 1000 steps, for CI
"""

from __future__ import annotations

import math
import os
import tempfile

import torch
from torch.utils.data import DataLoader, IterableDataset, TensorDataset

from fluxtrain import (
    Accuracy,
    Checkpointer,
    EarlyStopping,
    Learner,
    LearningRate,
    Metrics,
    Scheduler,
)
from fluxtrain.schedules import cosine, warmup

FAST = os.environ.get("FLUXTRAIN_FAST") == "1"
STEPS = 1000 if FAST else 4000
VALIDATE_EVERY = 200 if FAST else 500
WARMUP = STEPS // 10
N_CLASSES = 3


def spirals(n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` noisy points of three interleaved spirals in the plane and their arm (class)."""
    labels = torch.randint(0, N_CLASSES, (n,), generator=generator)
    radius = torch.rand(n, generator=generator)
    angle = 4 * math.pi * radius + labels * (2 * math.pi / N_CLASSES)  # two turns per arm
    points = radius[:, None] * torch.stack([angle.cos(), angle.sin()], dim=1)
    return points + 0.01 * torch.randn(n, 2, generator=generator), labels


class SpiralStream(IterableDataset):
    """An endless stream of ``(point, label)`` samples, the same stream at every ``iter()``."""

    def __init__(self, seed: int, chunk: int = 1024) -> None:
        self.seed, self.chunk = seed, chunk

    def __iter__(self):
        generator = torch.Generator().manual_seed(self.seed)  # its own seed: it replays
        while True:
            points, labels = spirals(self.chunk, generator)  # vectorized, then one at a time
            yield from zip(points, labels)


def fixed_set(n: int, seed: int) -> DataLoader:
    points, labels = spirals(n, torch.Generator().manual_seed(seed))
    return DataLoader(TensorDataset(points, labels), batch_size=500)


def main() -> None:
    torch.manual_seed(0)
    train = DataLoader(SpiralStream(seed=1), batch_size=64)  # len(train) raises: a stream
    valid, test = fixed_set(1000, seed=2), fixed_set(3000, seed=3)
    model = torch.nn.Sequential(
        torch.nn.Linear(2, 64),
        torch.nn.ReLU(),
        torch.nn.Linear(64, 64),
        torch.nn.ReLU(),
        torch.nn.Linear(64, N_CLASSES),
    )
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=1e-4)
    lr = warmup(cosine(1e-2, 1e-4, STEPS - WARMUP), start_value=1e-3, length=WARMUP)
    with tempfile.TemporaryDirectory() as folder:
        checkpointer = Checkpointer(folder, monitor="valid/Loss")
        learner = Learner(
            model,
            (train, valid),
            optimizer,
            torch.nn.functional.cross_entropy,
            Metrics(Accuracy()),
            Scheduler({LearningRate: lr}),
            EarlyStopping("valid/Loss", patience=4, restore_best=True),
            checkpointer,  # last: it saves what the callbacks before it did
        )
        result = learner.fit(steps=STEPS, validate_every=VALIDATE_EVERY)
        print(result)
        losses = learner.cbstate.metrics_epoch["valid/Loss"]
        at = learner.cbstate.metrics_at["valid/Loss"]  # the training step of each validation
        best = min(range(len(losses)), key=losses.__getitem__)
        print(f"{len(losses)} validations, the best at step {at[best]}: loss {losses[best]:.4f}")
        print(f"best checkpoint: {checkpointer.best_checkpoint}")

    metrics = learner.evaluate(test)  # the learner's metrics on other data; records unchanged
    print(f"test: loss {metrics['Loss']:.4f}, accuracy {metrics['Accuracy']:.3f}")
    points = torch.tensor([[0.0, 0.5], [0.5, 0.0], [-0.5, -0.3]])
    arms = learner.predict([(points,)]).argmax(dim=1)  # batches of inputs only
    for (x, y), arm in zip(points.tolist(), arms.tolist()):
        print(f"point ({x:+.1f}, {y:+.1f}): arm {arm}")

    threshold = 0.92 if FAST else 0.98
    if metrics["Accuracy"] < threshold:
        raise SystemExit(f"test accuracy {metrics['Accuracy']:.3f} is below {threshold}")


if __name__ == "__main__":
    main()
