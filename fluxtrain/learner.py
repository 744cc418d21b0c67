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

from collections.abc import Callable, Iterable
from typing import Any

import torch

from .access import ProtectedLearner
from .callback import Callback
from .events import EVENTS, EpochBegin, EpochEnd, Event, FitBegin, FitEnd
from .exceptions import BatchError, Cancel, CancelEpoch, CancelFitting, CancelStep, FluxTrainError
from .ordering import order_callbacks
from .phases import AbstractTrainingPhase, Phase, TrainingPhase, ValidationPhase
from .state import Batch, CallbackState, Data, FitResult, FitState

Handler = tuple[Callable[[Phase, Any], None], ProtectedLearner]


class Learner:
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
        for cb in callbacks:
            if not isinstance(cb, Callback):
                raise FluxTrainError(
                    f"Learner: callbacks must be Callback instances, got {cb!r}. Instantiate "
                    f"the class (e.g. Recorder() rather than Recorder)."
                )
        given = list(callbacks)
        if usedefaultcallbacks:
            given += [d for d in default_callbacks() if not any(type(c) is type(d) for c in given)]
        self.callbacks: list[Callback] = []
        self._handlers: dict[type[Event], tuple[Handler, ...]] = {}
        self._set_callbacks(given)

    # -- callbacks -------------------------------------------------------------------------

    def add_callback(self, callback: Callback) -> None:
        """Adds a callback, initializes it, and orders all callbacks again."""
        self._set_callbacks([*self.callbacks, callback])

    def remove_callback(self, callback: Callback) -> None:
        """Removes a callback (by identity) and orders the rest again."""
        self._set_callbacks([c for c in self.callbacks if c is not callback])

    def _set_callbacks(self, callbacks: list[Callback]) -> None:
        ordered = order_callbacks(callbacks)
        for cb in ordered:
            cb.init(self)
        views = {id(cb): ProtectedLearner(self, cb.name, cb.accesses()) for cb in ordered}
        self.callbacks = ordered
        self._handlers = {
            event: tuple(
                (getattr(cb, event.hook), views[id(cb)])
                for cb in ordered
                if event.hook in cb.implemented_hooks()
            )
            for event in EVENTS
        }

    def fire(self, event: type[Event], phase: Phase) -> None:
        """Calls ``event``'s hook on every callback that implements it, in order."""
        for hook, view in self._handlers[event]:
            try:
                hook(phase, view)
            except Cancel as cancel:
                if cancel.callback is None:
                    cancel.callback = hook.__self__.name  # type: ignore[attr-defined]
                raise
            except Exception as error:
                error.add_note(f"(raised in {hook.__self__.name}.{event.hook})")  # type: ignore[attr-defined]
                raise

    # -- running ---------------------------------------------------------------------------

    def fit(self, n_epochs: int, data: Any = None) -> FitResult:
        """Runs ``n_epochs`` more epochs: training, then validation when there is data for it.

        Args:
            n_epochs: Number of epochs, ``>= 0``.
            data: Data for this call only, in any form the constructor accepts.

        Returns:
            A :class:`~fluxtrain.FitResult`; a ``CancelFitting`` is reported there, not raised.
        """
        if isinstance(n_epochs, bool) or not isinstance(n_epochs, int) or n_epochs < 0:
            raise FluxTrainError(f"fit: n_epochs must be an int >= 0, got {n_epochs!r}.")
        train, valid = self.data if data is None else to_data(data)
        if train is None:
            raise FluxTrainError(
                "fit: there is no training data. Pass it to Learner(...) or to fit(n, data)."
            )
        steps_per_epoch = len(train) if hasattr(train, "__len__") else None  # type: ignore[arg-type]
        if steps_per_epoch == 0:
            raise BatchError("fit: the training data is empty (len() == 0); give it batches.")
        state = self.fitstate
        state.n_epochs, state.epoch, state.step = n_epochs, 0, 0
        state.steps_per_epoch = steps_per_epoch
        state.has_validation = valid is not None
        training, validation = TrainingPhase(), ValidationPhase()
        stopped_by = reason = None
        try:
            self.fire(FitBegin, training)
            for _ in range(n_epochs):
                self.epoch(training, train)
                if valid is not None:
                    self.epoch(validation, valid)
                state.epoch += 1
        except CancelFitting as cancel:
            stopped_by, reason = cancel.callback, cancel.reason
        finally:
            self.fire(FitEnd, training)
        return FitResult(state.epoch, state.step, stopped_by, reason)

    def epoch(self, phase: Phase, data: Iterable[Any]) -> None:
        """Runs one epoch of ``phase`` over ``data``: ``EpochBegin``, the steps, ``EpochEnd``."""
        state = self.fitstate
        state.epoch_length = len(data) if hasattr(data, "__len__") else None  # type: ignore[arg-type]
        state.epoch_step = 0
        training = isinstance(phase, AbstractTrainingPhase)
        with phase.context(self):
            try:
                self.fire(EpochBegin, phase)
                step = phase.step
                for batch in data:
                    state.epoch_step += 1
                    try:
                        step(self, batch)
                    except CancelStep:
                        pass
            except CancelEpoch:
                pass
            if training and state.epoch_step == 0:
                raise BatchError(
                    "The training data yielded no batches in this epoch. If it is an iterator, "
                    "it was used up by an earlier epoch: pass a re-iterable (a list, a "
                    "DataLoader) instead."
                )
            self.fire(EpochEnd, phase)
        if training:
            state.total_epochs += 1

    def step(self, phase: Phase, batch: Any) -> None:
        """Runs one step of ``phase`` on ``batch`` (in the phase's context)."""
        with phase.context(self):
            phase.step(self, batch)

    def __repr__(self) -> str:
        names = ", ".join(cb.name for cb in self.callbacks)
        return f"Learner({type(self.model).__name__}, callbacks=[{names}])"


def to_data(data: Any) -> Data:
    """Normalizes the accepted data forms to :class:`~fluxtrain.state.Data`.

    Examples:
        >>> to_data(([1], [2]))
        Data(train=[1], valid=[2])
        >>> to_data([1, 2, 3])
        Data(train=[1, 2, 3], valid=None)
    """
    if data is None:
        return Data(None, None)
    if isinstance(data, Data):
        train, valid = data
    elif type(data) is tuple and len(data) == 2:
        train, valid = data
    else:
        train, valid = data, None
    for name, part in (("training", train), ("validation", valid)):
        if part is not None and not hasattr(part, "__iter__"):
            raise FluxTrainError(
                f"The {name} data must be an iterable of (inputs, targets) batches, got "
                f"{type(part).__name__}. Wrap tensors in a DataLoader(TensorDataset(x, y))."
            )
    if isinstance(train, torch.Tensor):
        raise FluxTrainError(
            "The training data is a single tensor; give batches of (inputs, targets) instead, "
            "e.g. DataLoader(TensorDataset(inputs, targets), batch_size=32)."
        )
    return Data(train, valid)


def default_callbacks() -> list[Callback]:
    """The callbacks a learner adds unless told not to.

    Examples:
        >>> [cb.name for cb in default_callbacks()]
        ['Recorder', 'Metrics', 'StopOnNaNLoss', 'ProgressPrinter', 'MetricsPrinter']
    """
    from .callbacks.metrics import Metrics
    from .callbacks.printer import MetricsPrinter
    from .callbacks.progress import ProgressPrinter
    from .callbacks.recorder import Recorder
    from .callbacks.stop_on_nan import StopOnNaNLoss

    return [Recorder(), Metrics(), StopOnNaNLoss(), ProgressPrinter(), MetricsPrinter()]
