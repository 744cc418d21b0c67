"""fluxtrain schedules in a hand-written PyTorch loop, with :class:`TorchScheduler`.

No Learner: a plain loop over scikit-learn's handwritten digits (offline). The network's body
and its head are two param groups; the body gets a one-cycle learning rate with momentum
cycling against it, the head a linear warmup then cosine decay at twice the rate and a fixed
momentum. The scheduler's state goes into a checkpoint halfway and a fresh optimizer and
scheduler resume from it.

    python examples/plain_loop.py
    FLUXTRAIN_FAST=1 python examples/plain_loop.py   # one epoch, for CI
"""

from __future__ import annotations

import copy
import os

import torch
from digits_data import digits_loaders
from torch.utils.data import DataLoader

from fluxtrain import LearningRate, Momentum, TorchScheduler
from fluxtrain.schedules import cosine, onecycle, warmup


def make_optimizer(body: torch.nn.Module, head: torch.nn.Module) -> torch.optim.SGD:
    groups = [{"params": body.parameters()}, {"params": head.parameters()}]
    return torch.optim.SGD(groups, lr=0.1, momentum=0.9)


def make_scheduler(optimizer: torch.optim.Optimizer, n_epochs: int, steps: int) -> TorchScheduler:
    total = n_epochs * steps
    return TorchScheduler(
        optimizer,
        {
            LearningRate: [
                onecycle(n_epochs, 0.3),  # in epochs: needs steps_per_epoch
                warmup(cosine(0.6, 0.0, total - steps // 2), 0.01, steps // 2),  # in steps
            ],
            Momentum: [onecycle(n_epochs, 0.85, start_val=0.95, end_val=0.95), 0.9],
        },
        steps_per_epoch=steps,
    )


def accuracy(model: torch.nn.Module, loader: DataLoader) -> float:
    model.eval()
    with torch.no_grad():
        correct = sum((model(x).argmax(-1) == y).sum().item() for x, y in loader)
    model.train()
    return correct / len(loader.dataset)  # type: ignore[arg-type]


def main() -> None:
    torch.manual_seed(0)
    n_epochs = 1 if os.environ.get("FLUXTRAIN_FAST") else 8
    train, valid = digits_loaders()
    body = torch.nn.Sequential(torch.nn.Linear(64, 256), torch.nn.ReLU())
    head = torch.nn.Linear(256, 10)
    model = torch.nn.Sequential(body, head)
    optimizer = make_optimizer(body, head)
    scheduler = make_scheduler(optimizer, n_epochs, len(train))

    checkpoint, values_then = None, []
    for epoch in range(n_epochs):
        for inputs, targets in train:
            loss = torch.nn.functional.cross_entropy(model(inputs), targets)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            scheduler.step()  # the values for the next step
            if scheduler.t == n_epochs * len(train) // 2:
                checkpoint = copy.deepcopy(
                    {"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict()}
                )
                values_then = [(g["lr"], g["momentum"]) for g in optimizer.param_groups]
        lrs = [round(float(lr), 4) for lr in scheduler.get_last_lr()]
        print(f"epoch {epoch + 1}: valid accuracy {accuracy(model, valid):.3f}, next lrs {lrs}")

    # Resuming: a fresh optimizer and scheduler, loaded in either order, continue exactly.
    assert checkpoint is not None
    resumed = make_optimizer(body, head)
    resumed.load_state_dict(checkpoint["optimizer"])
    resumed_scheduler = make_scheduler(resumed, n_epochs, len(train))
    resumed_scheduler.load_state_dict(checkpoint["scheduler"])
    values_now = [(g["lr"], g["momentum"]) for g in resumed.param_groups]
    assert values_now == values_then, (values_now, values_then)
    print(f"resumed at step {resumed_scheduler.t} with the same (lr, momentum): {values_now}")
    final = accuracy(model, valid)
    if not os.environ.get("FLUXTRAIN_FAST"):
        assert final > 0.95, final


if __name__ == "__main__":
    main()
