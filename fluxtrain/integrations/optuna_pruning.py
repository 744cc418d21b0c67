"""Optuna: stop a trial's fit when the study's pruner says so.

Needs the optional extra ``pip install fluxtrain[optuna]``; optuna is imported by the objects
that use it, not with fluxtrain.

Examples:
    >>> import importlib.util
    >>> from fluxtrain import Metrics
    >>> from fluxtrain.testing import tiny_learner
    >>> if importlib.util.find_spec("optuna"):
    ...     import optuna
    ...     optuna.logging.set_verbosity(optuna.logging.WARNING)
    ...     study = optuna.create_study(pruner=optuna.pruners.ThresholdPruner(upper=1.0))
    ...     trial = study.ask()
    ...     result = tiny_learner(Metrics(), OptunaPruning(trial)).fit(3)
    ...     print(result.stopped_by, result.epochs_completed)
    ... else:
    ...     print("OptunaPruning 1")
    OptunaPruning 1
"""

from __future__ import annotations

import math
from typing import Any

from ..access import Read
from ..callback import Callback
from ..callbacks.metrics import Metrics
from ..exceptions import CancelFitting, FluxTrainError
from ..phases import AbstractTrainingPhase, AbstractValidationPhase, Phase
from ..state import check_recorded, epoch_values


class OptunaPruning(Callback):
    """Reports a metric to an Optuna trial and ends the fit when the trial is pruned.

    After each epoch (after its validation when the fit has validation data), or after each
    validation of ``fit(validate_every=k)``, it reports the newest value of
    ``cbstate.metrics_epoch[monitor]`` with ``trial.report(value, step)``: ``step`` is the
    number of epochs completed, or, under ``validate_every``, the training step the validation
    ran at. When ``trial.should_prune()`` says so it raises
    :class:`~fluxtrain.exceptions.CancelFitting`: the fit ends cleanly (``FitEnd`` fires) and
    its :class:`~fluxtrain.FitResult` has ``stopped_by == "OptunaPruning"`` and a ``reason``
    naming the pruner, the step and the value. End the objective with
    :meth:`raise_if_pruned` (or ``raise optuna.TrialPruned(result.reason)``) so Optuna records
    the trial as pruned.

    Args:
        trial: The ``optuna.Trial`` of the objective.
        monitor: Key of ``cbstate.metrics_epoch``, e.g. ``"valid/Loss"``.

    Raises:
        FluxTrainError: For a ``trial`` that is no Optuna trial or a bad ``monitor``; at
            ``FitBegin`` without a ``Metrics`` callback; at the first report when ``monitor``
            is not recorded.

    Examples:
        >>> OptunaPruning("trial")
        Traceback (most recent call last):
        ...
        fluxtrain.exceptions.FluxTrainError: OptunaPruning: trial must be an optuna.Trial ...
    """

    stateaccess = {"cbstate.metrics_epoch": Read, "fitstate": Read}
    runafter = (Metrics,)

    def __init__(self, trial: Any, monitor: str = "valid/Loss") -> None:
        if not (callable(getattr(trial, "report", None)) and hasattr(trial, "should_prune")):
            raise FluxTrainError(
                f"OptunaPruning: trial must be an optuna.Trial (the objective's argument), got "
                f"{type(trial).__name__}: {trial!r}."
            )
        if not isinstance(monitor, str) or not monitor:
            raise FluxTrainError(
                f"OptunaPruning: monitor must be a metric name such as 'valid/Loss', got "
                f"{monitor!r}."
            )
        self.trial = trial
        self.monitor = monitor
        self.pruned_reason: str | None = None

    def on_fit_begin(self, phase: Phase, learner: Any) -> None:
        check_recorded(learner.cbstate, self.monitor, "OptunaPruning")
        self.pruned_reason = None

    def on_epoch_end(self, phase: Phase, learner: Any) -> None:
        fitstate = learner.fitstate
        last = AbstractValidationPhase if fitstate.has_validation else AbstractTrainingPhase
        if not isinstance(phase, last):
            return
        values = epoch_values(learner.cbstate.metrics_epoch, self.monitor, "OptunaPruning")
        value = float(values[-1])
        if fitstate.validate_every is None:
            step, unit = len(values), "epoch"
        else:
            step, unit = int(fitstate.total_steps), "step"
        self.trial.report(value, step)
        if self.trial.should_prune():
            pruner = type(self.trial.study.pruner).__name__
            shown = "nan" if math.isnan(value) else f"{value:.4g}"
            self.pruned_reason = (
                f"{pruner} pruned trial {self.trial.number} at {unit} {step}: "
                f"{self.monitor} = {shown}"
            )
            raise CancelFitting(self.pruned_reason)

    def raise_if_pruned(self) -> None:
        """Raises ``optuna.TrialPruned`` with the reason when this callback ended the last fit.

        Call it after ``learner.fit(...)`` in the objective, so the study records the trial as
        pruned rather than complete.

        Examples:
            >>> import importlib.util
            >>> if importlib.util.find_spec("optuna"):
            ...     import optuna
            ...     optuna.logging.set_verbosity(optuna.logging.WARNING)
            ...     OptunaPruning(optuna.create_study().ask()).raise_if_pruned()  # not pruned
        """
        if self.pruned_reason is not None:
            import optuna

            raise optuna.TrialPruned(self.pruned_reason)

    def __repr__(self) -> str:
        return f"OptunaPruning(trial {self.trial.number}, monitor={self.monitor!r})"
