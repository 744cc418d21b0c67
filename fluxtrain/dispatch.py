"""The callbacks a learner runs, and which of their hooks each event calls, in what order.

A learner runs the callbacks it is given plus, with ``usedefaultcallbacks``, each of the
:func:`~fluxtrain.callbacks.defaults.default_callbacks` of a type not given
(:func:`with_defaults`). :func:`dispatch_table` orders them from their declarations
(:func:`~fluxtrain.ordering.order_callbacks`), calls each one's ``init``, and builds one tuple of
``(hook, view)`` pairs per event: the hooks the callbacks implement, in order, each with the
:class:`~fluxtrain.access.ProtectedLearner` view its ``stateaccess`` allows.
:meth:`Learner.fire <fluxtrain.Learner.fire>` calls them; built once, so firing an event
allocates nothing.

Examples:
    >>> from fluxtrain.events import StepEnd
    >>> from fluxtrain.testing import tiny_learner
    >>> callbacks, handlers = dispatch_table(tiny_learner(), with_defaults([], True))
    >>> [cb.name for cb in callbacks]
    ['Recorder', 'Metrics', 'StopOnNaNLoss', 'ProgressPrinter', 'MetricsPrinter']
    >>> [hook.__self__.name for hook, _ in handlers[StepEnd]]
    ['Recorder', 'Metrics', 'ProgressPrinter']
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, cast

from .access import ProtectedLearner
from .callback import Callback
from .events import EVENTS, Event
from .exceptions import Cancel, FluxTrainError
from .ordering import order_callbacks
from .phases import Phase

if TYPE_CHECKING:
    from .learner import Learner

Handler = tuple[Callable[[Phase, Any], None], ProtectedLearner]
"""A hook bound to its callback, with the view of the learner it is called with."""


def with_defaults(callbacks: Iterable[Callback], usedefaultcallbacks: bool) -> list[Callback]:
    """``callbacks`` checked, plus the default callbacks of a type not among them.

    Examples:
        >>> from fluxtrain import Recorder
        >>> [cb.name for cb in with_defaults([Recorder()], True)][:2]
        ['Recorder', 'Metrics']
        >>> with_defaults([Recorder], False)
        Traceback (most recent call last):
        ...
        fluxtrain.exceptions.FluxTrainError: Learner: callbacks must be Callback instances, ...
    """
    given = list(callbacks)
    for cb in given:
        if not isinstance(cb, Callback):
            raise FluxTrainError(
                f"Learner: callbacks must be Callback instances, got {cb!r}. Instantiate "
                f"the class (e.g. Recorder() rather than Recorder)."
            )
    if usedefaultcallbacks:
        from .callbacks.defaults import default_callbacks

        given += [d for d in default_callbacks() if not any(type(c) is type(d) for c in given)]
    return given


def dispatch_table(
    learner: Learner, callbacks: Iterable[Callback]
) -> tuple[list[Callback], dict[type[Event], tuple[Handler, ...]]]:
    """The ordered, initialized callbacks and, per event, the hooks to call in that order.

    Raises:
        CallbackConflictError: The callbacks cannot be ordered (see
            :func:`~fluxtrain.ordering.order_callbacks`).
    """
    ordered = order_callbacks(list(callbacks))
    for cb in ordered:
        cb.init(learner)
    views = {id(cb): ProtectedLearner(learner, cb.name, cb.accesses()) for cb in ordered}
    handlers = {
        event: tuple(
            (getattr(cb, event.hook), views[id(cb)])
            for cb in ordered
            if event.hook in cb.implemented_hooks()
        )
        for event in EVENTS
    }
    return ordered, handlers


class CallbackRunner:
    """The callbacks of a :class:`~fluxtrain.Learner` and the firing of events to them.

    Attributes:
        callbacks: The callbacks, in the order their hooks run.
    """

    callbacks: list[Callback]
    _handlers: dict[type[Event], tuple[Handler, ...]]

    def add_callback(self, callback: Callback) -> None:
        """Adds a callback, initializes it, and orders all callbacks again."""
        self._set_callbacks([*self.callbacks, callback])

    def remove_callback(self, callback: Callback) -> None:
        """Removes a callback (by identity) and orders the rest again."""
        self._set_callbacks([c for c in self.callbacks if c is not callback])

    def _set_callbacks(self, callbacks: list[Callback]) -> None:
        self.callbacks, self._handlers = dispatch_table(cast("Learner", self), callbacks)

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
