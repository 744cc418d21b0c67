"""Logging callbacks: metrics and hyperparameters to CSV, TensorBoard or your own backend.

:class:`LogMetrics` logs what :class:`~fluxtrain.Metrics` computes, :class:`LogHyperParams`
what a :class:`~fluxtrain.Scheduler` applies; both write to one or more backends
(:class:`~fluxtrain.callbacks.backends.CSVBackend`,
:class:`~fluxtrain.callbacks.backends.TensorBoardBackend`, or any
:class:`~fluxtrain.callbacks.backends.LoggerBackend`). The series they write:

=============================  ==========================================  =====================
name                           when                                        step
=============================  ==========================================  =====================
``step/train/Loss``            training steps whose index is a multiple    index of the step,
                               of ``every``                                from 0
``train/Loss``, ``valid/...``  end of each epoch of that phase             ``total_steps``
``hyperparams/LearningRate``   training steps, as above                    the recorded step
=============================  ==========================================  =====================

The step of a training step is its index ``t`` from 0 (the ``t`` a ``Scheduler`` records), so
the loss and the learning rate of one step share it; an epoch's value is logged at
``fitstate.total_steps``, the number of training steps completed when it ends. ``epoch`` is 1
in the first training epoch; a validation epoch carries the number of the training epoch before
it. Only rank 0 writes when ``torch.distributed`` is initialized.

Examples:
    >>> import csv, os, tempfile
    >>> from fluxtrain import LearningRate, Metrics
    >>> from fluxtrain.scheduler import Scheduler
    >>> from fluxtrain.testing import tiny_learner
    >>> path = os.path.join(tempfile.mkdtemp(), "log.csv")
    >>> backend = CSVBackend(path)
    >>> scheduler = Scheduler({LearningRate: lambda t: 0.01 / (1 + t)})
    >>> learner = tiny_learner(Metrics(), scheduler, LogMetrics(backend, every=2),
    ...                        LogHyperParams(backend, every=2), n_batches=4)
    >>> _ = learner.fit(1)
    >>> with open(path, newline="") as file:
    ...     rows = list(csv.DictReader(file))
    >>> [(r["step"], r["name"]) for r in rows]  # doctest: +NORMALIZE_WHITESPACE
    [('0', 'step/train/Loss'), ('0', 'hyperparams/LearningRate'),
     ('2', 'step/train/Loss'), ('2', 'hyperparams/LearningRate'),
     ('4', 'train/Loss'), ('4', 'valid/Loss')]
"""

from __future__ import annotations

from typing import Any

import torch

from .. import distributed
from ..access import Read
from ..callback import Callback
from ..exceptions import FluxTrainError
from ..phases import AbstractTrainingPhase, Phase
from .backends import CSVBackend as CSVBackend
from .backends import LoggerBackend as LoggerBackend
from .backends import TensorBoardBackend as TensorBoardBackend
from .backends import check_backends
from .metrics import Metrics

STEP_PREFIX = "step/"
HYPERPARAMS_PREFIX = "hyperparams/"


def epoch_number(phase: Phase, fitstate: Any) -> int:
    """The epoch a value belongs to: the training epoch in progress, or the one before.

    Examples:
        >>> from fluxtrain.phases import TrainingPhase, ValidationPhase
        >>> from fluxtrain.state import FitState
        >>> state = FitState(total_epochs=2)
        >>> epoch_number(TrainingPhase(), state), epoch_number(ValidationPhase(), state)
        (3, 2)
    """
    if isinstance(phase, AbstractTrainingPhase):
        return int(fitstate.total_epochs) + 1
    return int(fitstate.total_epochs)


def host_floats(values: list[Any]) -> list[float]:
    """Python floats of 1-element tensors (or numbers), read from the device in one transfer.

    Examples:
        >>> host_floats([torch.tensor(0.5), torch.tensor(0.25)])
        [0.5, 0.25]
    """
    tensors = [v for v in values if isinstance(v, torch.Tensor)]
    if len(tensors) == len(values) > 1:
        first = tensors[0]
        if all(t.device == first.device and t.dtype == first.dtype for t in tensors):
            stacked = torch.stack([t.detach().reshape(()) for t in tensors])
            return [float(v) for v in stacked.tolist()]
    return [float(v) for v in values]


