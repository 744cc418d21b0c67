"""Train a GAN on a ring of eight Gaussians in 2-D, with two optimizers and a custom step.

The generator and the discriminator are small MLPs held in one ``GAN`` module; each has its
own Adam optimizer, passed to the learner by name. ``GANTrainingPhase`` overrides the training
step with the phase's pieces: the discriminator update, then the generator update, each a
``backward`` into its own optimizer's parameters followed by ``update``. The two learning rates
follow different schedules (a cosine decay for the generator, keyframes for the
discriminator). The data is real samples only, ``(x,)`` batches, and there is no validation
phase. The table shows, per epoch, the generator's loss (the last loss of each step) and
``ModeDist``, the mean distance from the generated samples to the nearest mode.

The fit runs three times: once uninterrupted, once interrupted by a simulated Ctrl-C in the
middle (the ``Checkpointer`` saves on the interrupt), and once resumed from that checkpoint by a
fresh learner with ``fit(n, resume="latest")``. The resumed weights must equal those of the
uninterrupted run bit for bit, and so must the recorded metrics and learning rates. At the end
it prints the learning rates the scheduler applied and how close the generated samples are to
the eight modes.

    python examples/gan.py                  # 30 epochs of 128 steps
    FLUXTRAIN_FAST=1 python examples/gan.py   # 8 epochs, for CI
"""

from __future__ import annotations

import math
import os
import tempfile
from pathlib import Path

import torch
from torch.nn.functional import binary_cross_entropy_with_logits as bce
from torch.utils.data import DataLoader, TensorDataset

from fluxtrain import (
    Callback,
    Checkpointer,
    FunctionMetric,
    Learner,
    LearningRate,
    Metrics,
    MetricsPrinter,
    Read,
    Schedule,
    Scheduler,
    TrainingPhase,
)
from fluxtrain.schedules import cosine

FAST = os.environ.get("FLUXTRAIN_FAST") == "1"
N_EPOCHS = 8 if FAST else 30
LATENT = 8
MODES = torch.tensor(
    [[2 * math.cos(2 * math.pi * k / 8), 2 * math.sin(2 * math.pi * k / 8)] for k in range(8)]
)


def ring_loader(n: int = 16384, std: float = 0.05, seed: int = 0) -> DataLoader:
    """Batches ``(x,)`` of samples from eight Gaussians evenly spaced on a circle of radius 2."""
    generator = torch.Generator().manual_seed(seed)
    modes = MODES[torch.randint(0, 8, (n,), generator=generator)]
    samples = modes + std * torch.randn(n, 2, generator=generator)
    return DataLoader(
        TensorDataset(samples),
        batch_size=128,
        shuffle=True,
        generator=torch.Generator().manual_seed(seed),  # a seeded order: replayed on resume
    )


def mlp(n_in: int, n_out: int, hidden: int = 128) -> torch.nn.Sequential:
    return torch.nn.Sequential(
        torch.nn.Linear(n_in, hidden),
        torch.nn.LeakyReLU(0.2),
        torch.nn.Linear(hidden, hidden),
        torch.nn.LeakyReLU(0.2),
        torch.nn.Linear(hidden, n_out),
    )


