"""Plots of schedules before training and of the hyperparameters a fit applied.

matplotlib is an optional extra (``pip install fluxtrain[plot]``). The figures are built
without ``pyplot``, so nothing stays open in a global figure list; in a Jupyter notebook the
returned figure shows itself as a PNG (:func:`new_figure`, no ``%matplotlib inline`` needed), and
``path=`` saves a PNG.

Examples:
    >>> from fluxtrain import LearningRate
    >>> from fluxtrain.scheduler import Scheduler
    >>> figure = plot_schedule(Scheduler({LearningRate: lambda t: 0.1 * 0.9**t}), 3, 10)
    >>> len(figure.axes)  # one subplot per hyperparameter
    1
"""

from __future__ import annotations

import functools
import io
import os
from collections.abc import Mapping, Sequence
from typing import IO, TYPE_CHECKING, Any

import numpy as np

from .exceptions import FluxTrainError
from .scheduler import Scheduler
from .schedules.base import as_schedule
from .simulation import unit_times

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def new_figure(owner: str = "fluxtrain's plots", **kwargs: Any) -> Figure:
    """A matplotlib ``Figure``, built without ``pyplot``, that Jupyter shows as a PNG.

    It is matplotlib's ``Figure`` with a ``_repr_png_`` method, so a notebook cell that ends
    with one shows the picture, also without ``%matplotlib inline`` (with it, matplotlib's own
    display is used). Every figure of fluxtrain's plots is made here.

    Args:
        owner: Who needs matplotlib, for the error when it is missing.
        **kwargs: Passed to ``Figure`` (``figsize``, ``layout``, ...).

    Raises:
        ImportError: When matplotlib is not installed.

    Examples:
        >>> figure = new_figure(figsize=(2.0, 1.0))
        >>> _ = figure.add_subplot().plot([0, 1], [1, 0])
        >>> figure._repr_png_()[:8]  # what a notebook shows
        b'\\x89PNG\\r\\n\\x1a\\n'
    """
    return _figure_class(owner)(**kwargs)


def __getattr__(name: str) -> Any:  # the figure class, created once matplotlib is imported
    if name == "PlotFigure":
        return _figure_class("fluxtrain.plots.PlotFigure")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _figure_class(owner: str) -> type[Figure]:
    try:
        import matplotlib.figure  # noqa: F401
    except ImportError as error:
        raise ImportError(
            f"{owner} needs matplotlib: pip install fluxtrain[plot] (or pip install matplotlib)."
        ) from error
    return _define_figure_class()


@functools.cache
def _define_figure_class() -> type[Figure]:
    from matplotlib.figure import Figure

    class PlotFigure(Figure):
        """matplotlib's ``Figure``, shown as a PNG by Jupyter (see :func:`new_figure`)."""

        def _repr_png_(self) -> bytes:
            buffer = io.BytesIO()
            save_png(self, buffer)
            return buffer.getvalue()

    PlotFigure.__module__, PlotFigure.__qualname__ = __name__, "PlotFigure"  # it pickles
    return PlotFigure


def save_png(figure: Figure, path: str | os.PathLike[str] | IO[bytes]) -> None:
    """Writes ``figure`` as a PNG of 100 dpi to ``path`` (a file name or a binary file): how
    fluxtrain's plots save and show themselves.

    Examples:
        >>> buffer = io.BytesIO()
        >>> save_png(new_figure(figsize=(1.0, 1.0)), buffer)
        >>> buffer.getvalue()[:8]
        b'\\x89PNG\\r\\n\\x1a\\n'
    """
    target = path if hasattr(path, "write") else os.fspath(path)  # type: ignore[arg-type]
    figure.savefig(target, format="png", dpi=100)


def _new_figure(n_rows: int) -> Figure:
    figure = new_figure(figsize=(7.0, 1.0 + 2.2 * n_rows), layout="constrained")
    figure.subplots(n_rows, 1, sharex=True, squeeze=False)
    return figure


