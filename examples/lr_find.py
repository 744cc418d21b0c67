"""Find a learning rate with a range test, look at the curve, then train with one cycle.

Uses scikit-learn's handwritten digits (8x8 images, bundled with scikit-learn: no download).

    python examples/lr_find.py                     # curve saved to lr_find.png
    python examples/lr_find.py --plot curve.png
    FLUXTRAIN_FAST=1 python examples/lr_find.py    # a few seconds, for CI
"""

from __future__ import annotations

import argparse
import os

import torch
from digits_data import digits_loaders, digits_model

from fluxtrain import Accuracy, Learner, LearningRate, Metrics
from fluxtrain.lr_finder import lr_find
from fluxtrain.scheduler import Scheduler
from fluxtrain.schedules import onecycle


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plot", default="lr_find.png", help="where to save the curve (PNG)")
    args = parser.parse_args()
    fast = bool(os.environ.get("FLUXTRAIN_FAST"))
    n_epochs = 2 if fast else 8

    torch.manual_seed(0)
    model = digits_model()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    learner = Learner(
        model, digits_loaders(), optimizer, torch.nn.functional.cross_entropy, Metrics(Accuracy())
    )

    # lr_find trains the learner itself, then puts every weight, optimizer buffer, metric and
    # random state back, so the fit below runs as it would have without it.
    # One cycle warms up from max_lr / 25, so it takes a max_lr at the steepest fall of the
    # loss; "midpoint" (the default best) lies between "valley" and the lowest loss, see
    # docs/lr_finder.md. result.best is the first rule asked for.
    result = lr_find(
        learner,
        start=1e-5,
        end=10.0,
        num_steps=60 if fast else 100,
        suggest=("steep", "valley", "minimum", "slide"),
        seed=0,
    )
    print(result)
    for name, lr in result.suggestions.items():
        print(f"  {name:>8}: {lr:.3g}")
    result.plot(args.plot)
    print(f"curve saved to {args.plot}")

    learner.add_callback(Scheduler({LearningRate: onecycle(n_epochs, result.best)}))
    learner.fit(n_epochs)
    accuracy = learner.cbstate.metrics_epoch["valid/Accuracy"][-1]
    print(f"one cycle at max lr {result.best:.3g}: validation accuracy {accuracy:.3f}")
    if not fast:
        assert accuracy > 0.95, accuracy


if __name__ == "__main__":
    main()
