"""The :class:`Learner`: model, data, optimizer and loss function, driven by callbacks.

Examples:
    >>> import torch
    >>> from fluxtrain import Learner
    >>> model = torch.nn.Linear(1, 1)
    >>> data = [(torch.ones(4, 1), torch.ones(4, 1))] * 3
    >>> learner = Learner(model, data, torch.optim.SGD(model.parameters(), lr=0.1),
    ...                   torch.nn.functional.mse_loss, usedefaultcallbacks=False)
    >>> learner.fit(2)
    FitResult(epochs_completed=2, steps_completed=6, stopped_by=None, reason=None)
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import torch

from .callback import Callback
from .checkpoints.learner_state import learner_state
from .checkpoints.resume import Resume, continue_epoch, load_learner_state, resume_fit
from .checkpoints.rng import snapshot
from .dispatch import CallbackRunner, with_defaults
from .distributed import DataParallel, set_epoch
from .events import EpochBegin, EpochEnd, FitBegin, FitEnd
from .exceptions import BatchError, CancelEpoch, CancelFitting, CancelStep, FluxTrainError
from .phases import AbstractTrainingPhase, Phase, TrainingPhase, ValidationPhase
from .state import Batch, CallbackState, Data, FitResult, FitState, to_data


class Learner(CallbackRunner):
    """Holds what training needs and runs it, firing events to callbacks.

    Args:
        model: The ``torch.nn.Module`` to train.
        data: ``(train, valid)``, one training iterable (no validation), or ``None`` (then pass
            data to :meth:`fit`). Any iterable of ``(inputs, targets)`` batches works, also
            one without ``len()``.
        optimizer: A ``torch.optim.Optimizer`` over the model's parameters.
        loss_fn: ``loss_fn(outputs, targets)`` returning a scalar tensor.
        *callbacks: Callbacks, ordered once here from their declarations.
        usedefaultcallbacks: Add ``Recorder``, ``Metrics(Loss())``, ``StopOnNaNLoss``,
            ``ProgressPrinter`` and ``MetricsPrinter``, except where one of that type is given.

    Under ``torch.distributed`` (a process group initialized, e.g. by ``torchrun``), ``fit``
    trains data-parallel: each rank gets its shard of every ``DataLoader`` without a
    ``DistributedSampler`` (``set_epoch`` is called every epoch), and after ``FitBegin`` (so
    that ``ToDevice`` has moved it) the model is wrapped in ``DistributedDataParallel``, built
    once and kept for later fits. From ``EpochBegin`` of the first epoch to the last
    ``EpochEnd``, ``model`` is that wrapper (the user's module is ``model.module``); from
    ``FitEnd`` on it is the user's module again. :meth:`state_dict` always holds the user's
    module's state, without a ``"module."`` prefix. See :mod:`fluxtrain.distributed`.

    Attributes:
        batch: State of the current step (``inputs``, ``targets``, ``outputs``, ``loss``).
        cbstate: State shared between callbacks (``history``, ``metrics_epoch``, ...).
        fitstate: Counters of the fit in progress (:class:`~fluxtrain.state.FitState`).
    """

    def __init__(
        self,
        model: torch.nn.Module,
        data: Any,
        optimizer: torch.optim.Optimizer,
        loss_fn: Callable[[Any, Any], torch.Tensor],
        *callbacks: Callback,
        usedefaultcallbacks: bool = True,
    ) -> None:
        if not isinstance(model, torch.nn.Module):
            raise FluxTrainError(
                f"Learner: model must be a torch.nn.Module, got {type(model).__name__}."
            )
        if not isinstance(optimizer, torch.optim.Optimizer):
            raise FluxTrainError(
                f"Learner: optimizer must be a torch.optim.Optimizer, got "
                f"{type(optimizer).__name__}. Build one over model.parameters()."
            )
        if not callable(loss_fn):
            raise FluxTrainError(
                f"Learner: loss_fn must be callable as loss_fn(outputs, targets), got {loss_fn!r}."
            )
        self.model = model
        self.optimizer = optimizer
        self.loss_fn = loss_fn
        self.data = to_data(data)
        self.batch = Batch()
        self.cbstate = CallbackState()
        self.fitstate = FitState()
        self._fit_data = self.data
        self._resume: Resume | None = None
        self._epoch_rng: dict[str, Any] | None = None
        self._parallel = DataParallel()
        self._set_callbacks(with_defaults(callbacks, usedefaultcallbacks))

    # -- running ---------------------------------------------------------------------------

    def fit(self, n_epochs: int, data: Any = None, *, resume: Any = None) -> FitResult:
        """Runs ``n_epochs`` more epochs: training, then validation when there is data for it.

        Args:
            n_epochs: Number of epochs, ``>= 0``.
            data: Data for this call only, in any form the constructor accepts.
            resume: Continue an interrupted ``fit(n_epochs)`` call to its end instead of
                starting a new one: ``"latest"`` (the newest good checkpoint of the learner's
                :class:`~fluxtrain.Checkpointer`; a fresh fit when it has none yet), the path
                of a checkpoint file, or a :meth:`state_dict`. See ``docs/resume.md``. Under
                ``torch.distributed`` every rank passes ``"latest"``; rank 0 picks the
                checkpoint, every rank loads it (put the folder on storage all ranks read)
                and restores its own random and callback states from it.

        Returns:
            A :class:`~fluxtrain.FitResult`; a ``CancelFitting`` is reported there, not
                raised. A resumed fit reports the counts of the whole fit, as if it had not
                been interrupted.

        Raises:
            CheckpointError: The checkpoint does not fit this learner, its data, or
                ``n_epochs`` (it was saved during a ``fit`` of another length).

        Examples:
            >>> from fluxtrain.testing import tiny_learner
            >>> learner = tiny_learner()
            >>> learner.fit(3)
            FitResult(epochs_completed=3, steps_completed=12, stopped_by=None, reason=None)
            >>> other = tiny_learner()
            >>> other.fit(3, resume=learner.state_dict())  # that fit had ended: nothing to run
            FitResult(epochs_completed=3, steps_completed=12, stopped_by=None, reason=None)
        """
        if isinstance(n_epochs, bool) or not isinstance(n_epochs, int) or n_epochs < 0:
            raise FluxTrainError(f"fit: n_epochs must be an int >= 0, got {n_epochs!r}.")
        train, valid = self.data if data is None else to_data(data)
        if train is None:
            raise FluxTrainError(
                "fit: there is no training data. Pass it to Learner(...) or to fit(n, data)."
            )
        train, valid = self._parallel.shard(train), self._parallel.shard(valid)
        steps_per_epoch = len(train) if hasattr(train, "__len__") else None  # type: ignore[arg-type]
        if steps_per_epoch == 0:
            raise BatchError("fit: the training data is empty (len() == 0); give it batches.")
        state = self.fitstate
        self._fit_data = Data(train, valid)
        point = None if resume is None else resume_fit(self, resume, n_epochs, self._fit_data)
        if isinstance(point, FitResult):
            return point
        if point is None:
            state.n_epochs, state.epoch, state.step = n_epochs, 0, 0
            state.phase, state.stage, state.resumed = None, "", False
        state.steps_per_epoch = state.updates_per_epoch = steps_per_epoch
        state.has_validation = valid is not None
        state.ending = state.stopped_by = state.reason = None
        self._resume = point
        training, validation = TrainingPhase(), ValidationPhase()
        try:
            self.fire(FitBegin, training)
            self.model = self._parallel.wrap(self.model)
            for _ in range(state.epoch, n_epochs):
                if self._resume is None or self._resume.phase == training.name:
                    self.epoch(training, train)
                if valid is not None:
                    self.epoch(validation, valid)
                state.epoch += 1
                state.phase, state.stage = None, ""
            state.ending = "completed"
        except CancelFitting as cancel:
            if state.stage == "end":  # raised at EpochEnd: that epoch is complete
                state.total_epochs += state.phase == training.name
                state.epoch += state.phase == (training if valid is None else validation).name
            state.ending = "cancelled"
            state.stopped_by, state.reason = cancel.callback, cancel.reason
        except BaseException as error:
            state.ending = "interrupted" if isinstance(error, KeyboardInterrupt) else "error"
            raise
        finally:
            self._resume = None
            self.model = self._parallel.unwrap(self.model)
            self.fire(FitEnd, training)
        return FitResult(state.epoch, state.step, state.stopped_by, state.reason)

    def epoch(self, phase: Phase, data: Iterable[Any]) -> None:
        """Runs one epoch of ``phase`` over ``data``: ``EpochBegin``, the steps, ``EpochEnd``.

        A ``DataLoader`` with a ``DistributedSampler`` first gets ``set_epoch(total_epochs)``,
        so a shuffled shard changes from epoch to epoch and replays exactly on resume.
        """
        state = self.fitstate
        state.epoch_length = len(data) if hasattr(data, "__len__") else None  # type: ignore[arg-type]
        training = isinstance(phase, AbstractTrainingPhase)
        resume, self._resume = self._resume, None
        set_epoch(data, state.total_epochs)
        with phase.context(self):
            try:
                if resume is None or resume.batches is None:
                    state.phase, state.stage, state.epoch_step = phase.name, "begin", 0
                    self.fire(EpochBegin, phase)
                    self._epoch_rng = snapshot(data)
                    batches = iter(data)
                else:  # the epoch began before the interruption: no EpochBegin
                    batches = continue_epoch(data, resume)
                    state.epoch_step = resume.batches
                state.stage = "steps"
                offset, cancelled = state.epoch_step - state.step, 0
                step = phase.step
                for batch in batches:
                    state.epoch_step += 1
                    try:
                        step(self, batch)
                    except CancelStep:
                        cancelled += 1
                    except KeyboardInterrupt:  # a step cut short is run again on resume
                        if training:
                            finished = state.epoch_step - state.step == offset + cancelled
                        else:  # a validation step is at StepEnd once its loss is set
                            finished = self.batch.loss is not None
                        state.epoch_step -= not finished
                        raise
            except CancelEpoch:
                pass
            if training and state.epoch_step == 0:
                raise BatchError(
                    "The training data yielded no batches in this epoch. If it is an iterator, "
                    "it was used up by an earlier epoch: pass a re-iterable (a list, a "
                    "DataLoader) instead."
                )
            state.stage = "end"
            self.fire(EpochEnd, phase)
        if training:
            state.total_epochs += 1
        state.stage = "done"

    def step(self, phase: Phase, batch: Any) -> None:
        """Runs one step of ``phase`` on ``batch`` (in the phase's context)."""
        with phase.context(self):
            phase.step(self, batch)

    # -- state -----------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """Everything a run depends on, to resume it exactly.

        Holds the model's and the optimizer's state dicts (their tensors shared with the live
        ones, as in torch: ``copy.deepcopy`` the result to keep a snapshot in memory), copies of
        the fit counters with the position in the fit in progress, ``cbstate``, every
        callback's ``state_dict()`` (keyed ``"<position>:<name>"``), the random states (Python,
        NumPy, torch CPU, CUDA once initialized) and the states of the data's random
        generators. Save it with ``torch.save``; the :class:`~fluxtrain.Checkpointer` does so
        atomically, with checksums.

        Examples:
            >>> from fluxtrain.testing import tiny_learner
            >>> sorted(tiny_learner().state_dict())  # doctest: +NORMALIZE_WHITESPACE
            ['callbacks', 'cbstate', 'data_rng', 'epoch_rng', 'fitstate', 'format', 'model',
             'optimizer', 'optimizer_class', 'rng']
        """
        return learner_state(self)

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restores what :meth:`state_dict` returned; checks everything before changing anything.

        A following ``fit(n)`` starts a new fit from the restored state; to finish the fit the
        state was saved in, call ``fit(n, resume=state)`` instead.

        Raises:
            CheckpointError: The model's keys or shapes, the optimizer's type or parameter
                groups, or the callbacks (names and order) differ from those saved; the message
                names what differs.

        Examples:
            >>> import copy
            >>> from fluxtrain.testing import tiny_learner
            >>> learner = tiny_learner()
            >>> _ = learner.fit(1)
            >>> other = tiny_learner()
            >>> other.load_state_dict(copy.deepcopy(learner.state_dict()))
            >>> other.model.weight.item() == learner.model.weight.item()
            True
        """
        load_learner_state(self, state, self.data)

    def __repr__(self) -> str:
        names = ", ".join(cb.name for cb in self.callbacks)
        return f"Learner({type(self.model).__name__}, callbacks=[{names}])"