def _draw(
    series: Mapping[str, tuple[np.ndarray, np.ndarray]],
    steps_per_epoch: int | None,
    title: str,
    path: str | os.PathLike[str] | None,
) -> Figure:
    if not series:
        raise FluxTrainError(f"{title}: there is nothing to plot.")
    figure = _new_figure(len(series))
    axes = list(figure.axes)
    for ax, (name, (steps, values)) in zip(axes, series.items()):
        ax.plot(steps, values, linewidth=1.5)
        ax.set_ylabel(name)
        ax.grid(True, alpha=0.3)
        ax.ticklabel_format(axis="y", style="sci", scilimits=(-3, 4))
    axes[-1].set_xlabel("training step")
    if steps_per_epoch:
        spe = float(steps_per_epoch)

        def to_epoch(step: Any) -> Any:
            return step / spe

        def to_step(epoch: Any) -> Any:
            return epoch * spe

        top = axes[0].secondary_xaxis("top", functions=(to_epoch, to_step))
        top.set_xlabel("epoch")
    figure.suptitle(title)
    if path is not None:
        save_png(figure, path)
    return figure


def plot_schedule(
    schedule_or_scheduler: Any,
    n_epochs: int,
    steps_per_epoch: int,
    path: str | os.PathLike[str] | None = None,
    batch_size: int | None = None,
    samples_per_epoch: int | None = None,
) -> Figure:
    """Plots what a fresh fit of ``n_epochs`` would apply, one subplot per hyperparameter.

    Args:
        schedule_or_scheduler: A :class:`~fluxtrain.Scheduler`, or one schedule (a schedule,
            a function of the step, a number).
        n_epochs: Epochs to plot.
        steps_per_epoch: Training steps per epoch (the x axis is in steps, epochs on top).
        path: Where to save a PNG, if given.
        batch_size: Samples per step, for schedules in unit ``"sample"``.
        samples_per_epoch: Training samples per epoch, for a ``Scheduler`` with a
            ``BatchSize`` schedule (:meth:`~fluxtrain.Scheduler.simulate`); its steps then
            follow the planned batch sizes.

    Returns:
        The matplotlib ``Figure``.

    Examples:
        >>> from fluxtrain import LearningRate, Momentum
        >>> from fluxtrain.scheduler import Scheduler
        >>> scheduler = Scheduler({LearningRate: lambda t: 0.1 / (1 + t), Momentum: 0.9})
        >>> len(plot_schedule(scheduler, 2, 5).axes)
        2
    """
    for name, value in (("n_epochs", n_epochs), ("steps_per_epoch", steps_per_epoch)):
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise FluxTrainError(f"plot_schedule: {name} must be an int > 0, got {value!r}.")
    if isinstance(schedule_or_scheduler, Scheduler):
        values = schedule_or_scheduler.simulate(
            n_epochs, steps_per_epoch, batch_size, samples_per_epoch
        )
    else:
        schedule = as_schedule(schedule_or_scheduler, "plot_schedule")
        times = unit_times(schedule.unit, n_epochs, steps_per_epoch, batch_size)
        values = {f"value ({schedule.unit} unit)": schedule(times)}
    series = {name: (np.arange(len(v)), v) for name, v in values.items()}
    return _draw(series, steps_per_epoch, "Scheduled hyperparameters", path)


def plot_hyperparams(learner: Any, path: str | os.PathLike[str] | None = None) -> Figure:
    """Plots the values a :class:`~fluxtrain.Scheduler` applied, from ``cbstate.hyperparams``.

    Args:
        learner: A learner that has been fitted with a ``Scheduler``.
        path: Where to save a PNG, if given.

    Returns:
        The matplotlib ``Figure``, one subplot per hyperparameter.

    Examples:
        >>> from fluxtrain import LearningRate
        >>> from fluxtrain.scheduler import Scheduler
        >>> from fluxtrain.testing import tiny_learner
        >>> learner = tiny_learner(Scheduler({LearningRate: lambda t: 0.1 / (1 + t)}))
        >>> _ = learner.fit(2)
        >>> len(plot_hyperparams(learner).axes)
        1
    """
    records: Mapping[str, Sequence[tuple[int, float]]] = learner.cbstate.get("hyperparams", {})
    series = {
        name: (np.array([s for s, _ in pairs]), np.array([v for _, v in pairs], dtype=float))
        for name, pairs in records.items()
        if pairs
    }
    if not series:
        raise FluxTrainError(
            "plot_hyperparams: the learner has no recorded hyperparameters "
            "(cbstate.hyperparams is empty). Add a Scheduler callback and fit first."
        )
    return _draw(series, learner.fitstate.steps_per_epoch, "Applied hyperparameters", path)
