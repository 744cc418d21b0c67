"""How good is each ``lr_find`` suggestion? A one-cycle fit at each suggested learning rate.

For each problem and seed, ``lr_find(learner, seed=seed)`` runs with every suggestion rule, once
with fastai's fixed smoothing (0.98) and once with the default (``1 - 10 / num_steps``, 0.9 for
the 100 steps used here); then a fresh learner (the same seed: the same initial weights and
batch order) trains with ``Scheduler.onecycle(n_epochs, lr)`` at each suggested learning rate,
and its last validation result is recorded. A grid of fixed learning rates, half a decade
apart, gives the best any single learning rate reached, for scale.

Problems (all offline): an MLP and a small CNN on scikit-learn's digits (SGD with momentum,
8 epochs, validation accuracy), and an MLP regression on ``make_friedman1`` (Adam, 8 epochs,
validation mean squared error of the standardized target).

Run from the repository root::

    python benchmarks/lr_suggestions.py          # 3 problems x 5 seeds: about 7 minutes
    python benchmarks/lr_suggestions.py --quick  # 1 seed, 2 epochs, no grid: seconds (for CI)
    FLUXTRAIN_FAST=1 python benchmarks/lr_suggestions.py  # the same as --quick

It runs on one CPU thread, so the numbers do not depend on the machine's thread count.
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.datasets import make_friedman1
from torch.utils.data import DataLoader, TensorDataset

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
from digits_data import digits_loaders, digits_model  # noqa: E402

from fluxtrain import Accuracy, Learner, Metrics  # noqa: E402
from fluxtrain.lr_finder import lr_find  # noqa: E402
from fluxtrain.lr_finder.suggestions import SUGGESTIONS  # noqa: E402
from fluxtrain.scheduler import Scheduler  # noqa: E402

RULES = ["midpoint", "valley", "steep", "minimum", "slide"]
SMOOTHINGS: dict[str, float | None] = {"0.98": 0.98, "default": None}
GRID = 10.0 ** np.arange(-3.0, 0.51, 0.5)


def digits_cnn() -> torch.nn.Module:
    """Two 3x3 convolutions and a max-pool on the 8x8 images, then a linear layer."""
    return torch.nn.Sequential(
        torch.nn.Unflatten(1, (1, 8, 8)),
        torch.nn.Conv2d(1, 16, 3, padding=1),
        torch.nn.ReLU(),
        torch.nn.Conv2d(16, 32, 3, padding=1),
        torch.nn.ReLU(),
        torch.nn.MaxPool2d(2),
        torch.nn.Flatten(),
        torch.nn.Linear(32 * 4 * 4, 10),
    )


def friedman_loaders(seed: int) -> tuple[DataLoader, DataLoader]:
    """1,000 training and 200 validation samples of Friedman #1 (10 features, noise 1)."""
    x, y = make_friedman1(n_samples=1200, n_features=10, noise=1.0, random_state=0)
    inputs = torch.tensor(x, dtype=torch.float32)
    targets = torch.tensor((y - y.mean()) / y.std(), dtype=torch.float32)[:, None]
    generator = torch.Generator().manual_seed(seed)
    return (
        DataLoader(TensorDataset(inputs[:1000], targets[:1000]), 32, True, generator=generator),
        DataLoader(TensorDataset(inputs[1000:], targets[1000:]), batch_size=256),
    )


def digits_learner(model: Callable[[], torch.nn.Module], seed: int) -> Learner:
    torch.manual_seed(seed)
    net = model()
    optimizer = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    loss = torch.nn.functional.cross_entropy
    metrics = Metrics(Accuracy())
    data = digits_loaders(seed=seed)
    return Learner(net, data, optimizer, loss, metrics, usedefaultcallbacks=False)


def regression_learner(seed: int) -> Learner:
    torch.manual_seed(seed)
    net = torch.nn.Sequential(
        torch.nn.Linear(10, 64),
        torch.nn.ReLU(),
        torch.nn.Linear(64, 64),
        torch.nn.ReLU(),
        torch.nn.Linear(64, 1),
    )
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    loss = torch.nn.functional.mse_loss
    data = friedman_loaders(seed)
    return Learner(net, data, optimizer, loss, Metrics(), usedefaultcallbacks=False)