def is_number(value: Any) -> bool:
    """Whether a recorded metric value is one number (a per-class tensor is not logged).

    Examples:
        >>> import torch
        >>> is_number(0.5), is_number(torch.zeros(3))
        (True, False)
    """
    return getattr(value, "ndim", 0) == 0


def _check_every(owner: str, every: object) -> int:
    if isinstance(every, bool) or not isinstance(every, int) or every < 1:
        raise FluxTrainError(
            f"{owner}: every must be an int >= 1 (log every n-th training step), got {every!r}."
        )
    return every


class _Logger(Callback):
    """Holds the backends: writes on rank 0, flushes at each epoch's end, closes at FitEnd."""

    def __init__(self, backends: tuple[Any, ...], every: int) -> None:
        owner = type(self).__name__
        self.backends = check_backends(owner, backends)
        self.every = _check_every(owner, every)

    def _write(self, name: str, value: float, step: int, epoch: int, phase: str) -> None:
        for backend in self.backends:
            backend.log_scalar(name, value, step, epoch, phase)

    def flush(self) -> None:
        """Flushes every backend; the Checkpointer calls it before each checkpoint, so a kill
        loses no row logged before the checkpoint it resumes from."""
        for backend in self.backends:
            backend.flush()

    def on_fit_end(self, phase: Phase, learner: Any) -> None:
        errors = []
        for backend in self.backends:
            try:
                backend.close()
            except Exception as error:
                errors.append(error)
        if errors:
            raise errors[0]

    def __repr__(self) -> str:
        backends = ", ".join(repr(b) for b in self.backends)
        return f"{self.name}({backends}, every={self.every})"


class LogMetrics(_Logger):
    """Logs the metrics of :class:`~fluxtrain.Metrics`: per training step and per epoch.

    Per training step it logs each ``cbstate.metrics_step`` value of the training phase as
    ``step/<phase>/<metric>`` at the step's index ``t`` (from 0), when ``t`` is a multiple of
    ``every``. Those values are tensors on the model's device; turning them into numbers waits
    for the device to finish the step (a host sync, one per logged step), which is why
    ``every`` throttles it. At the end of every epoch (training and validation) it logs the
    newest ``cbstate.metrics_epoch`` value of that phase's metrics (``valid/Accuracy``), at
    ``fitstate.total_steps``; those are floats already. Backends are flushed at the end of every
    epoch and closed at ``FitEnd``, also when fitting fails.

    Args:
        *backends: One or more :class:`~fluxtrain.callbacks.backends.LoggerBackend`.
        every: Log per-step values at training steps ``0, every, 2 * every, ...``.

    Examples:
        >>> import csv, os, tempfile
        >>> from fluxtrain import Metrics
        >>> from fluxtrain.testing import tiny_learner
        >>> path = os.path.join(tempfile.mkdtemp(), "log.csv")
        >>> learner = tiny_learner(Metrics(), LogMetrics(CSVBackend(path), every=3), n_batches=4)
        >>> _ = learner.fit(2)
        >>> with open(path, newline="") as file:
        ...     rows = list(csv.DictReader(file))
        >>> [int(r["step"]) for r in rows if r["name"] == "step/train/Loss"]
        [0, 3, 6]
        >>> [float(r["value"]) for r in rows if r["name"] == "valid/Loss"] == (
        ...     learner.cbstate.metrics_epoch["valid/Loss"])
        True
    """

    stateaccess = {
        "cbstate.metrics_step": Read,
        "cbstate.metrics_epoch": Read,
        "fitstate": Read,
    }
    runafter = (Metrics,)

    def __init__(self, *backends: LoggerBackend, every: int = 1) -> None:
        super().__init__(backends, every)

    def on_step_end(self, phase: Phase, learner: Any) -> None:
        if not isinstance(phase, AbstractTrainingPhase):
            return
        fitstate = learner.fitstate
        t = fitstate.total_steps - 1
        if (
            t % self.every
            or "metrics_step" not in learner.cbstate
            or not distributed.is_main_process()
        ):
            return
        prefix = phase.name + "/"
        items = [(k, v) for k, v in learner.cbstate.metrics_step.items() if k.startswith(prefix)]
        epoch = epoch_number(phase, fitstate)
        for (key, _), value in zip(items, host_floats([v for _, v in items])):
            self._write(STEP_PREFIX + key, value, t, epoch, phase.name)

    def on_epoch_end(self, phase: Phase, learner: Any) -> None:
        if "metrics_epoch" not in learner.cbstate or not distributed.is_main_process():
            return
        fitstate = learner.fitstate
        step, epoch, prefix = fitstate.total_steps, epoch_number(phase, fitstate), phase.name + "/"
        for key, values in learner.cbstate.metrics_epoch.items():
            if key.startswith(prefix) and values and is_number(values[-1]):
                self._write(key, float(values[-1]), step, epoch, phase.name)
        self.flush()


