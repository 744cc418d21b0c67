"""``throttle``: run a callback's hook for one event only every n times or every s seconds.

Examples:
    >>> from fluxtrain import CustomCallback, StepEnd
    >>> calls = []
    >>> cb = throttle(CustomCallback(lambda learner: calls.append(1), StepEnd), StepEnd, every=4)
    >>> from fluxtrain.testing import tiny_learner
    >>> _ = tiny_learner(cb, n_batches=8, validation=False).fit(1)
    >>> len(calls)
    2
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from ..access import Access
from ..callback import Callback
from ..events import Event
from ..exceptions import FluxTrainError
from ..ordering import Resolution
from ..phases import Phase


class Throttled(Callback):
    """A callback whose hook for one event runs only every ``every`` calls or ``seconds``.

    Built by :func:`throttle`. It keeps the wrapped callback's name in messages, its declared
    state access, its ``runafter`` and its ``resolveconflict``; other hooks pass through.
    """

    def __init__(
        self, callback: Callback, event: type[Event], every: int | None, seconds: float | None
    ) -> None:
        self.wrapped = callback
        self.event = event
        self.every = every
        self.seconds = seconds
        self.runafter = callback.runafter  # type: ignore[misc]
        self._count = 0
        self._last = -float("inf")
        for hook in callback.implemented_hooks():
            setattr(self, hook, getattr(callback, hook))
        if event.hook in callback.implemented_hooks():
            setattr(self, event.hook, self._maybe_call)

    @property
    def name(self) -> str:
        return self.wrapped.name

    def accesses(self) -> Mapping[str, Access]:
        return self.wrapped.accesses()

    def init(self, learner: Any) -> None:
        self.wrapped.init(learner)

    def resolveconflict(self, other: Callback) -> Resolution:
        return self.wrapped.resolveconflict(other)

    def state_dict(self) -> dict[str, Any]:
        return {"count": self._count, "wrapped": self.wrapped.state_dict()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self._count = state["count"]
        self.wrapped.load_state_dict(state["wrapped"])

    def _maybe_call(self, phase: Phase, learner: Any) -> None:
        self._count += 1
        if self.every is not None:
            if self._count % self.every:
                return
        else:
            now = time.monotonic()
            if now - self._last < self.seconds:  # type: ignore[operator]
                return
            self._last = now
        getattr(self.wrapped, self.event.hook)(phase, learner)


def throttle(
    callback: Callback,
    event: type[Event],
    every: int | None = None,
    seconds: float | None = None,
) -> Throttled:
    """Wraps ``callback`` so its ``event`` hook runs every ``every`` calls or ``seconds``.

    Args:
        callback: The callback to throttle.
        event: The event class whose hook is throttled, e.g. ``StepEnd``.
        every: Run on every ``every``-th call (the ``every``-th, ``2*every``-th, ...).
        seconds: Or: run at most once per ``seconds`` of wall time (the first call runs).

    Returns:
        The wrapping callback; give it to the learner instead of ``callback``.
    """
    if (every is None) == (seconds is None):
        raise FluxTrainError(
            f"throttle: give exactly one of every= or seconds=, got every={every!r}, "
            f"seconds={seconds!r}."
        )
    if every is not None and (isinstance(every, bool) or not isinstance(every, int) or every < 1):
        raise FluxTrainError(f"throttle: every must be an int >= 1, got {every!r}.")
    if seconds is not None and not (isinstance(seconds, (int, float)) and seconds > 0):
        raise FluxTrainError(f"throttle: seconds must be a number > 0, got {seconds!r}.")
    if not (isinstance(event, type) and issubclass(event, Event)):
        raise FluxTrainError(f"throttle: event must be an event class, got {event!r}.")
    if event.hook not in callback.implemented_hooks():
        raise FluxTrainError(
            f"throttle: {callback.name} has no hook for {event.__name__} ({event.hook}); "
            f"throttle one of {', '.join(callback.implemented_hooks()) or 'its hooks'}."
        )
    return Throttled(callback, event, every, seconds)
