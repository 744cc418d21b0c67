"""Plain state the learner holds: the current batch, shared callback state, fit counters.

Examples:
    >>> cbstate = CallbackState(history={})
    >>> cbstate.history, "history" in cbstate
    ({}, True)
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, NamedTuple

import torch

from .exceptions import FluxTrainError


class Batch:
    """State of the current step: ``inputs`` and ``targets``, then ``outputs``, then ``loss``.

    Attributes:
        inputs: What the model is called with (see :mod:`fluxtrain.batches`).
        targets: What the loss and the metrics compare with; ``None`` for inputs-only batches.
        outputs: The model's outputs.
        loss: The loss of the last forward (a scalar tensor).
        updating: Names of the optimizers the backward and update in progress are for, from
            ``BackwardBegin`` to the update; ``()`` before the first backward of a step.
        updated: Whether an optimizer stepped in this step (a step that only accumulated
            gradients did not).

    Examples:
        >>> Batch()
        Batch(inputs=None, targets=None, outputs=None, loss=None, updating=(), updated=False)
    """

    __slots__ = ("inputs", "targets", "outputs", "loss", "updating", "updated")

    def __init__(self) -> None:
        self.inputs: Any = None
        self.targets: Any = None
        self.outputs: Any = None
        self.loss: Any = None
        self.updating: tuple[str, ...] = ()
        self.updated = False

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__slots__)
        return f"Batch({fields})"


class CallbackState:
    """State shared between callbacks, by attribute (``cbstate.history``) or key.

    Examples:
        >>> cbstate = CallbackState()
        >>> cbstate.metrics_epoch = {"train/Loss": [(0, 0.5)]}
        >>> cbstate["metrics_epoch"]["train/Loss"]
        [(0, 0.5)]
    """

    def __init__(self, **entries: Any) -> None:
        self.__dict__.update(entries)

    def __contains__(self, name: object) -> bool:
        return name in self.__dict__

    def __getitem__(self, name: str) -> Any:
        return self.__dict__[name]

    def __setitem__(self, name: str, value: Any) -> None:
        self.__dict__[name] = value

    def __iter__(self) -> Iterator[str]:
        return iter(self.__dict__)

    def get(self, name: str, default: Any = None) -> Any:
        """The entry ``name``, or ``default`` when there is none."""
        return self.__dict__.get(name, default)

    def __repr__(self) -> str:
        return f"CallbackState({', '.join(self.__dict__)})"


@dataclass
class FitState:
    """Counters of the fit in progress and of all fits so far.

    Attributes:
        n_epochs: Epochs asked of the ``fit`` call in progress (``None`` under ``steps=``).
        n_steps: Optimizer steps asked of the ``fit`` call in progress (``fit(steps=n)``), or
            ``None`` when it counts epochs.
        validate_every: The ``validate_every`` of the ``fit`` call in progress, or ``None``.
        epoch: Epochs completed in the ``fit`` call in progress.
        step: Training steps completed in the ``fit`` call in progress.
        total_epochs: Training epochs completed over all ``fit`` calls.
        total_steps: Training steps completed over all ``fit`` calls.
        steps_per_epoch: ``len()`` of the training data of the fit in progress, if it has one.
        updates_per_epoch: Optimizer updates per training epoch: ``steps_per_epoch``, unless a
            callback that groups batches (``GradientAccumulation``) sets it at ``FitBegin``.
        epoch_length: ``len()`` of the data of the epoch in progress, if it has one.
        epoch_step: Batches consumed so far in the epoch in progress.
        has_validation: Whether the fit in progress runs validation epochs.
        phase: Name of the phase of the latest epoch (``"train"``, ``"valid"``) within the
            current epoch of the fit; ``None`` before the epoch's first phase begins.
        outer_step: While a validation runs inside a training epoch (``validate_every``),
            the batches that training epoch had consumed; ``None`` otherwise.
        validated_step: The ``step`` at which the latest ``validate_every`` validation began.
        fit_id: A random name of the fit in progress, kept by a resumed fit; checkpoints carry
            it, so that a fit deletes only checkpoints it wrote itself.
        stage: Where that phase's epoch is: ``"begin"`` (``EpochBegin`` firing), ``"steps"``,
            ``"end"`` (``EpochEnd`` firing) or ``"done"``.
        resumed: Whether the fit in progress continues an interrupted one (``fit(resume=...)``).
        ending: Why the fit is ending, set before ``FitEnd`` fires: ``"completed"``,
            ``"cancelled"`` (a ``CancelFitting``), ``"interrupted"`` (``KeyboardInterrupt``) or
            ``"error"``; ``None`` while it runs.
        stopped_by: Name of the callback that cancelled the fit, if one did.
        reason: The reason it gave.

    Examples:
        >>> state = FitState(n_epochs=3, epoch=1)
        >>> state.ending is None, state.phase is None
        (True, True)
    """

    n_epochs: int | None = 0
    n_steps: int | None = None
    validate_every: int | None = None
    epoch: int = 0
    step: int = 0
    total_epochs: int = 0
    total_steps: int = 0
    steps_per_epoch: int | None = None
    updates_per_epoch: int | None = None
    epoch_length: int | None = None
    epoch_step: int = 0
    has_validation: bool = False
    phase: str | None = None
    outer_step: int | None = None
    validated_step: int | None = None
    fit_id: str | None = None
    stage: str = ""
    resumed: bool = False
    ending: str | None = None
    stopped_by: str | None = None
    reason: str | None = None

    def budget_left(self) -> bool:
        """Whether the fit in progress has epochs or steps left to run."""
        if self.n_steps is not None:
            return self.step < self.n_steps
        return self.epoch < (self.n_epochs or 0)

    def count_step(self) -> None:
        """Counts one completed training step; training phases call it after the update."""
        self.step += 1
        self.total_steps += 1


class Data(NamedTuple):
    """Training data and optional validation data, each any iterable of batches."""

    train: Iterable[Any] | None
    valid: Iterable[Any] | None


@dataclass(frozen=True)
class FitResult:
    """What a ``fit`` call did.

    Attributes:
        epochs_completed: Epochs completed in this call.
        steps_completed: Training steps completed in this call.
        stopped_by: Name of the callback that raised ``CancelFitting``, or ``None``.
        reason: Its reason, or ``None`` when the fit ran to the end.
    """

    epochs_completed: int
    steps_completed: int
    stopped_by: str | None = None
    reason: str | None = None


def length(data: Any) -> int | None:
    """``len(data)``, or ``None`` for data without a length (a ``DataLoader`` over an
    ``IterableDataset``, whose ``len()`` raises, a generator, a stream).

    Examples:
        >>> length([1, 2]), length(iter([1, 2]))
        (2, None)
    """
    try:
        return len(data)
    except TypeError:
        return None


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


def epoch_values(
    history: Any, monitor: str, owner: str, error: type[FluxTrainError] = FluxTrainError
) -> list[float]:
    """``history[monitor]`` of ``history = cbstate.metrics_epoch``: the values a callback that
    monitors a metric reads.

    Raises:
        FluxTrainError: (or ``error``) ``monitor`` has no value recorded, naming those that do.

    Examples:
        >>> epoch_values({"valid/Loss": [0.5]}, "valid/Loss", "X")
        [0.5]
    """
    values = history.get(monitor)
    if not values:
        raise error(
            f"{owner}: monitor {monitor!r} is not in cbstate.metrics_epoch; recorded: "
            f"{', '.join(sorted(history)) or 'nothing'}. Pass one of those as monitor=, or add "
            f"the metric to Metrics(...)."
        )
    return values  # type: ignore[no-any-return]


def check_recorded(cbstate: Any, monitor: str, owner: str) -> None:
    """Raises unless ``cbstate`` holds epoch metrics (``Metrics`` records them), for a
    callback that monitors ``monitor``; called at ``FitBegin``.

    Examples:
        >>> check_recorded(CallbackState(), "valid/Loss", "X")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        fluxtrain.exceptions.FluxTrainError: X: monitors 'valid/Loss' in ...
    """
    if "metrics_epoch" not in cbstate:
        raise FluxTrainError(
            f"{owner}: monitors {monitor!r} in cbstate.metrics_epoch, which only the Metrics "
            f"callback records, and this learner has none. Add Metrics(...) (or keep "
            f"usedefaultcallbacks=True)."
        )
