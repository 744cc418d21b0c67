"""The training loop: :meth:`~Loop.fit` runs epochs of phases, :meth:`~Loop.epoch` runs the
steps of one epoch, :meth:`~Loop.step` one step. :class:`~fluxtrain.Learner` is built on it.

Examples:
    >>> from fluxtrain.testing import tiny_learner
    >>> tiny_learner().fit(2)
    FitResult(epochs_completed=2, steps_completed=8, stopped_by=None, reason=None)
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from .checkpoints.resume import Resume, continue_epoch, resume_fit
from .checkpoints.rng import snapshot
from .dispatch import CallbackRunner
from .distributed import DataParallel, set_epoch
from .events import EpochBegin, EpochEnd, FitBegin, FitEnd
from .exceptions import BatchError, CancelEpoch, CancelFitting, CancelStep, FluxTrainError
from .phases import (
    AbstractTrainingPhase,
    AbstractValidationPhase,
    Phase,
    TrainingPhase,
    ValidationPhase,
)
from .state import Batch, CallbackState, Data, FitResult, FitState, to_data

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
    _parallel: DataParallel

    @property
    def _learner(self) -> Learner:
        return self  # type: ignore[return-value]  # Loop is a base of Learner only

    def fit(
        self,
        n_epochs: int,
        data: Any = None,
        *,
        phases: tuple[AbstractTrainingPhase, AbstractValidationPhase | None] | None = None,
        resume: Any = None,
    ) -> FitResult:
        """Runs ``n_epochs`` more epochs: training, then validation when there is data for it.

        Args:
            n_epochs: Number of epochs, ``>= 0``.
            data: Data for this call only, in any form the constructor accepts.
            phases: ``(training_phase, validation_phase)`` to run instead of
                ``(TrainingPhase(), ValidationPhase())``, e.g. a custom training step for
                two optimizers; ``validation_phase`` may be ``None`` (no validation epochs).
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
        training, validation = check_phases(phases)
        train, valid = self.data if data is None else to_data(data)
        if validation is None:
            valid = None
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
        point = (
            None if resume is None else resume_fit(self._learner, resume, n_epochs, self._fit_data)
        )
        if isinstance(point, FitResult):
            return point
        if point is None:
            state.n_epochs, state.epoch, state.step = n_epochs, 0, 0
            state.phase, state.stage, state.resumed = None, "", False
        state.steps_per_epoch = state.updates_per_epoch = steps_per_epoch
        state.has_validation = valid is not None
        state.ending = state.stopped_by = state.reason = None
        self._resume = point
        try:
            self.fire(FitBegin, training)
            self.model = self._parallel.wrap(self.model)
            for _ in range(state.epoch, n_epochs):
                if self._resume is None or self._resume.phase == training.name:
                    self.epoch(training, train)
                if valid is not None:
                    self.epoch(validation, valid)  # type: ignore[arg-type]
                state.epoch += 1
                state.phase, state.stage = None, ""
            state.ending = "completed"
        except CancelFitting as cancel:
            if state.stage == "end":  # raised at EpochEnd: that epoch is complete
                state.total_epochs += state.phase == training.name
                last = training if valid is None or validation is None else validation
                state.epoch += state.phase == last.name
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
        with phase.context(self._learner):
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
                step, learner = phase.step, self._learner
                for batch in batches:
                    state.epoch_step += 1
                    try:
                        step(learner, batch)
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
        with phase.context(self._learner):
            phase.step(self._learner, batch)


def check_phases(phases: Any) -> tuple[AbstractTrainingPhase, AbstractValidationPhase | None]:
    """The phases ``fit(phases=...)`` runs: the defaults for ``None``, else checked.

    Examples:
        >>> check_phases(None)
        (TrainingPhase(), ValidationPhase())
        >>> check_phases((ValidationPhase(), None))
        Traceback (most recent call last):
        ...
        fluxtrain.exceptions.FluxTrainError: fit: phases must be (training_phase, ...
    """
    if phases is None:
        return TrainingPhase(), ValidationPhase()
    if (
        isinstance(phases, tuple)
        and len(phases) == 2
        and isinstance(phases[0], AbstractTrainingPhase)
        and (phases[1] is None or isinstance(phases[1], AbstractValidationPhase))
    ):
        return phases
    raise FluxTrainError(
        f"fit: phases must be (training_phase, validation_phase): an instance of a "
        f"TrainingPhase subclass and one of a ValidationPhase subclass or None, got {phases!r}."
    )
