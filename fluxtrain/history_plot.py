"""A picture of a fit: metrics per epoch and hyperparameters per step, in one figure.

matplotlib is an optional extra (``pip install fluxtrain[plot]``). The figure is built without
``pyplot``, so nothing stays open in a global figure list; in a Jupyter notebook it shows itself
(:func:`~fluxtrain.plots.new_figure`); ``path=`` saves a PNG through the Agg backend.

Examples:
    >>> from fluxtrain import LearningRate, Metrics
    >>> from fluxtrain.scheduler import Scheduler
    >>> from fluxtrain.testing import tiny_learner
    >>> learner = tiny_learner(Metrics(), Scheduler({LearningRate: lambda t: 0.01 * 0.9**t}))
    >>> _ = learner.fit(3)
    >>> [ax.get_title() for ax in plot_history(learner).axes]
    ['Loss', 'LearningRate']
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .exceptions import FluxTrainError

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure


def epoch_series(
    metrics_epoch: Mapping[str, Sequence[float]],
) -> dict[str, dict[str, list[float]]]:
    """Groups ``cbstate.metrics_epoch`` by metric: ``{metric: {phase: values}}``.

    Keys are ``"<phase>/<metric>"`` (split at the first ``/``); metrics keep the order in which
    they first appear.

    Examples:
        >>> epoch_series({"train/Loss": [2.0, 1.0], "valid/Loss": [3.0], "valid/Accuracy": [0.5]})
        {'Loss': {'train': [2.0, 1.0], 'valid': [3.0]}, 'Accuracy': {'valid': [0.5]}}
    """
    grouped: dict[str, dict[str, list[float]]] = {}
    for key, values in metrics_epoch.items():
        phase, _, metric = key.partition("/")
        if not metric:
            phase, metric = "", key
        if values and getattr(values[-1], "ndim", 0) == 0:  # per-class tensors are not drawn
            grouped.setdefault(metric, {})[phase] = [float(v) for v in values]
    return grouped


def plot_history(
    learner: Any, path: str | os.PathLike[str] | None = None, x: str = "auto"
) -> Figure:
    """Plots a learner's metrics per epoch and its hyperparameters per training step.

    The left column has one subplot per metric (``Loss``, ``Accuracy``, ...) from
    ``cbstate.metrics_epoch``, with a line per phase (``train``, ``valid``); the i-th value of a
    phase is drawn at epoch i (from 1), or, on a step axis, at the training step it was recorded
    at (``cbstate.metrics_at``). The right column has one subplot per hyperparameter from
    ``cbstate.hyperparams`` (recorded by a ``Scheduler``), against the training step. Either
    column is left out when there is nothing for it.

    Args:
        learner: A learner fitted with :class:`~fluxtrain.Metrics` and/or a ``Scheduler``.
        path: Where to save a PNG, if given.
        x: The metrics' axis: ``"epoch"``, ``"step"``, or ``"auto"`` (steps when the last fit
            counted steps or validated every few steps, ``fit(steps=...)`` or
            ``validate_every``, else epochs).

    Returns:
        The matplotlib ``Figure``: metric subplots first, then hyperparameter subplots.

    Raises:
        FluxTrainError: When the learner recorded neither metrics nor hyperparameters.
        ImportError: When matplotlib is not installed.

    Examples:
        >>> import os, tempfile
        >>> from fluxtrain import Accuracy, Metrics
        >>> from fluxtrain.testing import tiny_learner
        >>> learner = tiny_learner(Metrics())
        >>> _ = learner.fit(2)
        >>> path = os.path.join(tempfile.mkdtemp(), "history.png")
        >>> figure = plot_history(learner, path)
        >>> [line.get_label() for line in figure.axes[0].get_lines()], os.path.getsize(path) > 0
        (['train', 'valid'], True)
    """
    if x not in ("auto", "epoch", "step"):
        raise FluxTrainError(f"plot_history: x must be 'auto', 'epoch' or 'step', got {x!r}.")
    cbstate = learner.cbstate
    fitstate = learner.fitstate
    steps = cbstate.get("metrics_at", None) or {}
    if x == "auto":
        by_steps = fitstate.n_steps is not None or fitstate.validate_every is not None
        x = "step" if by_steps and steps else "epoch"
    metrics = epoch_series(cbstate.get("metrics_epoch", None) or {})
    at = epoch_series(steps) if x == "step" else {}
    records: Mapping[str, Sequence[tuple[int, float]]] = cbstate.get("hyperparams", None) or {}
    hyperparams = {name: pairs for name, pairs in records.items() if pairs}
    if not metrics and not hyperparams:
        raise FluxTrainError(
            "plot_history: the learner has no recorded metrics (cbstate.metrics_epoch) and no "
            "hyperparameters (cbstate.hyperparams). Fit it with Metrics(...) and/or a "
            "Scheduler(...) callback first."
        )
    columns = [column for column in (metrics, hyperparams) if column]
    n_rows = max(len(column) for column in columns)
    figure = _new_figure(n_rows, len(columns))
    grid = figure.add_gridspec(n_rows, len(columns))
    col = 0
    if metrics:
        for row, (metric, phases) in enumerate(metrics.items()):
            _draw_metric(figure.add_subplot(grid[row, col]), metric, phases, at.get(metric))
        col += 1
    for row, (name, pairs) in enumerate(hyperparams.items()):
        _draw_hyperparameter(figure.add_subplot(grid[row, col]), name, pairs)
    figure.suptitle("Training history")
    if path is not None:
        from .plots import save_png

        save_png(figure, path)
    return figure


def _new_figure(n_rows: int, n_cols: int) -> Figure:
    from .plots import new_figure

    size = (5.0 * n_cols, 1.0 + 2.4 * n_rows)
    return new_figure("plot_history", figsize=size, layout="constrained")


def _draw_metric(
    ax: Axes,
    metric: str,
    phases: Mapping[str, Sequence[float]],
    steps: Mapping[str, Sequence[float]] | None,
) -> None:
    from matplotlib.ticker import MaxNLocator

    for phase, values in phases.items():
        xs = steps.get(phase) if steps is not None else None
        if xs is None or len(xs) != len(values):
            xs = range(1, len(values) + 1)
        ax.plot(xs, values, marker="o", markersize=3, linewidth=1.5, label=phase or metric)
    ax.set_title(metric)
    ax.set_xlabel("epoch" if steps is None else "training step")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(True, alpha=0.3)
    ax.legend(frameon=False)


def _draw_hyperparameter(ax: Axes, name: str, pairs: Sequence[tuple[int, float]]) -> None:
    from matplotlib.ticker import MaxNLocator

    ax.plot([step for step, _ in pairs], [float(value) for _, value in pairs], linewidth=1.5)
    ax.set_title(name)
    ax.set_xlabel("training step")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(True, alpha=0.3)
    ax.ticklabel_format(axis="y", style="sci", scilimits=(-3, 4))