class GAN(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.generator = mlp(LATENT, 2)
        self.discriminator = mlp(2, 1)

    def sample(self, n: int) -> torch.Tensor:
        return self.generator(torch.randn(n, LATENT))


class GANTrainingPhase(TrainingPhase):
    """One discriminator update, then one generator update, on each batch of real samples."""

    def step(self, learner, batch):
        self.begin(learner, batch)  # batch.inputs: the real samples; no targets
        gan, real = learner.model, learner.batch.inputs
        noise = torch.randn(len(real), LATENT)
        fake = self.forward(learner, gan.generator, noise)  # batch.outputs: the fake samples

        ones, zeros = torch.ones(len(real), 1), torch.zeros(len(real), 1)
        loss_d = bce(gan.discriminator(real), ones) + bce(gan.discriminator(fake.detach()), zeros)
        if self.backward(learner, loss_d, "discriminator"):
            self.update(learner)

        loss_g = bce(gan.discriminator(fake), ones)  # the discriminator just updated
        if self.backward(learner, loss_g, "generator"):  # batch.loss: the generator's loss
            self.update(learner)
        self.end(learner)


def mode_distance(fake: torch.Tensor, targets: None) -> torch.Tensor:
    """Mean distance from each generated sample to the nearest of the eight modes."""
    return torch.cdist(fake.detach(), MODES).min(dim=1).values.mean()


class SimulatedInterrupt(Callback):
    """Raises ``KeyboardInterrupt`` after training step ``at_step``, as Ctrl-C would."""

    stateaccess = {"fitstate": Read}

    def __init__(self, at_step: int | None = None) -> None:
        self.at_step = at_step

    def on_step_end(self, phase, learner):
        if learner.fitstate.total_steps == self.at_step:
            raise KeyboardInterrupt


def build(folder: Path, interrupt_at: int | None = None, verbose: bool = False) -> Learner:
    """The same learner every time: same seed, model, optimizers, data and schedules.

    ``verbose`` adds a ``MetricsPrinter``; only the reference run has it, since a resumed
    learner must have the same callbacks as the one that saved the checkpoint.
    """
    torch.manual_seed(0)
    gan = GAN()
    optimizers = {  # no lr here: the Scheduler sets it at every step
        "generator": torch.optim.Adam(gan.generator.parameters(), betas=(0.5, 0.999)),
        "discriminator": torch.optim.Adam(gan.discriminator.parameters(), betas=(0.5, 0.999)),
    }
    data = ring_loader()
    scheduler = Scheduler(
        {
            # a cosine decay over the whole fit, in steps
            LearningRate(optimizer="generator"): cosine(2e-3, 2e-4, N_EPOCHS * len(data)),
            # keyframes in epochs: hold 1e-3 for the first half, then fall to 1e-4
            LearningRate(optimizer="discriminator"): Schedule(
                [0, N_EPOCHS // 2, N_EPOCHS], [1e-3, 1e-3, 1e-4]
            ),
        }
    )
    return Learner(
        gan,
        data,
        optimizers,
        None,  # the phase computes the losses
        Metrics(FunctionMetric(mode_distance, name="ModeDist")),
        scheduler,
        *([MetricsPrinter()] if verbose else []),
        SimulatedInterrupt(interrupt_at),
        Checkpointer(folder),
        usedefaultcallbacks=False,  # no progress bars: the output stays short
    )


def main() -> None:
    torch.use_deterministic_algorithms(True)
    root = Path(tempfile.mkdtemp(prefix="fluxtrain-gan-"))
    phases = (GANTrainingPhase(), None)  # no validation phase

    reference = build(root / "reference", verbose=True)
    reference.fit(N_EPOCHS, phases=phases)

    total_steps = N_EPOCHS * len(reference.data.train)
    interrupted = build(root / "run", interrupt_at=total_steps // 2 + 5)
    try:
        interrupted.fit(N_EPOCHS, phases=phases)
    except KeyboardInterrupt:
        print(f"interrupted after step {interrupted.fitstate.total_steps} of {total_steps}")
    resumed = build(root / "run")  # a new process would build the same learner
    result = resumed.fit(N_EPOCHS, phases=phases, resume="latest")
    print(f"resumed: {result}")

    print("learning rates applied (step: value):")
    for name, values in resumed.cbstate.hyperparams.items():
        picked = [values[i * (len(values) - 1) // 4] for i in range(5)]
        print(f"  {name:<38}" + "  ".join(f"{t:>4}: {lr:.1e}" for t, lr in picked))

    torch.manual_seed(1)
    with torch.no_grad():
        fake = resumed.model.sample(4000)
    nearest = torch.cdist(fake, MODES).min(dim=1)
    distance = float(nearest.values.mean())
    near = nearest.values < 0.25
    per_mode = torch.bincount(nearest.indices[near], minlength=8)
    modes_found = int((per_mode >= 0.01 * len(fake)).sum())  # modes near 1% of the samples
    print(
        f"generated samples: mean distance to the nearest mode {distance:.3f}, "
        f"{near.float().mean():.1%} within 0.25 of one, per mode {per_mode.tolist()}, "
        f"{modes_found} of the 8 modes found"
    )

    same_weights = all(
        torch.equal(a, b)
        for a, b in zip(resumed.model.state_dict().values(), reference.model.state_dict().values())
    )
    same_records = (
        resumed.cbstate.hyperparams == reference.cbstate.hyperparams
        and resumed.cbstate.metrics_epoch == reference.cbstate.metrics_epoch
    )
    print(f"equal to the uninterrupted run: weights {same_weights}, records {same_records}")
    if not (same_weights and same_records):
        raise SystemExit("the resumed run differs from the uninterrupted one")
    if distance > (0.5 if FAST else 0.25) or (not FAST and modes_found < 6):
        raise SystemExit(f"the generator did not learn the ring: {distance=:.3f}, {modes_found=}")


if __name__ == "__main__":
    main()