class LogHyperParams(_Logger):
    """Logs the hyperparameters a :class:`~fluxtrain.Scheduler` applies, per training step.

    At the end of each training step it logs the newest ``(step, value)`` of every
    ``cbstate.hyperparams`` entry as ``hyperparams/<name>`` at that recorded step, when the step
    is a multiple of ``every`` (and has not been logged yet). Validation logs nothing. Without a
    scheduler (no ``cbstate.hyperparams``) it logs nothing. It needs no ``runafter``: a
    ``Scheduler`` declares ``"cbstate.hyperparams": Write``, so it is ordered before this reader.

    Args:
        *backends: One or more :class:`~fluxtrain.callbacks.backends.LoggerBackend`.
        every: Log at training steps ``0, every, 2 * every, ...``.

    Examples:
        >>> import csv, os, tempfile
        >>> from fluxtrain import LearningRate
        >>> from fluxtrain.scheduler import Scheduler
        >>> from fluxtrain.testing import tiny_learner
        >>> path = os.path.join(tempfile.mkdtemp(), "hyperparams.csv")
        >>> scheduler = Scheduler({LearningRate: lambda t: 0.1 * 0.5**t})
        >>> _ = tiny_learner(LogHyperParams(CSVBackend(path)), scheduler, n_batches=3).fit(1)
        >>> with open(path, newline="") as file:
        ...     [(r["step"], r["value"]) for r in csv.DictReader(file)]
        [('0', '0.1'), ('1', '0.05'), ('2', '0.025')]
    """

    stateaccess = {"cbstate.hyperparams": Read, "fitstate": Read}

    def __init__(self, *backends: LoggerBackend, every: int = 1) -> None:
        super().__init__(backends, every)
        self._logged: dict[str, int] = {}

    def on_fit_begin(self, phase: Phase, learner: Any) -> None:
        if "hyperparams" in learner.cbstate:
            for name, records in learner.cbstate.hyperparams.items():
                if records:  # values of earlier fits are not logged again
                    self._logged[name] = records[-1][0]

    def on_step_end(self, phase: Phase, learner: Any) -> None:
        if not isinstance(phase, AbstractTrainingPhase) or "hyperparams" not in learner.cbstate:
            return
        if not distributed.is_main_process():
            return
        epoch = epoch_number(phase, learner.fitstate)
        logged = self._logged
        for name, records in learner.cbstate.hyperparams.items():
            if not records:
                continue
            step, value = records[-1]
            if step % self.every or logged.get(name) == step:
                continue
            logged[name] = step
            self._write(HYPERPARAMS_PREFIX + name, float(value), int(step), epoch, phase.name)

    def on_epoch_end(self, phase: Phase, learner: Any) -> None:
        if distributed.is_main_process():
            self.flush()
