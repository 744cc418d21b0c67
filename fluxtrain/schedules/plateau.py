"""A metric-driven schedule: reduce the value when a monitored metric stops improving.

Unlike the rest of the catalogue its value is not a function of time: it keeps its current value
as state and changes it only in :meth:`ReduceOnPlateau.observe`, which the
:class:`~fluxtrain.Scheduler` calls at the end of every epoch with the epoch's metrics.

Examples:
    >>> from fluxtrain.schedules import reduce_on_plateau
    >>> s = reduce_on_plateau(patience=1, start=0.1)
    >>> for epoch, loss in enumerate([1.0, 0.9, 0.95, 0.93], start=1):
    ...     s.observe({"valid/Loss": loss}, t=epoch)
    >>> round(s(4), 12)
    0.01
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from ..exceptions import ScheduleError
from .base import BaseSchedule
from .decays import check_number

_STATE = ("start", "value", "best", "num_bad_epochs", "cooldown_counter", "last_time")


class ReduceOnPlateau(BaseSchedule):
    """The schedule :func:`reduce_on_plateau` builds; see there for the rules.

    Its state (``value``, ``best``, ``num_bad_epochs``, ``cooldown_counter``, ``last_time``)
    round-trips through :meth:`state_dict` and :meth:`load_state_dict`.
    """

    def __init__(self, unit: str, start: float | None, **rules: Any) -> None:
        super().__init__(unit)
        self.rules = rules
        self.monitor: str = rules["monitor"]
        self.factor, self.patience = rules["factor"], rules["patience"]
        self.mode, self.threshold = rules["mode"], rules["threshold"]
        self.threshold_mode, self.cooldown = rules["threshold_mode"], rules["cooldown"]
        self.min_value, self.eps = rules["min_value"], rules["eps"]
        self.start: float | None = start
        self.value: float | None = start
        self.best = math.inf if self.mode == "min" else -math.inf
        self.num_bad_epochs = 0
        self.cooldown_counter = 0
        self.last_time: float | None = None

    def continue_from(self, value: float) -> None:
        """Sets the start value if none was given (``join`` passes the previous segment's end)."""
        if self.start is None:
            self.start = self.value = float(value)

    def _current(self, before_start: bool) -> float:
        value = self.start if before_start else self.value
        if value is None:
            raise ScheduleError(
                "reduce_on_plateau: no start value; pass start=<initial value>, or place it after "
                "another segment in join([...], boundaries) to continue from that segment's end."
            )
        return value

    def scalar(self, t: float) -> float:
        return self._current(t < 0.0)

    def array(self, t: np.ndarray) -> np.ndarray:
        return np.where(t < 0.0, self._current(True), self._current(False))

    def is_better(self, current: float) -> bool:
        """Whether ``current`` improves on the best value seen, by torch's threshold rules."""
        if self.threshold_mode == "rel":
            scale = 1.0 - self.threshold if self.mode == "min" else 1.0 + self.threshold
            bound = self.best * scale
        else:
            bound = self.best - self.threshold if self.mode == "min" else self.best + self.threshold
        return current < bound if self.mode == "min" else current > bound

    def observe(self, metrics: Mapping[str, float], t: float) -> None:
        """Counts an epoch without improvement of ``metrics[monitor]``, reducing the value after
        more than ``patience`` of them. Ignored before the start (``t < 0``) and at a time not
        after the last observation (one observation per epoch end)."""
        if t < 0.0 or (self.last_time is not None and t <= self.last_time):
            return
        if self.monitor not in metrics:
            available = ", ".join(map(repr, sorted(metrics))) or "none"
            raise ScheduleError(
                f"reduce_on_plateau: the monitored metric {self.monitor!r} is not among the epoch "
                f"metrics (available: {available}); pass monitor= one of them, or add the metric."
            )
        value = self._current(False)
        self.last_time = float(t)
        current = float(metrics[self.monitor])
        if self.is_better(current):
            self.best, self.num_bad_epochs = current, 0
        else:
            self.num_bad_epochs += 1
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0
        if self.num_bad_epochs > self.patience:
            reduced = max(value * self.factor, self.min_value)
            if value - reduced > self.eps:
                self.value = reduced
            self.cooldown_counter, self.num_bad_epochs = self.cooldown, 0

    def state_dict(self) -> dict[str, Any]:
        return {key: getattr(self, key) for key in _STATE}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        missing = [key for key in _STATE if key not in state]
        if missing:
            raise ScheduleError(
                f"reduce_on_plateau: the state is missing {missing}; pass what state_dict() "
                f"returned, got keys {sorted(state)}."
            )
        for key in _STATE:
            setattr(self, key, state[key])

    def __repr__(self) -> str:
        rules = ", ".join(f"{key}={value!r}" for key, value in self.rules.items())
        return f"reduce_on_plateau({rules}, start={self.start!r}, unit={self.unit!r})"


def _choice(owner: str, name: str, value: object, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise ScheduleError(
            f"{owner}: {name} must be one of {', '.join(map(repr, choices))}, got {value!r}."
        )
    return str(value)


def _count(owner: str, name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ScheduleError(
            f"{owner}: {name} must be a whole number of epochs >= 0, got {value!r}."
        )
    return int(value)


def reduce_on_plateau(
    monitor: str = "valid/Loss",
    factor: float = 0.1,
    patience: int = 10,
    mode: str = "min",
    threshold: float = 1e-4,
    threshold_mode: str = "rel",
    cooldown: int = 0,
    min_value: float = 0,
    start: float | None = None,
    *,
    eps: float = 1e-8,
    unit: str = "step",
) -> ReduceOnPlateau:
    """Multiplies the value by ``factor`` when ``monitor`` stops improving, as torch's
    ``ReduceLROnPlateau``.

    At each :meth:`~ReduceOnPlateau.observe` (an epoch end): the metric improves if it is below
    ``best * (1 - threshold)`` (``mode="min"``, ``threshold_mode="rel"``; ``best - threshold``
    with ``"abs"``; above ``best * (1 + threshold)`` or ``best + threshold`` for ``"max"``);
    otherwise one more bad epoch is counted. During a cooldown bad epochs are not counted. When
    more than ``patience`` epochs in a row are bad, the value becomes ``max(value * factor,
    min_value)`` (unless that changes it by ``eps`` or less) and a cooldown of ``cooldown``
    epochs begins.

    The value is not a function of time: ``s(t)`` and ``s.array(t)`` return the current value for
    every ``t >= 0`` (and ``start`` before 0). As a segment of ``join`` or inside ``warmup`` it
    sees its own time: observations before it starts are ignored, the one at its start sets the
    baseline. ``start=None`` continues from the previous segment's end in ``join``.

    Examples:
        >>> from fluxtrain.schedules import join, linear, reduce_on_plateau
        >>> s = join([linear(0.01, 0.1, 5), reduce_on_plateau(patience=0)], [5])
        >>> s.observe({"valid/Loss": 0.5}, t=3)  # still warming up: ignored
        >>> s.observe({"valid/Loss": 0.5}, t=5); s.observe({"valid/Loss": 0.6}, t=6)
        >>> round(s(2), 12), round(s(6), 12)
        (0.046, 0.01)
    """
    owner = "reduce_on_plateau"
    if not isinstance(monitor, str) or not monitor:
        raise ScheduleError(
            f"{owner}: monitor must be a metric name such as 'valid/Loss', got {monitor!r}."
        )
    rate = check_number(owner, "factor", factor, 0, strict=True)
    if rate >= 1.0:
        raise ScheduleError(f"{owner}: factor must be < 1 to reduce the value, got {factor!r}.")
    return ReduceOnPlateau(
        unit,
        None if start is None else check_number(owner, "start", start),
        monitor=monitor,
        factor=rate,
        patience=_count(owner, "patience", patience),
        mode=_choice(owner, "mode", mode, ("min", "max")),
        threshold=check_number(owner, "threshold", threshold, 0),
        threshold_mode=_choice(owner, "threshold_mode", threshold_mode, ("rel", "abs")),
        cooldown=_count(owner, "cooldown", cooldown),
        min_value=check_number(owner, "min_value", min_value),
        eps=check_number(owner, "eps", eps, 0),
    )
