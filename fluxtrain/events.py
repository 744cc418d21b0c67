"""The events a :class:`~fluxtrain.Learner` fires, and the loop that fires them.

The training loop, as pseudocode (``fire(E)`` calls ``on_<e>(phase, learner)`` on every callback
that overrides that hook)::

    fit(n_epochs, phases=(TrainingPhase(), ValidationPhase())):
        fire(FitBegin)
        for epoch in range(n_epochs):
            for phase, data in [(training_phase, train), (validation_phase, valid)]:
                fire(EpochBegin)
                for batch in data:
                    batch.inputs, batch.targets = split(batch)   # begin
                    fire(StepBegin)
                    batch.outputs = model(batch.inputs)          # forward
                    fire(LossBegin)
                    batch.loss = loss_fn(batch.outputs, batch.targets)
                    if training:                                 # backward, per update
                        fire(BackwardBegin)
                        batch.loss.backward()
                        fire(BackwardEnd)             # CancelUpdate: no update
                        optimizer.step(); optimizer.zero_grad()  # update
                    fire(StepEnd)                                # end
                fire(EpochEnd)
        fire(FitEnd)                    # always: also after a cancel or an error

A custom training step (two optimizers) fires ``BackwardBegin`` and ``BackwardEnd`` once per
optimizer update and ``LossBegin`` once per forward, between one ``StepBegin`` and one
``StepEnd`` (see :class:`~fluxtrain.AbstractTrainingPhase`).

``CancelStep`` skips the rest of a step (no ``StepEnd``), ``CancelEpoch`` the rest of an epoch
(``EpochEnd`` still fires), ``CancelFitting`` the rest of the fit (``FitEnd`` still fires).

Examples:
    >>> [event.__name__ for event in EVENTS]  # doctest: +NORMALIZE_WHITESPACE
    ['FitBegin', 'EpochBegin', 'StepBegin', 'LossBegin', 'BackwardBegin', 'BackwardEnd',
     'StepEnd', 'EpochEnd', 'FitEnd']
    >>> StepEnd.hook
    'on_step_end'
"""

from __future__ import annotations

from typing import ClassVar


class Event:
    """An event type. Events are classes, never instantiated; ``hook`` names the method."""

    hook: ClassVar[str] = ""


class FitBegin(Event):
    """Fired once when ``fit`` starts, before any epoch."""

    hook = "on_fit_begin"


class EpochBegin(Event):
    """Fired at the start of each epoch of each phase."""

    hook = "on_epoch_begin"


class StepBegin(Event):
    """Fired at the start of a step; ``batch.inputs`` and ``batch.targets`` are set."""

    hook = "on_step_begin"


class LossBegin(Event):
    """Fired after the forward pass; ``batch.outputs`` is set."""

    hook = "on_loss_begin"


class BackwardBegin(Event):
    """Fired before ``loss.backward()`` in training steps; ``batch.loss`` is set."""

    hook = "on_backward_begin"


class BackwardEnd(Event):
    """Fired after ``loss.backward()``, before ``optimizer.step()``; gradients are in ``.grad``."""

    hook = "on_backward_end"


class StepEnd(Event):
    """Fired at the end of a step, after ``optimizer.step()`` and ``zero_grad()`` in training."""

    hook = "on_step_end"


class EpochEnd(Event):
    """Fired at the end of each epoch of each phase, also after ``CancelEpoch``."""

    hook = "on_epoch_end"


class FitEnd(Event):
    """Fired once when ``fit`` ends, also after ``CancelFitting`` or an error."""

    hook = "on_fit_end"


EVENTS: tuple[type[Event], ...] = (
    FitBegin,
    EpochBegin,
    StepBegin,
    LossBegin,
    BackwardBegin,
    BackwardEnd,
    StepEnd,
    EpochEnd,
    FitEnd,
)
