"""The :class:`Callback` base class: one hook per event, declared state access, ordering.

Examples:
    >>> from fluxtrain import Callback, Read, TrainingPhase
    >>> class PrintLoss(Callback):
    ...     stateaccess = {"batch.loss": Read}
    ...     def on_step_end(self, phase, learner):
    ...         if isinstance(phase, TrainingPhase):
    ...             print(round(learner.batch.loss.item(), 3))
    >>> PrintLoss().name
    'PrintLoss'
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from .access import Access, check_stateaccess
from .events import EVENTS, Event, StepEnd
from .exceptions import FluxTrainError

if TYPE_CHECKING:
    from .learner import Learner
    from .ordering import Resolution
    from .phases import Phase


class Callback:
    """Base class of callbacks. Override the hooks you need; the others cost nothing.

    Attributes:
        stateaccess: Dotted learner paths mapped to ``Read``/``Write``; checked at definition.
        runafter: Callback types this one must run after, when present.

    Examples:
        >>> from fluxtrain import Callback, Write
        >>> class Counter(Callback):
        ...     stateaccess = {"cbstate.count": Write}
        ...     def init(self, learner):
        ...         learner.cbstate.count = 0
        ...     def on_step_end(self, phase, learner):
        ...         learner.cbstate.count += 1
        >>> Counter.overridden_hooks()
        ('on_step_end',)
    """

    stateaccess: ClassVar[Mapping[str, Access]] = {}
    runafter: ClassVar[tuple[type[Callback], ...]] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        hooks = [event.hook for event in EVENTS]
        unknown = [n for n in cls.__dict__ if n.startswith("on_") and n not in hooks]
        if unknown:
            raise FluxTrainError(
                f"{cls.__name__}.{unknown[0]} looks like a hook, but there is no such event, so "
                f"it would never be called. The hooks are {', '.join(hooks)}; rename it to one "
                f"of them, or give the method a name that does not start with 'on_'."
            )
        if "stateaccess" in cls.__dict__:
            cls.stateaccess = check_stateaccess(cls.__name__, cls.__dict__["stateaccess"])
        runafter = cls.__dict__.get("runafter", ())
        if not isinstance(runafter, tuple) or not all(
            isinstance(c, type) and issubclass(c, Callback) for c in runafter
        ):
            raise FluxTrainError(
                f"{cls.__name__}.runafter must be a tuple of Callback classes, got {runafter!r}."
            )

    @property
    def name(self) -> str:
        """The callback's name in messages and results (its class name)."""
        return type(self).__name__

    def accesses(self) -> Mapping[str, Access]:
        """The state this instance reads and writes; the class's ``stateaccess`` by default."""
        return self.stateaccess

    def init(self, learner: Learner) -> None:
        """One-time setup when the learner is built; must be idempotent."""

    def resolveconflict(self, other: Callback) -> Resolution:
        """How to order this callback with ``other`` when both write overlapping state.

        Return ``RunFirst(cb)``, ``NoConflict()`` or ``Unresolvable()`` (the default).
        """
        from .ordering import Unresolvable

        return Unresolvable()

    def training_data(self, data: Any) -> Any:
        """The training data the ``fit`` about to begin reads instead of ``data``: ``data``.

        Called once per ``fit``, before ``FitBegin``, in the callbacks' order; the
        ``Scheduler`` re-chunks a ``DataLoader`` here under a ``BatchSize`` schedule.
        """
        return data

    def state_dict(self) -> dict[str, Any]:
        """The callback's own state, saved in checkpoints. Empty by default."""
        return {}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restores what :meth:`state_dict` returned."""

    @classmethod
    def overridden_hooks(cls) -> tuple[str, ...]:
        """The hook names this class implements, in event order."""
        return tuple(
            e.hook for e in EVENTS if getattr(cls, e.hook) is not getattr(Callback, e.hook)
        )

    def implemented_hooks(self) -> tuple[str, ...]:
        """The hook names this instance answers: its class's overrides and hooks set on it."""
        own = vars(self)
        return tuple(
            e.hook
            for e in EVENTS
            if e.hook in own or getattr(type(self), e.hook) is not getattr(Callback, e.hook)
        )

    def on_fit_begin(self, phase: Phase, learner: Any) -> None:
        """Called at ``FitBegin``."""

    def on_epoch_begin(self, phase: Phase, learner: Any) -> None:
        """Called at ``EpochBegin``."""

    def on_step_begin(self, phase: Phase, learner: Any) -> None:
        """Called at ``StepBegin``."""

    def on_loss_begin(self, phase: Phase, learner: Any) -> None:
        """Called at ``LossBegin``."""

    def on_backward_begin(self, phase: Phase, learner: Any) -> None:
        """Called at ``BackwardBegin``."""

    def on_backward_end(self, phase: Phase, learner: Any) -> None:
        """Called at ``BackwardEnd``."""

    def on_step_end(self, phase: Phase, learner: Any) -> None:
        """Called at ``StepEnd``."""

    def on_epoch_end(self, phase: Phase, learner: Any) -> None:
        """Called at ``EpochEnd``."""

    def on_fit_end(self, phase: Phase, learner: Any) -> None:
        """Called at ``FitEnd``."""

    def __repr__(self) -> str:
        return f"{self.name}()"


class CustomCallback(Callback):
    """Calls ``fn(learner)`` at one event, in phases of one type.

    Args:
        fn: Called with the (protected) learner.
        event: The event class, e.g. ``StepEnd``.
        phase: Only phases that are instances of this type.
        stateaccess: What ``fn`` reads and writes.

    Examples:
        >>> from fluxtrain import CustomCallback, EpochEnd, Read
        >>> cb = CustomCallback(lambda learner: None, EpochEnd, stateaccess={"model": Read})
        >>> cb.implemented_hooks()
        ('on_epoch_end',)
    """

    def __init__(
        self,
        fn: Callable[[Any], Any],
        event: type[Event] = StepEnd,
        phase: type | None = None,
        stateaccess: Mapping[str, Access] | None = None,
    ) -> None:
        from .phases import Phase

        if not (isinstance(event, type) and issubclass(event, Event) and event is not Event):
            raise FluxTrainError(
                f"CustomCallback: event must be an event class such as StepEnd, got {event!r}."
            )
        if not callable(fn):
            raise FluxTrainError(f"CustomCallback: fn must be callable, got {fn!r}.")
        self.fn = fn
        self.event = event
        self.phase = Phase if phase is None else phase
        self._stateaccess = check_stateaccess("CustomCallback", stateaccess or {})
        setattr(self, event.hook, self._call)

    @property
    def name(self) -> str:
        return f"CustomCallback({getattr(self.fn, '__name__', 'fn')})"

    def accesses(self) -> Mapping[str, Access]:
        return self._stateaccess

    def _call(self, phase: Phase, learner: Any) -> None:
        if isinstance(phase, self.phase):
            self.fn(learner)
