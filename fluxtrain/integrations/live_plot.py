"""LivePlot: a figure of the fit in progress, redrawn in place in a Jupyter notebook.

Examples:
    >>> import os, tempfile
    >>> from fluxtrain import LearningRate, Metrics
    >>> from fluxtrain.scheduler import Scheduler
    >>> from fluxtrain.testing import tiny_learner
    >>> path = os.path.join(tempfile.mkdtemp(), "live.png")
    >>> live = LivePlot(path=path)
    >>> scheduler = Scheduler({LearningRate: lambda t: 0.01 / (1 + t)})
    >>> _ = tiny_learner(Metrics(), scheduler, live).fit(2)
    >>> live.redraws, os.path.getsize(path) > 0
    (2, True)
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any

import numpy as np

from ..access import Read
from ..callback import Callback
from ..callbacks.metrics import Metrics
from ..distributed import is_main_process
from ..exceptions import FluxTrainError
from ..phases import AbstractTrainingPhase, AbstractValidationPhase, Phase
from ..scheduler import Scheduler
from .run_info import planned_epochs


def in_notebook() -> bool:
    """Whether this runs in a Jupyter kernel, where figures can be displayed in place.

    Examples:
        >>> in_notebook()
        False
    """
    shell = sys.modules.get("IPython")
    if shell is None or "ipykernel.zmqshell" not in sys.modules:
        return False
    return shell.get_ipython() is not None


class LivePlot(Callback):
    """Redraws loss, metrics and scheduled hyperparameters while a fit runs.

    The figure is :func:`~fluxtrain.history_plot.plot_history`'s (metrics per epoch on the
    left, hyperparameters per step on the right) with, on each hyperparameter, the curve the
    ``Scheduler`` plans for the whole fit (:meth:`~fluxtrain.Scheduler.simulate`, dashed)
    beside the values applied so far. It is redrawn at the end of each epoch (after its
    validation), and, with ``interval``, also after a training step when ``interval`` seconds
    have passed since the last drawing. In a Jupyter notebook the figure is shown below the
    cell and replaced at each redraw; with ``path`` it is also saved as a PNG (the only output
    outside a notebook). The planned curve is that of a fresh fit of the fit's length, drawn
    from the step the fit starts at: exact for a first fit and for schedules in unit
    ``"fraction"``; it is left out when the number of steps per epoch is unknown.

    Args:
        interval: Seconds between redraws within an epoch; ``None`` draws once per epoch.
        path: A PNG file rewritten at each redraw.
        notebook: Display in a notebook; by default when running in a Jupyter kernel.

    Attributes:
        redraws: How many times the figure was drawn in the latest fit.
        figure: The latest figure.

    Raises:
        FluxTrainError: For bad arguments.

    Examples:
        >>> LivePlot(interval=0)
        Traceback (most recent call last):
        ...
        fluxtrain.exceptions.FluxTrainError: LivePlot: interval must be a number > 0 ...
    """

    stateaccess = {"cbstate": Read, "fitstate": Read, "callbacks": Read}
    runafter = (Metrics, Scheduler)

    def __init__(
        self,
        interval: float | None = None,
        path: str | os.PathLike[str] | None = None,
        notebook: bool | None = None,
    ) -> None:
        if interval is not None and (
            isinstance(interval, bool) or not isinstance(interval, (int, float)) or interval <= 0
        ):
            raise FluxTrainError(
                f"LivePlot: interval must be a number > 0 (seconds between redraws) or None "
                f"(once per epoch), got {interval!r}."
            )
        if path is not None and not isinstance(path, (str, os.PathLike)):
            raise FluxTrainError(
                f"LivePlot: path must be a str, os.PathLike or None, got {path!r}."
            )
        if notebook is not None and not isinstance(notebook, bool):
            raise FluxTrainError(
                f"LivePlot: notebook must be True, False or None, got {notebook!r}."
            )
        from ..plots import new_figure

        new_figure("LivePlot")  # fails now, not at the first epoch, without matplotlib
        self.interval = interval
        self.path = None if path is None else os.fspath(path)
        self.notebook = notebook
        self.redraws = 0
        self.figure: Any = None
        self._planned: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self._handle: Any = None
        self._next = 0.0

    def on_fit_begin(self, phase: Phase, learner: Any) -> None:
        self.redraws, self._handle = 0, None
        self._next = self._deadline()
        fitstate = learner.fitstate
        start = fitstate.total_steps - fitstate.step  # the fit's first step
        self._planned = {}
        for scheduler in (cb for cb in learner.callbacks if isinstance(cb, Scheduler)):
            spe = scheduler.steps_per_epoch or fitstate.updates_per_epoch
            if not spe:
                continue
            n_steps = fitstate.n_steps  # a step budget cuts the plan; an epoch budget is all of it
            for name, values in scheduler.simulate(planned_epochs(fitstate, spe), spe).items():
                steps = np.arange(start, start + len(values))[:n_steps]
                self._planned[name] = (steps, values[:n_steps])

    def on_step_end(self, phase: Phase, learner: Any) -> None:
        if self.interval is None or not isinstance(phase, AbstractTrainingPhase):
            return
        if time.monotonic() >= self._next:
            self._draw(learner)

    def on_epoch_end(self, phase: Phase, learner: Any) -> None:
        fitstate = learner.fitstate
        last = AbstractValidationPhase if fitstate.has_validation else AbstractTrainingPhase
        if isinstance(phase, last):
            self._draw(learner)

    def _deadline(self) -> float:
        return time.monotonic() + (self.interval or 0.0)

    def _draw(self, learner: Any) -> None:
        self._next = self._deadline()
        if not is_main_process():
            return
        from ..history_plot import epoch_series, plot_history

        cbstate = learner.cbstate
        metrics = epoch_series(cbstate.get("metrics_epoch", None) or {})
        if not metrics and not any((cbstate.get("hyperparams", None) or {}).values()):
            return  # nothing to draw yet

        figure = plot_history(learner)
        figure.suptitle("Training in progress")
        for ax in figure.axes:
            planned = self._planned.get(ax.get_title())
            if planned is not None:
                ax.get_lines()[0].set_label("applied")
                ax.plot(*planned, linestyle="--", linewidth=1.0, color="0.5", label="planned")
                ax.legend(frameon=False, fontsize="small")
        self.figure = figure
        self.redraws += 1
        if self.path is not None:
            from ..plots import save_png

            save_png(figure, self.path)
        if self.notebook if self.notebook is not None else in_notebook():
            self._show(figure)

    def _show(self, figure: Any) -> None:
        from IPython.display import display

        if self._handle is None:
            self._handle = display(figure, display_id=True)
        else:
            self._handle.update(figure)

    def __repr__(self) -> str:
        return f"LivePlot(interval={self.interval!r}, path={self.path!r})"
