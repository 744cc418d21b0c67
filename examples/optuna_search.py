"""Search a learning-rate schedule's keyframes with Optuna, pruning the trials that lag behind.

On scikit-learn's handwritten digits (bundled: no download). A learning-rate range test, a few
seconds, first finds where the loss falls fastest; the study then searches around it over the
keyframes of one schedule, in unit ``"fraction"`` of the fit:

    peak learning rate   a quarter to four times the range test's suggestion (log scale)
    warmup fraction      the share of the fit spent rising from peak / 25 to the peak
    final value          the learning rate at the end, as a share of the peak (log scale)

Each trial trains with ``OptunaPruning``, which reports ``valid/Loss`` after every epoch; the
median pruner stops a trial whose loss is worse than the median of the finished ones at the
same epoch, and the fit's result says so. The study lives in memory (pass
``--storage sqlite:///search.db`` to keep it and resume the search later).

    pip install fluxtrain[optuna,examples]
    python examples/optuna_search.py [--trials 30] [--storage sqlite:///search.db]
    FLUXTRAIN_FAST=1 python examples/optuna_search.py   # 8 short trials, for CI
"""

from __future__ import annotations

import argparse
import os

import optuna
import torch
from digits_data import digits_loaders, digits_model

from fluxtrain import Accuracy, Learner, LearningRate, Metrics, Schedule, Scheduler
from fluxtrain.integrations import OptunaPruning
from fluxtrain.lr_finder import lr_find


def new_learner(*callbacks) -> Learner:
    torch.manual_seed(0)  # every trial starts from the same weights and batch order
    model = digits_model()
    return Learner(
        model,
        digits_loaders(),
        torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9),
        torch.nn.functional.cross_entropy,
        Metrics(Accuracy()),
        *callbacks,
        usedefaultcallbacks=False,  # no progress bars: the study prints one line per trial
    )


def keyframes(peak: float, warmup: float, final: float) -> Schedule:
    """Up from ``peak / 25`` to ``peak`` over the first ``warmup`` of the fit, then down."""
    return Schedule([0.0, warmup, 1.0], [peak / 25, peak, peak * final], unit="fraction")


def shown(params: dict[str, float]) -> str:
    return ", ".join(f"{name} {value:.3g}" for name, value in params.items())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    fast = bool(os.environ.get("FLUXTRAIN_FAST"))
    parser.add_argument("--trials", type=int, default=8 if fast else 30)
    parser.add_argument("--epochs", type=int, default=2 if fast else 6)
    parser.add_argument("--storage", default=None, help="e.g. sqlite:///search.db")
    args = parser.parse_args()

    found = lr_find(new_learner(), start=1e-4, end=10.0, num_steps=60, seed=0)
    print(f"range test: {found}")

    def objective(trial: optuna.Trial) -> float:
        peak = trial.suggest_float("peak_lr", found.best / 4, found.best * 4, log=True)
        warmup = trial.suggest_float("warmup_fraction", 0.05, 0.5)
        final = trial.suggest_float("final_fraction", 1e-3, 0.3, log=True)
        pruning = OptunaPruning(trial, monitor="valid/Loss")
        learner = new_learner(Scheduler({LearningRate: keyframes(peak, warmup, final)}), pruning)
        result = learner.fit(args.epochs)
        losses = learner.cbstate.metrics_epoch["valid/Loss"]
        if result.stopped_by:
            print(f"trial {trial.number}: {result.stopped_by}: {result.reason}")
        else:
            print(f"trial {trial.number}: valid/Loss {losses[-1]:.4f} with {shown(trial.params)}")
        pruning.raise_if_pruned()  # the study records the trial as pruned
        return losses[-1]

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        study_name="digits-schedule",
        storage=args.storage,
        load_if_exists=True,
        sampler=optuna.samplers.TPESampler(seed=0),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=3),
    )
    study.optimize(objective, n_trials=args.trials)
    states = [trial.state.name for trial in study.trials]
    print(f"{states.count('COMPLETE')} trials complete, {states.count('PRUNED')} pruned")
    print(f"best valid/Loss {study.best_value:.4f}: {shown(study.best_params)}")
    print(f"its schedule: {keyframes(*study.best_params.values())!r}")


if __name__ == "__main__":
    main()
