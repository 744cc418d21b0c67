"""What the experiment-tracker backends share: a run per fit series, its configuration, figures.

A tracker backend (:class:`~fluxtrain.integrations.MLflowBackend`,
:class:`~fluxtrain.integrations.WandbBackend`) is two things at once: a
:class:`~fluxtrain.callbacks.backends.LoggerBackend` that :class:`~fluxtrain.LogMetrics` and
:class:`~fluxtrain.LogHyperParams` write scalars to, and a callback of the learner that starts
the tracker's run at ``FitBegin``, records the run's configuration
(:func:`~fluxtrain.integrations.run_config`) and the schedule's plot, and at ``FitEnd`` adds
the history plot and ends the run. Its
:meth:`~TrackerBackend.state_dict` holds the run's id, so a fit resumed from a checkpoint
(``fit(n, resume="latest")``) continues the same run.

Examples:
    >>> from fluxtrain import LogMetrics
    >>> TrackerBackend.runafter == (LogMetrics, LogHyperParams)  # it ends the run after them
    True
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..access import Read
from ..callback import Callback
from ..callbacks.logging import LogHyperParams, LogMetrics
from ..distributed import is_main_process
from ..exceptions import FluxTrainError
from ..scheduler import Scheduler
from .run_info import planned_epochs, run_config

Scalar = tuple[str, float, int, int, str]
"""One logged value: ``(name, value, step, epoch, phase)``."""


class TrackerBackend(Callback):
    """Base of the tracker backends: a logging backend that is also the run's callback.

    Values given to :meth:`log_scalar` are buffered and sent to the tracker in one call at
    :meth:`flush` (the logging callbacks flush at the end of every epoch, the
    :class:`~fluxtrain.Checkpointer` before every checkpoint). A subclass implements
    ``_open_run(run_id)`` (start a run, or continue the one with that id; returns the id),
    ``_log_params``, ``_log_scalars``, ``_log_figure`` and ``_end_run(ending)``. Values
    logged outside a fit (``LogMetrics`` logs ``eval/...`` at ``learner.evaluate``) go to the
    same run, opened again for them.

    Args:
        figures: Log the plot of each ``Scheduler``'s plan at the run's first ``FitBegin``
            (``schedule.png``, ``schedule_2.png``, ...) and the history plot at every
            ``FitEnd`` (needs matplotlib).

    Raises:
        ImportError: With ``figures=True`` when matplotlib is not installed.
        FluxTrainError: At the first value, when the backend is not among the learner's
            callbacks too.

    Examples:
        >>> class Printed(TrackerBackend):
        ...     def _open_run(self, run_id):
        ...         return run_id or "run-1"
        ...     def _log_params(self, params):
        ...         print(sorted(params)[:2])
        ...     def _log_scalars(self, scalars):
        ...         print(scalars)
        ...     def _log_figure(self, figure, name):
        ...         pass
        ...     def _end_run(self, ending):
        ...         print(ending)
        >>> from fluxtrain import LogMetrics, Metrics
        >>> from fluxtrain.testing import tiny_learner
        >>> backend = Printed(figures=False)
        >>> _ = tiny_learner(Metrics(), LogMetrics(backend), backend, n_batches=1,
        ...                  validation=False).fit(1)  # doctest: +ELLIPSIS
        ['callbacks', 'loss_fn']
        [('step/train/Loss', 12.96..., 0, 1, 'train'), ('train/Loss', 12.96..., 1, 1, 'train')]
        completed
        >>> backend.state_dict()
        {'run_id': 'run-1'}
    """

    stateaccess = {
        "model": Read,
        "optimizer": Read,
        "loss_fn": Read,
        "callbacks": Read,
        "fitstate": Read,
        "cbstate": Read,
    }
    runafter = (LogMetrics, LogHyperParams)

    def __init__(self, figures: bool = True) -> None:
        owner = type(self).__name__
        if not isinstance(figures, bool):
            raise FluxTrainError(f"{owner}: figures must be True or False, got {figures!r}.")
        if figures:
            import importlib.util

            if importlib.util.find_spec("matplotlib") is None:
                raise ImportError(
                    f"{owner}: figures=True logs plots, which need matplotlib: pip install "
                    f"fluxtrain[plot] (or pip install matplotlib), or pass figures=False."
                )
        self.figures = figures
        self.run_id: str | None = None
        self._buffer: list[Scalar] = []
        self._in_fit = False
        self._attached = False  # a callback of a learner

    # -- the LoggerBackend protocol -----------------------------------------------------------

    def log_scalar(self, name: str, value: float, step: int, epoch: int, phase: str) -> None:
        """Buffers one value; :meth:`flush` sends it."""
        if not self._attached:
            owner = type(self).__name__
            raise FluxTrainError(
                f"{owner}: got {name!r} from a learner that does not hold it. Add the "
                f"backend to the learner's callbacks too, which starts and resumes its run: "
                f"backend = {owner}(...); Learner(..., LogMetrics(backend), "
                f"LogHyperParams(backend), backend)."
            )
        self._buffer.append((name, float(value), int(step), int(epoch), phase))

    def flush(self) -> None:
        """Sends the buffered values to the tracker.

        Outside a fit (``learner.evaluate(...)`` after one), the run is opened again for them
        (a new one if no fit ran yet) and ended after.
        """
        if not self._buffer:
            return
        scalars, self._buffer = self._buffer, []
        if self._in_fit:
            self._log_scalars(scalars)
            return
        self.run_id = self._open_run(self.run_id)
        try:
            self._log_scalars(scalars)
        finally:
            self._end_run("completed")

    def close(self) -> None:
        """Sends the buffered values; the run itself ends at the callback's ``FitEnd``."""
        self.flush()

    # -- the callback -------------------------------------------------------------------------

    def init(self, learner: Any) -> None:
        self._attached = True

    def on_fit_begin(self, phase: Any, learner: Any) -> None:
        if not is_main_process():
            return
        new = self.run_id is None
        self.run_id = self._open_run(self.run_id)
        self._in_fit = True
        if new:
            self._log_params(run_config(learner))
            if self.figures:
                self._log_schedule(learner)

    def on_fit_end(self, phase: Any, learner: Any) -> None:
        if not self._in_fit:
            return
        self._in_fit = False
        try:
            self.flush()
            if self.figures:
                self._log_history(learner)
        finally:
            self._buffer = []
            self._end_run(learner.fitstate.ending or "completed")

    def _log_schedule(self, learner: Any) -> None:
        from ..plots import plot_schedule

        fitstate = learner.fitstate
        schedulers = [cb for cb in learner.callbacks if isinstance(cb, Scheduler)]
        for index, scheduler in enumerate(schedulers):
            spe = scheduler.steps_per_epoch or fitstate.updates_per_epoch
            if spe:  # unknown for data without len(): no plan to draw
                figure = plot_schedule(scheduler, planned_epochs(fitstate, spe), spe)
                self._log_figure(figure, f"schedule{f'_{index + 1}' if index else ''}.png")

    def _log_history(self, learner: Any) -> None:
        from ..history_plot import epoch_series, plot_history

        cbstate = learner.cbstate
        metrics = epoch_series(cbstate.get("metrics_epoch", None) or {})
        if metrics or any((cbstate.get("hyperparams", None) or {}).values()):  # a picture
            self._log_figure(plot_history(learner), "history.png")

    def state_dict(self) -> dict[str, Any]:
        """The run's id, so a resumed fit continues the same run."""
        return {"run_id": self.run_id}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Takes the run's id of a checkpoint (a resumed fit logs to that run)."""
        self.run_id = state["run_id"]

    # -- for subclasses -----------------------------------------------------------------------

    def _open_run(self, run_id: str | None) -> str:
        raise NotImplementedError

    def _log_params(self, params: dict[str, str]) -> None:
        raise NotImplementedError

    def _log_scalars(self, scalars: list[Scalar]) -> None:
        raise NotImplementedError

    def _log_figure(self, figure: Any, name: str) -> None:
        raise NotImplementedError

    def _end_run(self, ending: str) -> None:
        raise NotImplementedError
