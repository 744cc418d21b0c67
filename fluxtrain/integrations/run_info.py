"""What a tracker records besides scalars: the run's configuration, the fit's length, PNGs.

Examples:
    >>> from fluxtrain import LearningRate, Metrics
    >>> from fluxtrain.scheduler import Scheduler
    >>> from fluxtrain.testing import tiny_learner
    >>> learner = tiny_learner(Metrics(), Scheduler({LearningRate: 0.01}))
    >>> config = run_config(learner)
    >>> config["optimizer"], config["optimizer.lr"], config["schedule.LearningRate"]
    ('SGD', '0.01', "Constant(0.01, unit='step')")
"""

from __future__ import annotations

import math
import os
from typing import Any

from ..distributed import unwrap
from ..optimizers import as_dict
from ..scheduler import Scheduler


def run_config(learner: Any) -> dict[str, str]:
    """A learner's configuration as ``{name: text}``, what the trackers record as parameters.

    ``model`` and ``loss_fn`` (their class or function names), ``optimizer`` (its class; under
    several optimizers ``optimizer.<name>``) with its numeric and text defaults
    (``optimizer.lr``, ``optimizer.momentum``, ...), ``callbacks`` (their names, in order),
    ``schedule.<hyperparameter>`` (each schedule of each ``Scheduler``, as its ``repr``), and
    the ``fit`` call's ``n_epochs``, ``steps``, ``validate_every`` and ``steps_per_epoch`` when
    set.

    Examples:
        >>> from fluxtrain.testing import tiny_learner
        >>> from fluxtrain import Metrics
        >>> config = run_config(tiny_learner(Metrics(), lr=0.05))
        >>> {k: config[k] for k in ("model", "loss_fn", "optimizer", "optimizer.lr", "callbacks")}
        ... # doctest: +NORMALIZE_WHITESPACE
        {'model': 'Linear', 'loss_fn': 'mse_loss', 'optimizer': 'SGD', 'optimizer.lr': '0.05',
         'callbacks': 'Metrics'}
    """
    loss_fn = learner.loss_fn
    config = {
        "model": type(unwrap(learner.model)).__name__,
        "loss_fn": getattr(loss_fn, "__name__", type(loss_fn).__name__),
    }
    optimizers = as_dict(learner.optimizer)
    for name, optimizer in optimizers.items():
        key = "optimizer" if len(optimizers) == 1 else f"optimizer.{name}"
        config[key] = type(optimizer).__name__
        for option, value in sorted(optimizer.defaults.items()):
            if isinstance(value, (bool, int, float, str)):
                config[f"{key}.{option}"] = str(value)
    config["callbacks"] = ", ".join(cb.name for cb in learner.callbacks)
    for scheduler in (cb for cb in learner.callbacks if isinstance(cb, Scheduler)):
        for entry in scheduler.entries:
            config[f"schedule.{entry.hyperparameter.name}"] = repr(entry.schedule)
    fitstate = learner.fitstate
    fit = {
        "n_epochs": fitstate.n_epochs,
        "steps": fitstate.n_steps,
        "validate_every": fitstate.validate_every,
        "steps_per_epoch": fitstate.steps_per_epoch,
    }
    config.update({k: str(v) for k, v in fit.items() if v is not None and fitstate.fit_id})
    return config


def planned_epochs(fitstate: Any, steps_per_epoch: int) -> int:
    """The epochs the fit in progress spans: ``n_epochs``, or its step budget in epochs.

    Examples:
        >>> from fluxtrain.state import FitState
        >>> planned_epochs(FitState(n_epochs=None, n_steps=10), 4)
        3
    """
    if fitstate.n_steps is not None:
        return max(1, math.ceil(fitstate.n_steps / steps_per_epoch))
    return int(fitstate.n_epochs or 0)


def png_in(folder: str, figure: Any, name: str) -> str:
    """Saves ``figure`` as ``folder/name`` (a PNG: :func:`~fluxtrain.plots.save_png`) and
    returns the path.

    Examples:
        >>> import tempfile
        >>> from fluxtrain.plots import plot_schedule
        >>> path = png_in(tempfile.mkdtemp(), plot_schedule(0.1, 1, 2), "schedule.png")
        >>> os.path.basename(path), os.path.getsize(path) > 0
        ('schedule.png', True)
    """
    from ..plots import save_png  # matplotlib, only when a figure is saved

    path = os.path.join(folder, name)
    save_png(figure, path)
    return path
