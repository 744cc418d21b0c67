"""The training loop: :meth:`~Loop.fit` runs epochs of phases, :meth:`~Loop.epoch` runs the
steps of one epoch, :meth:`~Loop.step` one step. :class:`~fluxtrain.Learner` is built on it.

Examples:
    >>> from fluxtrain.testing import tiny_learner
    >>> tiny_learner().fit(2)
    FitResult(epochs_completed=2, steps_completed=8, stopped_by=None, reason=None)
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from .checkpoints.position import Resume, continue_epoch
from .checkpoints.resume import resume_fit
from .checkpoints.rng import snapshot
from .dispatch import CallbackRunner
from .distributed import DataParallel, set_epoch
from .events import EpochBegin, EpochEnd, FitBegin, FitEnd
from .exceptions import BatchError, CancelEpoch, CancelFitting, CancelStep, FluxTrainError
from .fit_arguments import check_budget, check_every, check_phases
from .phases import AbstractTrainingPhase, AbstractValidationPhase, Phase
from .state import Batch, CallbackState, Data, FitResult, FitState, length, to_data

if TYPE_CHECKING:
    from .learner import Learner


class Loop(CallbackRunner):
    """Runs a learner's fits, epochs and steps, firing events to its callbacks."""

    data: Data
    batch: Batch
    cbstate: CallbackState
    fitstate: FitState
    model: Any
    _fit_data: Data
    _resume: Resume | None
    _epoch_rng: dict[str, Any] | None
    _inner_rng: dict[str, Any] | None
    _inner: tuple[Any, Any, int] | None
    _budget: int | None
    _parallel: DataParallel

    @property
    def _learner(self) -> Learner:
        return self  # type: ignore[return-value]  # Loop is a base of Learner only

    def fit(
        self,
        n_epochs: int | None = None,
        data: Any = None,
        *,
        steps: int | None = None,
        validate_every: int | None = None,
        phases: tuple[AbstractTrainingPhase, AbstractValidationPhase | None] | None = None,
        resume: Any = None,
    ) -> FitResult:
        """Runs ``n_epochs`` more epochs, or ``steps`` optimizer steps: training, then validation.

        Args:
            n_epochs: Number of epochs, ``>= 0`` (or give ``steps``).
            data: Data for this call only, in any form the constructor accepts.
            steps: Number of optimizer steps instead of epochs. Sized training data is
                restarted when it ends (each pass is an epoch: ``EpochEnd``, validation,
                ``EpochBegin``); unsized or endless data is read until the steps are done.
            validate_every: Run a validation epoch after every this many optimizer steps, inside
                the training epoch, instead of at each epoch's end.
            phases: ``(training_phase, validation_phase)`` to run instead of
                ``(TrainingPhase(), ValidationPhase())``, e.g. a custom training step for
                two optimizers; ``validation_phase`` may be ``None`` (no validation epochs).
            resume: Continue an interrupted ``fit`` call with the same budget to its end instead
                of starting a new one: ``"latest"`` (the newest good checkpoint of the learner's
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
            CheckpointError: The checkpoint does not fit this learner, its data, or the budget
                (it was saved during a ``fit`` of another length).

        Examples:
            >>> from fluxtrain.testing import tiny_learner
            >>> learner = tiny_learner()
            >>> learner.fit(3)
            FitResult(epochs_completed=3, steps_completed=12, stopped_by=None, reason=None)
            >>> other = tiny_learner()
            >>> other.fit(3, resume=learner.state_dict())  # that fit had ended: nothing to run
            FitResult(epochs_completed=3, steps_completed=12, stopped_by=None, reason=None)
            >>> tiny_learner().fit(steps=10)  # 4 batches per pass: 2 passes and a half
            FitResult(epochs_completed=3, steps_completed=10, stopped_by=None, reason=None)
        """
        n_epochs, steps = check_budget(n_epochs, steps)
        training, validation = check_phases(phases)
        train, valid = self.data if data is None else to_data(data)
        if validation is None:
            valid = None
        if train is None:
            raise FluxTrainError(
                "fit: there is no training data. Pass it to Learner(...) or to fit(n, data)."
            )
        validate_every = check_every(validate_every, valid is not None)
        train, valid = self._parallel.shard(train), self._parallel.shard(valid)
        for callback in self.callbacks:
            train = callback.training_data(train)
        steps_per_epoch = length(train)
        if steps_per_epoch == 0:
            raise BatchError("fit: the training data is empty (len() == 0); give it batches.")
        state = self.fitstate
        self._fit_data = Data(train, valid)
        point = None
        if resume is not None:
            learner = self._learner
            point = resume_fit(learner, resume, n_epochs, self._fit_data, steps, validate_every)
        if isinstance(point, FitResult):
            return point
        if point is None:
            state.n_epochs, state.n_steps, state.epoch, state.step = n_epochs, steps, 0, 0
            state.validated_step, state.fit_id = None, uuid.uuid4().hex
            state.phase, state.stage, state.resumed, state.outer_step = None, "", False, None
        state.validate_every = validate_every
        state.steps_per_epoch = state.updates_per_epoch = steps_per_epoch
        state.has_validation = valid is not None
        state.ending = state.stopped_by = state.reason = None
        self._resume = point
        self._inner = None if validate_every is None else (validation, valid, validate_every)
        self._budget = steps
        try:
            self.fire(FitBegin, training)
            self.model = self._parallel.wrap(self.model)
            while state.budget_left():
                if self._resume is None or self._resume.phase == training.name:
                    self.epoch(training, train)
                if valid is not None and validate_every is None:
                    self.epoch(validation, valid)  # type: ignore[arg-type]
                state.epoch += 1
                state.phase, state.stage = None, ""
            state.ending = "completed"
        except CancelFitting as cancel:
            if state.stage == "end" and state.outer_step is None:  # at EpochEnd: it is complete
                state.total_epochs += state.phase == training.name
                last = training if valid is None or validate_every else validation
                state.epoch += state.phase == last.name  # type: ignore[union-attr]
            state.ending = "cancelled"
            state.stopped_by, state.reason = cancel.callback, cancel.reason
        except BaseException as error:
            state.ending = "interrupted" if isinstance(error, KeyboardInterrupt) else "error"
            raise
        finally:
            self._resume = self._inner = self._budget = None
            self.model = self._parallel.unwrap(self.model)
            self.fire(FitEnd, training)
        return FitResult(state.epoch, state.step, state.stopped_by, state.reason)

    def epoch(self, phase: Phase, data: Iterable[Any]) -> None:
        """Runs one epoch of ``phase`` over ``data``: ``EpochBegin``, the steps, ``EpochEnd``.

        A ``DataLoader`` with a ``DistributedSampler`` first gets ``set_epoch(total_epochs)``,
        so a shuffled shard changes from epoch to epoch and replays exactly on resume. Inside
        ``fit(steps=...)`` a training epoch ends early once the steps are done, and inside
        ``fit(validate_every=k)`` it runs a validation epoch after every k-th optimizer step.
        """
        state = self.fitstate
        state.epoch_length = length(data)
        training = isinstance(phase, AbstractTrainingPhase)
        inner = self._inner if training else None
        budget = self._budget if training else None
        if self._resume is not None and self._resume.phase != phase.name:
            resume = None
        else:
            resume, self._resume = self._resume, None
        set_epoch(data, state.total_epochs)
        with phase.context(self._learner):
            try:
                if resume is None or resume.batches is None:
                    state.phase, state.stage, state.epoch_step = phase.name, "begin", 0
                    self.fire(EpochBegin, phase)
                    snap = snapshot(data)
                    if state.outer_step is None:
                        self._epoch_rng = snap
                    else:
                        self._inner_rng = snap
                    batches = iter(data)
                else:  # the epoch began before the interruption: no EpochBegin
                    batches = continue_epoch(data, resume)
                    state.phase, state.stage = phase.name, "steps"
                    state.epoch_step = resume.batches
                    if inner is not None and (resume.inner is not None or self._due(inner)):
                        self._validate_inside(inner, resume.inner)  # one was due or running
                    if budget is not None and state.step >= budget:
                        batches = iter(())
                state.stage = "steps"
                offset, cancelled = state.epoch_step - state.step, 0
                step, learner = phase.step, self._learner
                check = budget is not None or inner is not None
                for batch in batches:
                    state.epoch_step += 1
                    before = state.step
                    try:
                        step(learner, batch)
                    except CancelStep:
                        cancelled += 1
                    except KeyboardInterrupt:  # a step cut short is run again on resume
                        if state.outer_step is None:
                            if training:
                                finished = state.epoch_step - state.step == offset + cancelled
                            else:  # a validation step is at StepEnd once its loss is set
                                finished = self.batch.loss is not None
                            state.epoch_step -= not finished
                        raise
                    if check and state.step != before:
                        if inner is not None and self._due(inner):
                            self._validate_inside(inner, None)
                        if budget is not None and state.step >= budget:
                            break
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

    def _due(self, inner: Any) -> bool:
        """Whether a ``validate_every`` validation is due after the step just completed."""
        state = self.fitstate
        step = state.step
        return step > 0 and not step % inner[2] and state.validated_step != step

    def _validate_inside(self, inner: Any, resume: Resume | None) -> None:
        """Runs a validation epoch inside the training epoch in progress, which then goes on
        where it was (``fitstate.outer_step`` holds its position meanwhile)."""
        validation, valid, _ = inner
        state = self.fitstate
        state.validated_step = state.step
        position = (state.phase, state.stage, state.epoch_step, state.epoch_length)
        state.outer_step = state.epoch_step
        self._resume = resume
        self.epoch(validation, valid)
        state.phase, state.stage, state.epoch_step, state.epoch_length = position
        state.outer_step = None

    def step(self, phase: Phase, batch: Any) -> None:
        """Runs one step of ``phase`` on ``batch`` (in the phase's context)."""
        with phase.context(self._learner):
            phase.step(self._learner, batch)