# name: (build(seed), metric key, higher is better)
PROBLEMS: dict[str, tuple[Callable[[int], Learner], str, bool]] = {
    "digits MLP": (lambda s: digits_learner(digits_model, s), "valid/Accuracy", True),
    "digits CNN": (lambda s: digits_learner(digits_cnn, s), "valid/Accuracy", True),
    "regression MLP": (regression_learner, "valid/Loss", False),
}


def fit(build: Callable[[int], Learner], metric: str, seed: int, lr: float, epochs: int) -> float:
    """The last validation result of a one-cycle fit peaking at ``lr``."""
    learner = build(seed)
    learner.add_callback(Scheduler.onecycle(epochs, lr))
    learner.fit(epochs)
    value = float(learner.cbstate.metrics_epoch[metric][-1])
    return value if np.isfinite(value) else float("inf")


def measure(seeds: list[int], epochs: int, grid: bool) -> dict[str, dict[str, list[float]]]:
    """``{problem: {row: [result per seed]}}`` for each rule and smoothing (and the grid)."""
    results: dict[str, dict[str, list[float]]] = {}
    for problem, (build, metric, _) in PROBLEMS.items():
        rows: dict[str, list[float]] = {}
        fits: dict[tuple[int, float], float] = {}  # one fit per seed and learning rate
        for seed in seeds:
            runs: list[tuple[str, float]] = []
            for label, smoothing in SMOOTHINGS.items():
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", RuntimeWarning)  # a short curve
                    found = lr_find(build(seed), seed=seed, smoothing=smoothing, suggest=RULES)
                for rule, lr in found.suggestions.items():
                    runs.append((f"{rule} | {label}", lr))
                    rows.setdefault(f"{rule} | {label} | lr", []).append(lr)
            runs += [(f"lr={lr:.3g}", float(lr)) for lr in (GRID if grid else ())]
            for row, lr in runs:
                if (seed, lr) not in fits:
                    fits[seed, lr] = fit(build, metric, seed, lr, epochs)
                rows.setdefault(row, []).append(fits[seed, lr])
        results[problem] = rows
    return results


def table(results: dict[str, dict[str, list[float]]]) -> str:
    """A markdown table: each rule's mean result over the seeds (worst seed) per problem."""
    header = "| rule | smoothing |"
    rule_line = "|---|---|"
    for problem, (_, _, higher) in PROBLEMS.items():
        header += f" {problem}: {'accuracy' if higher else 'MSE'} | median lr |"
        rule_line += "---|---|"
    lines = [header, rule_line]
    for rule in RULES:
        for label in SMOOTHINGS:
            row = f"| `{rule}` | {label} |"
            for problem, (_, _, higher) in PROBLEMS.items():
                values = results[problem][f"{rule} | {label}"]
                worst = min(values) if higher else max(values)
                median_lr = float(np.median(results[problem][f"{rule} | {label} | lr"]))
                row += f" {np.mean(values):.3f} ({worst:.3f}) | {median_lr:.2g} |"
            lines.append(row)
    if any(key.startswith("lr=") for key in next(iter(results.values()))):
        row = "| best fixed lr of the grid | |"
        for problem, (_, _, higher) in PROBLEMS.items():
            grid = {k: v for k, v in results[problem].items() if k.startswith("lr=")}
            pick = max if higher else min
            key = pick(grid, key=lambda k: np.mean(grid[k]))
            worst = min(grid[key]) if higher else max(grid[key])
            row += f" {np.mean(grid[key]):.3f} ({worst:.3f}) | {key[3:]} |"
        lines.append(row)
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 seed, 2 epochs, no grid")
    parser.add_argument("--seeds", type=int, default=5, help="seeds 0..n-1 (default 5)")
    args = parser.parse_args(argv)
    quick = args.quick or bool(os.environ.get("FLUXTRAIN_FAST"))
    torch.set_num_threads(1)
    assert set(RULES) == set(SUGGESTIONS), "a rule is missing from the table"
    seeds = [0] if quick else list(range(args.seeds))
    results = measure(seeds, epochs=2 if quick else 8, grid=not quick)
    print(f"seeds {seeds}, {'2' if quick else '8'} epochs; mean over the seeds (worst seed)")
    print(table(results))
    return results


if __name__ == "__main__":
    main()
