"""Schedule anything: a VAE on digits with a KL-weight, dropout, batch-size and EMA schedule.

A variational autoencoder learns scikit-learn's handwritten digits (offline). Besides the
learning rate, one Scheduler drives four things that are not the optimizer's:

- the weight of the KL term of the loss, annealed from 0 to 1 (``Attribute``);
- the dropout rate of the encoder, from 0.2 down to 0 (``DropoutRate``);
- the batch size, warmed up from 16 to 128 samples (``BatchSize``: every image is still seen
  once per epoch, and the one-cycle in epochs stays on time);
- the decay of an exponential moving average of the weights (``EMADecay``), warmed up so the
  average follows the fast early changes; validation runs on the averaged weights.

    python examples/schedule_anything.py                  # 12 epochs, a few seconds
    python examples/schedule_anything.py --plot out.png   # the five schedules, as planned
    FLUXTRAIN_FAST=1 python examples/schedule_anything.py # 3 epochs, for CI
"""

from __future__ import annotations

import argparse
import os

import torch
from sklearn.datasets import load_digits
from torch.utils.data import DataLoader, TensorDataset

from fluxtrain import (
    EMA,
    Attribute,
    BatchSize,
    DropoutRate,
    EMADecay,
    Learner,
    LearningRate,
    Metrics,
    Schedule,
    Scheduler,
)
from fluxtrain.easings import linear, sineio
from fluxtrain.schedules import onecycle

LATENT = 8


class VAE(torch.nn.Module):
    """64 pixels -> a Gaussian over 8 latent dimensions -> 64 pixel logits."""

    def __init__(self) -> None:
        super().__init__()
        self.encoder = torch.nn.Sequential(
            torch.nn.Linear(64, 128), torch.nn.ReLU(), torch.nn.Dropout(0.2)
        )
        self.mean = torch.nn.Linear(128, LATENT)
        self.log_var = torch.nn.Linear(128, LATENT)
        self.decoder = torch.nn.Sequential(
            torch.nn.Linear(LATENT, 128), torch.nn.ReLU(), torch.nn.Linear(128, 64)
        )

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        hidden = self.encoder(x)
        mean, log_var = self.mean(hidden), self.log_var(hidden)
        z = mean + torch.randn_like(mean) * (0.5 * log_var).exp() if self.training else mean
        return self.decoder(z), mean, log_var


class VAELoss(torch.nn.Module):
    """Reconstruction (Bernoulli, per image) plus ``kl_weight`` times the KL divergence."""

    def __init__(self) -> None:
        super().__init__()
        self.kl_weight = 0.0  # the Scheduler sets it before every training step

    def forward(self, outputs: tuple[torch.Tensor, ...], targets: torch.Tensor) -> torch.Tensor:
        logits, mean, log_var = outputs
        reconstruction = torch.nn.functional.binary_cross_entropy_with_logits(
            logits, targets, reduction="sum"
        )
        kl = -0.5 * (1 + log_var - mean**2 - log_var.exp()).sum()
        return (reconstruction + self.kl_weight * kl) / len(targets)


def reconstruction(outputs: tuple[torch.Tensor, ...], targets: torch.Tensor) -> torch.Tensor:
    """The metric: binary cross-entropy per image, the KL term left out."""
    return torch.nn.functional.binary_cross_entropy_with_logits(
        outputs[0], targets, reduction="sum"
    ) / len(targets)


def loaders() -> tuple[DataLoader, DataLoader]:
    images = torch.tensor(load_digits().data, dtype=torch.float32) / 16.0
    order = torch.randperm(len(images), generator=torch.Generator().manual_seed(0))
    train, valid = images[order[:1437]], images[order[1437:]]
    return (
        DataLoader(
            TensorDataset(train, train),  # the targets are the inputs
            batch_size=16,  # the BatchSize schedule re-chunks this loader's sampler
            shuffle=True,
            generator=torch.Generator().manual_seed(0),
        ),
        DataLoader(TensorDataset(valid, valid), batch_size=360),
    )


def scheduler(n_epochs: int) -> Scheduler:
    return Scheduler(
        {
            LearningRate: onecycle(n_epochs, 3e-3),
            Attribute("loss_fn.kl_weight"): Schedule([0, n_epochs / 2], [0.0, 1.0], sineio()),
            DropoutRate: Schedule([0, n_epochs], [0.2, 0.0], linear()),
            BatchSize: Schedule([0, 2], [16, 128], linear()),
            EMADecay: lambda t: min(0.995, (1 + t) / (10 + t)),
        }
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plot", help="save the planned schedules to this PNG file")
    args = parser.parse_args()
    n_epochs = 3 if os.environ.get("FLUXTRAIN_FAST") else 12
    torch.manual_seed(0)
    model = VAE()
    train, valid = loaders()
    schedules = scheduler(n_epochs)
    if args.plot:
        plot(schedules, n_epochs, len(train.dataset), args.plot)  # type: ignore[arg-type]
    ema = EMA(validate=True)
    learner = Learner(
        model,
        (train, valid),
        torch.optim.AdamW(model.parameters()),
        VAELoss(),
        Metrics(reconstruction),
        schedules,
        ema,
    )
    learner.fit(n_epochs)
    steps = learner.cbstate.hyperparams["BatchSize"]
    sizes = [int(v) for v in steps.values]
    print(f"{len(sizes)} steps; batch sizes {sizes[0]} .. {max(sizes)}")
    averaged = learner.cbstate.metrics_epoch["valid/reconstruction"][-1]
    with torch.no_grad():
        raw = reconstruction(model.eval()(valid.dataset.tensors[0]), valid.dataset.tensors[0])
    print(f"validation reconstruction: EMA weights {averaged:.2f}, raw weights {float(raw):.2f}")
    if not os.environ.get("FLUXTRAIN_FAST"):
        assert averaged < 30.0, averaged


def plot(schedules: Scheduler, n_epochs: int, samples: int, path: str) -> None:
    """The values each step of the fit will get, as ``Scheduler.simulate`` plans them."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    planned = schedules.simulate(n_epochs, samples_per_epoch=samples)
    figure, axes = plt.subplots(len(planned), 1, figsize=(7, 9), sharex=True)
    for ax, (name, values) in zip(axes, planned.items()):
        ax.plot(values)
        ax.set_ylabel(name.replace("Attribute[loss_fn.kl_weight]", "KL weight"), fontsize=8)
    axes[-1].set_xlabel("step")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    print(f"saved {path}")


if __name__ == "__main__":
    main()
