"""Phases: what one step does, with its events fired inline, top to bottom.

A phase's :meth:`~Phase.step` runs one step on one batch. Subclass
:class:`AbstractTrainingPhase` or :class:`AbstractValidationPhase` for a custom step; the
learner treats it as training (counted, scheduled) or validation (``eval()`` + ``no_grad()``).

Examples:
    >>> TrainingPhase().name, ValidationPhase().name
    ('train', 'valid')
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, ClassVar

import torch

from .events import BackwardBegin, BackwardEnd, LossBegin, StepBegin, StepEnd
from .exceptions import BatchError, CancelUpdate

if TYPE_CHECKING:
    from .learner import Learner


class Phase:
    """Base of all phases. ``name`` prefixes metric names (``"train/Loss"``)."""

    name: ClassVar[str] = "phase"

    def step(self, learner: Learner, batch: Any) -> None:
        """Runs one step on ``batch``, firing the step's events through ``learner.fire``."""
        raise NotImplementedError

    @contextlib.contextmanager
    def context(self, learner: Learner) -> Iterator[None]:
        """Wraps every epoch (and a lone :meth:`Learner.step`) of this phase."""
        yield

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class AbstractTrainingPhase(Phase):
    """Base of phases that update the model: the model is put in ``train()`` mode.

    A custom training step calls ``learner.fitstate.count_step()`` once the optimizer has
    stepped, before firing ``StepEnd``, so that counters and ``FitResult`` see the step.
    """

    name = "train"

    @contextlib.contextmanager
    def context(self, learner: Learner) -> Iterator[None]:
        learner.model.train()
        yield


class AbstractValidationPhase(Phase):
    """Base of phases that only evaluate: ``eval()`` and ``no_grad()``, mode restored after."""

    name = "valid"

    @contextlib.contextmanager
    def context(self, learner: Learner) -> Iterator[None]:
        was_training = learner.model.training
        learner.model.eval()
        try:
            with torch.no_grad():
                yield
        finally:
            learner.model.train(was_training)


def unpack(batch: Any) -> tuple[Any, Any]:
    """Splits a batch into ``(inputs, targets)``, with a clear error for anything else.

    Examples:
        >>> unpack((1, 2))
        (1, 2)
    """
    if type(batch) is tuple and len(batch) == 2:
        return batch
    if isinstance(batch, (tuple, list)) and len(batch) == 2:
        return batch[0], batch[1]
    shape = (
        f"{type(batch).__name__} of length {len(batch)}"
        if hasattr(batch, "__len__")
        else (type(batch).__name__)
    )
    raise BatchError(
        f"A batch must be a pair (inputs, targets), got a {shape}. Make the data yield "
        f"(inputs, targets) tuples, e.g. a DataLoader over a TensorDataset(inputs, targets), "
        f"or write a custom phase whose step unpacks your batch."
    )


def compute_loss(learner: Learner, outputs: Any, targets: Any) -> torch.Tensor:
    """``loss_fn(outputs, targets)``, checked to be a scalar tensor."""
    loss = learner.loss_fn(outputs, targets)
    if not isinstance(loss, torch.Tensor) or loss.ndim != 0:
        got = (
            f"a tensor of shape {tuple(loss.shape)}"
            if isinstance(loss, torch.Tensor)
            else (f"a {type(loss).__name__}")
        )
        raise BatchError(
            f"loss_fn must return a scalar tensor, got {got}. Reduce it, e.g. with "
            f"reduction='mean' or by calling .mean() on the per-sample losses."
        )
    return loss


class TrainingPhase(AbstractTrainingPhase):
    """Forward, loss, backward, optimizer update.

    Examples:
        >>> from fluxtrain.testing import tiny_learner
        >>> learner = tiny_learner()
        >>> learner.step(TrainingPhase(), next(iter(learner.data.train)))
        >>> learner.batch.loss.ndim
        0
    """

    def step(self, learner: Learner, batch: Any) -> None:
        fire, state = learner.fire, learner.batch
        state.inputs, state.targets = unpack(batch)
        state.outputs = state.loss = None
        fire(StepBegin, self)
        state.outputs = learner.model(state.inputs)
        fire(LossBegin, self)
        state.loss = compute_loss(learner, state.outputs, state.targets)
        fire(BackwardBegin, self)
        state.loss.backward()
        try:
            fire(BackwardEnd, self)
        except CancelUpdate:
            pass
        else:
            learner.optimizer.step()
            learner.optimizer.zero_grad(set_to_none=True)
            learner.fitstate.count_step()
        fire(StepEnd, self)


class ValidationPhase(AbstractValidationPhase):
    """Forward and loss only, under ``eval()`` and ``no_grad()``.

    Examples:
        >>> from fluxtrain.testing import tiny_learner
        >>> learner = tiny_learner()
        >>> learner.step(ValidationPhase(), next(iter(learner.data.train)))
        >>> learner.batch.loss.requires_grad
        False
    """

    def step(self, learner: Learner, batch: Any) -> None:
        fire, state = learner.fire, learner.batch
        state.inputs, state.targets = unpack(batch)
        state.outputs = state.loss = None
        fire(StepBegin, self)
        state.outputs = learner.model(state.inputs)
        fire(LossBegin, self)
        state.loss = compute_loss(learner, state.outputs, state.targets)
        fire(StepEnd, self)
