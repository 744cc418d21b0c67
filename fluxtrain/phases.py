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

from .batches import compute_loss, split
from .batches import forward as run_model
from .events import BackwardBegin, BackwardEnd, LossBegin, StepBegin, StepEnd
from .exceptions import CancelUpdate, FluxTrainError

if TYPE_CHECKING:
    from .learner import Learner


@contextlib.contextmanager
def evaluating(model: torch.nn.Module) -> Iterator[None]:
    """``model.eval()`` and ``torch.no_grad()``; the model's mode is restored after.

    Examples:
        >>> import torch
        >>> model = torch.nn.Dropout()
        >>> with evaluating(model):
        ...     model.training
        False
        >>> model.training
        True
    """
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            yield
    finally:
        model.train(was_training)


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

    # -- the pieces of a step, each firing its event ----------------------------------------

    def begin(self, learner: Learner, batch: Any) -> None:
        """Sets ``batch.inputs`` and ``batch.targets`` from ``batch`` and fires ``StepBegin``.

        The batch is read by the conventions of :mod:`fluxtrain.batches` (a mapping, a pair,
        or inputs only).
        """
        state = learner.batch
        state.inputs, state.targets = split(batch)
        state.outputs = state.loss = None
        state.updating, state.updated = (), False
        learner.fire(StepBegin, self)

    def forward(self, learner: Learner, model: Any = None, inputs: Any = None) -> Any:
        """Runs ``model`` (the learner's) on ``inputs`` (the batch's), sets ``batch.outputs``
        and fires ``LossBegin``; returns the outputs.

        Tuple or list inputs are unpacked, ``model(*inputs)``, a mapping is passed as
        keywords, ``model(**inputs)`` (:func:`fluxtrain.batches.forward`).
        """
        state = learner.batch
        state.outputs = outputs = run_model(
            learner.model if model is None else model, state.inputs if inputs is None else inputs
        )
        learner.fire(LossBegin, self)
        return outputs

    def loss(self, learner: Learner) -> torch.Tensor:
        """Sets and returns ``batch.loss``: ``loss_fn(outputs, targets)``, or the model's own
        loss when ``loss_fn`` is ``None`` (:func:`fluxtrain.batches.compute_loss`)."""
        state = learner.batch
        state.loss = loss = compute_loss(learner.loss_fn, state.outputs, state.targets)
        return loss

    def end(self, learner: Learner) -> None:
        """Fires ``StepEnd``; in a training phase, first counts the step if an optimizer
        stepped in it."""
        learner.fire(StepEnd, self)

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class AbstractTrainingPhase(Phase):
    """Base of phases that update the model: the model is put in ``train()`` mode.

    Besides the pieces every phase has (:meth:`~Phase.begin`, :meth:`~Phase.forward`,
    :meth:`~Phase.loss`, :meth:`end`), a training step has :meth:`backward` and
    :meth:`update`, once per optimizer update:

    .. code-block:: python

        def step(self, learner, batch):
            self.begin(learner, batch)                       # StepBegin
            fake = self.forward(learner, gan.generator, z)   # LossBegin
            loss_d = ...
            if self.backward(learner, loss_d, "discriminator"):  # BackwardBegin, BackwardEnd
                self.update(learner)                          # optimizer.step(), zero_grad()
            ...
            self.end(learner)                                # counted, StepEnd
    """

    name = "train"

    @contextlib.contextmanager
    def context(self, learner: Learner) -> Iterator[None]:
        learner.model.train()
        yield

    def backward(self, learner: Learner, loss: torch.Tensor, *optimizers: str) -> bool:
        """Backpropagates ``loss`` for an update of ``optimizers`` (names; all by default).

        Sets ``batch.loss`` and ``batch.updating``, fires ``BackwardBegin``, runs ``backward``
        and fires ``BackwardEnd``, where callbacks act on the gradients of those optimizers
        (unscaling, clipping). With a subset of the optimizers, gradients flow only into their
        parameters (``backward(inputs=...)``), so another optimizer's gradients stay as they
        were.

        Returns:
            ``False`` when a callback skipped the update (``CancelUpdate``, e.g. while
            accumulating gradients): then do not call :meth:`update`.
        """
        state = learner.batch
        state.loss = loss
        state.updating = names = updating(learner, optimizers)
        learner.fire(BackwardBegin, self)
        if len(names) == len(learner.optimizers):
            state.loss.backward()
        else:
            state.loss.backward(inputs=parameters_of(learner, names))
        try:
            learner.fire(BackwardEnd, self)
        except CancelUpdate:
            return False
        return True

    def update(self, learner: Learner) -> None:
        """Steps the optimizers of the last :meth:`backward` and sets their gradients to
        ``None``."""
        optimizers = learner.optimizers
        for name in learner.batch.updating:
            optimizer = optimizers[name]
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
        learner.batch.updated = True

    def end(self, learner: Learner) -> None:
        if learner.batch.updated:
            learner.fitstate.count_step()
        learner.fire(StepEnd, self)


class AbstractValidationPhase(Phase):
    """Base of phases that only evaluate: ``eval()`` and ``no_grad()``, mode restored after."""

    name = "valid"

    @contextlib.contextmanager
    def context(self, learner: Learner) -> Iterator[None]:
        with evaluating(learner.model):
            yield


class TrainingPhase(AbstractTrainingPhase):
    """Forward, loss, backward, update of every optimizer: the default training step.

    Its :meth:`step` is written with the pieces of :class:`AbstractTrainingPhase`; a custom
    training step (two optimizers, two losses) overrides :meth:`step` with the same pieces.

    Examples:
        >>> from fluxtrain.testing import tiny_learner
        >>> learner = tiny_learner()
        >>> learner.step(TrainingPhase(), next(iter(learner.data.train)))
        >>> learner.batch.loss.ndim
        0
    """

    def step(self, learner: Learner, batch: Any) -> None:
        self.begin(learner, batch)
        self.forward(learner)
        loss = self.loss(learner)
        if self.backward(learner, loss):
            self.update(learner)
        self.end(learner)


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
        self.begin(learner, batch)
        self.forward(learner)
        self.loss(learner)
        self.end(learner)


def updating(learner: Learner, names: tuple[str, ...]) -> tuple[str, ...]:
    """The optimizer names an update is for: ``names`` checked, or all of the learner's.

    Examples:
        >>> from fluxtrain.testing import tiny_learner
        >>> updating(tiny_learner(), ())
        ('optimizer',)
    """
    optimizers = learner.optimizers
    if not names:
        return learner.optimizer_names
    unknown = [n for n in names if n not in optimizers]
    if unknown:
        raise FluxTrainError(
            f"backward: no optimizer named {', '.join(map(repr, unknown))}; the learner's "
            f"optimizers are {', '.join(map(repr, optimizers))}."
        )
    return names


def parameters_of(learner: Learner, names: tuple[str, ...]) -> list[torch.Tensor]:
    """The parameters the optimizers ``names`` update."""
    optimizers = learner.optimizers
    return [p for name in names for group in optimizers[name].param_groups for p in group["params"]]
