"""Errors raised on misuse and the exceptions callbacks raise to steer the loop.

Misuse raises an ``...Error`` at construction or at the start of ``fit``; control flow raises a
``Cancel...`` exception from a callback hook.

Examples:
    >>> raise CancelFitting("loss is good enough")
    Traceback (most recent call last):
    ...
    fluxtrain.exceptions.CancelFitting: loss is good enough
"""

from __future__ import annotations


class FluxTrainError(Exception):
    """Base class of every error fluxtrain raises for a bad input or a misuse."""


class StateAccessError(FluxTrainError, AttributeError):
    """A callback touched learner state it did not declare in ``stateaccess``."""


class CallbackConflictError(FluxTrainError):
    """Callbacks cannot be ordered: conflicting writers without a resolution, or a cycle."""


class BatchError(FluxTrainError, ValueError):
    """A batch, an output or a loss does not have the shape the loop needs."""


class CheckpointError(FluxTrainError):
    """A checkpoint cannot be written, read, verified, or does not fit the learner."""


class HyperParameterError(FluxTrainError, ValueError):
    """A hyperparameter cannot be set on the optimizer or model it targets."""


class ScheduleError(FluxTrainError, ValueError):
    """A schedule was built from bad keyframes, easings or units."""


class Cancel(Exception):
    """Base of the control-flow exceptions a callback raises to cut the loop short.

    Args:
        reason: Why, in words; reported in :class:`~fluxtrain.FitResult` for ``CancelFitting``.
    """

    def __init__(self, reason: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.callback: str | None = None


class CancelStep(Cancel):
    """Skips the rest of the current step; ``StepEnd`` does not fire for it."""


class CancelUpdate(Cancel):
    """Skips the optimizer update of this training step, raised at ``BackwardEnd``.

    The gradients stay in ``.grad`` (to accumulate into), ``StepEnd`` still fires and the step
    is not counted as an optimizer step. Used by ``GradientAccumulation``.
    """


class CancelEpoch(Cancel):
    """Skips the rest of the current epoch; ``EpochEnd`` still fires."""


class CancelFitting(Cancel):
    """Ends ``fit`` cleanly; ``FitEnd`` still fires and ``fit`` returns the reason."""
