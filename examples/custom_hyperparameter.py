"""Schedule hyperparameters that are not the optimizer's: dropout and a loss-term weight.

Two user-defined hyperparameters ride along with the learning rate on scikit-learn's
handwritten digits (offline): the dropout probability of the model falls from 0.5 to 0.05, and
the weight of a logit penalty (``mean(logits**2)``, keeping the outputs small early on) decays
from 1e-2 to 0 over the first half of training, while the learning rate follows a one-cycle.
fluxtrain ships both kinds (``DropoutRate`` and ``Attribute("loss_fn.weight")``, see
``examples/schedule_anything.py``); this example shows how to write a hyperparameter of your own.

    python examples/custom_hyperparameter.py
    FLUXTRAIN_FAST=1 python examples/custom_hyperparameter.py   # one epoch, for CI
"""

from __future__ import annotations

import os

import torch
from digits_data import digits_loaders, digits_model

from fluxtrain import (
    Accuracy,
    HyperParameter,
    HyperParameterError,
    Learner,
    LearningRate,
    Metrics,
    Scheduler,
    Write,
)
from fluxtrain.easings import polyout, sineio
from fluxtrain.schedules import onecycle
from fluxtrain.schedules.keyframes import Schedule


class DropoutProb(HyperParameter):
    """The ``p`` of every ``torch.nn.Dropout`` in the model."""

    stateaccess = {"model": Write}

    def check(self, learner):
        if not any(isinstance(m, torch.nn.Dropout) for m in learner.model.modules()):
            raise HyperParameterError(
                "DropoutProb: the model has no torch.nn.Dropout layer; add one or drop "
                "DropoutProb from the Scheduler."
            )

    def sethyperparameter(self, learner, value):
        for module in learner.model.modules():
            if isinstance(module, torch.nn.Dropout):
                module.p = value


class PenalizedCrossEntropy(torch.nn.Module):
    """Cross-entropy plus ``penalty * mean(logits**2)``; ``penalty`` is scheduled."""

    def __init__(self, penalty: float = 0.0) -> None:
        super().__init__()
        self.penalty = penalty

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        loss = torch.nn.functional.cross_entropy(logits, targets)
        return loss + self.penalty * logits.pow(2).mean()


class LogitPenalty(HyperParameter):
    """The weight of the logit penalty term of :class:`PenalizedCrossEntropy`."""

    stateaccess = {"loss_fn": Write}

    def sethyperparameter(self, learner, value):
        learner.loss_fn.penalty = value


def main() -> None:
    torch.manual_seed(0)
    n_epochs = 1 if os.environ.get("FLUXTRAIN_FAST") else 8
    model = digits_model(hidden=256, dropout=0.5)
    scheduler = Scheduler(
        (LearningRate, onecycle(n_epochs, 0.3)),
        (DropoutProb, Schedule([0, n_epochs], [0.5, 0.05], polyout(2))),
        (LogitPenalty, Schedule([0, 0.5], [1e-2, 0.0], sineio(), unit="fraction")),
    )
    train, valid = digits_loaders()
    planned = scheduler.simulate(n_epochs, steps_per_epoch=len(train))
    print("first values planned:", {name: round(float(v[0]), 5) for name, v in planned.items()})
    learner = Learner(
        model,
        (train, valid),
        torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9),
        PenalizedCrossEntropy(),
        Metrics(Accuracy()),
        scheduler,
    )
    learner.fit(n_epochs)
    applied = learner.cbstate.hyperparams
    print("last values applied:", {name: round(pairs[-1][1], 5) for name, pairs in applied.items()})
    accuracy = learner.cbstate.metrics_epoch["valid/Accuracy"][-1]
    print(f"validation accuracy: {accuracy:.3f}")
    if not os.environ.get("FLUXTRAIN_FAST"):
        assert accuracy > 0.95, accuracy


if __name__ == "__main__":
    main()
