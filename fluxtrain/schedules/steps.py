"""Piecewise-constant schedules: drops by a factor at fixed times, and explicit value lists.

Time before 0 gives the value at 0; after the last drop (or the end of a list) the value holds.

Examples:
    >>> from fluxtrain.schedules import multistep
    >>> multistep(0.1, 0.1, [30, 80])(np.array([0.0, 30.0, 80.0]))
    array([0.1  , 0.01 , 0.001])
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from typing import overload

import numpy as np

from ..exceptions import ScheduleError
from .base import BaseSchedule
from .decays import Shape, check_number


class _StepDecay(Shape):
    name = "step_decay"

    def __init__(self, start: float, factor: float, every: float, floor: float, unit: str) -> None:
        super().__init__(unit, start=start, factor=factor, every=every, min_value=floor)
        self.start, self.factor, self.every, self.floor = start, factor, every, floor

    def scalar(self, t: float) -> float:
        return max(self.start * self.factor ** (max(t, 0.0) // self.every), self.floor)

    def array(self, t: np.ndarray) -> np.ndarray:
        drops = np.floor(np.maximum(t, 0.0) / self.every)
        return np.maximum(self.start * np.power(self.factor, drops), self.floor)


def step_decay(
    start: float, factor: float, every: float, min_value: float = 0, unit: str = "step"
) -> BaseSchedule:
    """Multiplies by ``factor`` after every ``every`` steps, never below ``min_value``.

    ``s(t) = max(start * factor ** floor(t / every), min_value)``: torch ``StepLR(opt, every,
    factor)`` at step ``t``, and MXNet ``FactorScheduler(every, factor, stop_factor_lr=min_value)``
    at update ``t + 1`` (MXNet counts updates from 1 and drops when the count exceeds a multiple of
    ``every``).

    Examples:
        >>> from fluxtrain.schedules import step_decay
        >>> s = step_decay(1.0, 0.1, 30, min_value=0.005)
        >>> s(29), s(30), s(60), s(90)
        (1.0, 0.1, 0.010000000000000002, 0.005)
    """
    owner = "step_decay"
    start = check_number(owner, "start", start)
    floor = check_number(owner, "min_value", min_value)
    if floor > start:
        raise ScheduleError(
            f"{owner}: min_value must be <= start, got min_value={min_value!r} and "
            f"start={start!r}; min_value is the floor the decay stops at."
        )
    factor = check_number(owner, "factor", factor, 0, strict=True)
    return _StepDecay(
        start, factor, check_number(owner, "every", every, 0, strict=True), floor, unit
    )


class _MultiStep(Shape):
    name = "multistep"

    def __init__(self, start: float, factor: float, milestones: list[float], unit: str) -> None:
        super().__init__(unit, start=start, factor=factor, milestones=milestones)
        self.start, self.factor, self.milestones = start, factor, milestones

    def scalar(self, t: float) -> float:
        return self.start * self.factor ** bisect.bisect_right(self.milestones, t)

    def array(self, t: np.ndarray) -> np.ndarray:
        drops = np.searchsorted(self.milestones, t, side="right")
        return self.start * np.power(self.factor, drops.astype(float))


def multistep(
    start: float, factor: float, milestones: Sequence[float], unit: str = "step"
) -> BaseSchedule:
    """Multiplies by ``factor`` at each milestone: ``s(t) = start * factor ** #{m <= t}``.

    The drop at milestone ``m`` applies from ``t = m`` on, i.e. after ``m`` steps have completed.
    This is torch ``MultiStepLR(opt, milestones, gamma)`` at step ``t`` and MXNet
    ``MultiFactorScheduler(step=milestones, factor)`` at update ``t + 1`` (MXNet drops once its
    update count exceeds ``m``): the same spelling serves both. optax
    ``piecewise_constant_schedule`` uses the same rule; Keras ``PiecewiseConstantDecay`` drops one
    step later, so its boundaries ``b`` are milestones ``b + 1``.

    Examples:
        >>> from fluxtrain.schedules import multistep
        >>> s = multistep(1.0, 0.5, [2, 4])
        >>> [s(t) for t in range(6)]
        [1.0, 1.0, 0.5, 0.5, 0.25, 0.25]
    """
    owner = "multistep"
    if isinstance(milestones, (str, bytes)) or not isinstance(milestones, Sequence):
        raise ScheduleError(f"{owner}: milestones must be a list of times, got {milestones!r}.")
    points = [check_number(owner, "each milestone", m, 0, strict=True) for m in milestones]
    if not points or any(b <= a for a, b in zip(points, points[1:])):
        raise ScheduleError(
            f"{owner}: milestones must be a non-empty, strictly increasing list, got "
            f"{list(milestones)!r}; sort them and drop repeats (use factor ** k for a k-fold drop)."
        )
    factor = check_number(owner, "factor", factor, 0, strict=True)
    return _MultiStep(check_number(owner, "start", start), factor, points, unit)


class _FromList(Shape):
    name = "from_list"

    def __init__(self, values: list[float], unit: str) -> None:
        super().__init__(unit, values=values)
        self.values, self.last = values, len(values) - 1
        self.table = np.asarray(values, dtype=float)

    def scalar(self, t: float) -> float:
        if t >= self.last:
            return self.values[self.last]
        return self.values[max(math.floor(t), 0)] if t == t else math.nan  # NaN stays NaN

    def array(self, t: np.ndarray) -> np.ndarray:
        index = np.clip(np.floor(np.nan_to_num(t, nan=0.0)), 0, self.last).astype(int)
        return np.where(np.isnan(t), np.nan, self.table[index])


def _row(values: object, owner: str, name: str) -> list[float]:
    if isinstance(values, (str, bytes)) or not isinstance(values, (Sequence, np.ndarray)):
        raise ScheduleError(f"{owner}: {name} must be a list of numbers, got {values!r}.")
    if len(values) == 0:
        raise ScheduleError(f"{owner}: {name} is empty; give at least one value.")
    return [check_number(owner, f"each value of {name}", v) for v in values]


@overload
def from_list(values: Sequence[float], unit: str = "step") -> BaseSchedule: ...
@overload
def from_list(values: Sequence[Sequence[float]], unit: str = "step") -> list[BaseSchedule]: ...
@overload
def from_list(values: np.ndarray, unit: str = "step") -> BaseSchedule | list[BaseSchedule]: ...
def from_list(values: object, unit: str = "step") -> BaseSchedule | list[BaseSchedule]:
    """Explicit values, one per step (or epoch): ``s(t) = values[min(floor(t), len - 1)]``.

    Past the end the last value holds. A list of lists (or a 2-D array, one row per parameter
    group) gives a list of schedules, one per group, for ``{LearningRate: [s0, s1]}``.

    Examples:
        >>> from fluxtrain.schedules import from_list
        >>> s = from_list([0.1, 0.2, 0.3])
        >>> s(0), s(1.5), s(7)
        (0.1, 0.2, 0.3)
        >>> [g(1) for g in from_list([[1.0, 2.0], [3.0, 4.0]])]
        [2.0, 4.0]
    """
    owner = "from_list"
    if isinstance(values, np.ndarray) and values.ndim not in (1, 2):
        raise ScheduleError(
            f"{owner}: values must be 1-D (one schedule) or 2-D (one row per group), got an "
            f"array of shape {values.shape}."
        )
    rows = values if isinstance(values, (Sequence, np.ndarray)) else None
    if rows is not None and len(rows) and isinstance(rows[0], (Sequence, np.ndarray)):
        if any(isinstance(row, (str, bytes)) for row in rows):
            raise ScheduleError(f"{owner}: values must hold numbers, got {values!r}.")
        return [_FromList(_row(row, owner, f"values[{i}]"), unit) for i, row in enumerate(rows)]
    return _FromList(_row(values, owner, "values"), unit)
