"""Schedules: pure functions of time with a unit, composable as values.

A schedule is called with a time in its own ``unit`` (``"step"``, ``"epoch"``, ``"fraction"``
or ``"sample"``) and returns the value at that time. It knows nothing of learners or optimizers;
:class:`~fluxtrain.Scheduler` and :class:`~fluxtrain.TorchScheduler` only apply it.

Every schedule is callable on a float (returns a float) and on a numpy array (returns an array).
This module holds the base class and the value and time composites; keyframe schedules are in
:mod:`fluxtrain.schedules.keyframes`, the published shapes in :mod:`fluxtrain.schedules`.

Examples:
    >>> s = FunctionSchedule(lambda t: 0.1 / (1 + t), unit="step")
    >>> s(1.0)
    0.05
    >>> (s * 2 + 1)(1.0)
    1.1
"""

from __future__ import annotations

import math
import numbers
import operator
from collections.abc import Callable, Mapping
from typing import Any, overload

import numpy as np

from ..exceptions import ScheduleError

UNITS = ("step", "epoch", "fraction", "sample", "token")


def check_unit(unit: object, owner: str = "schedule") -> str:
    """Returns ``unit`` if it is one of :data:`UNITS`, else raises ``ScheduleError``.

    Examples:
        >>> check_unit("epoch")
        'epoch'
    """
    if unit not in UNITS:
        raise ScheduleError(
            f"{owner}: unit must be one of {', '.join(map(repr, UNITS))}, got {unit!r}."
        )
    return unit  # type: ignore[return-value]


class BaseSchedule:
    """Base class of schedules: a pure function of time in one ``unit``.

    Subclasses implement :meth:`scalar` (a Python float in, a float out, cheap) and may override
    :meth:`array` (vectorized over a numpy array; by default it loops over :meth:`scalar`).

    Examples:
        >>> class Halving(BaseSchedule):
        ...     def scalar(self, t):
        ...         return 0.5 ** t
        >>> Halving("step")(np.array([0.0, 1.0, 2.0]))
        array([1.  , 0.5 , 0.25])
    """

    unit: str

    def __init__(self, unit: str) -> None:
        self.unit = check_unit(unit, type(self).__name__)

    def scalar(self, t: float) -> float:
        """The value at time ``t`` (a float in this schedule's unit)."""
        raise NotImplementedError

    def array(self, t: np.ndarray) -> np.ndarray:
        """The values at the times in ``t``, elementwise."""
        return np.array([self.scalar(float(x)) for x in t.ravel()], dtype=float).reshape(t.shape)

    @overload
    def __call__(self, t: float) -> float: ...
    @overload
    def __call__(self, t: np.ndarray) -> np.ndarray: ...
    def __call__(self, t: Any) -> Any:
        if type(t) is float:  # the per-step path: skip the conversions
            return self.scalar(t)
        if isinstance(t, np.ndarray):
            return self.array(t.astype(float, copy=False))
        return self.scalar(float(t))

    def children(self) -> tuple[BaseSchedule, ...]:
        """The schedules this one is built from (for composites); empty for a leaf."""
        return ()

    def observe(self, metrics: Mapping[str, float], t: float) -> None:
        """Tells metric-driven parts of this schedule the latest epoch metrics.

        The :class:`~fluxtrain.Scheduler` calls it at the end of every epoch with the epoch's
        metrics (``{"valid/Loss": 0.31, ...}``) and the current time in this schedule's unit.
        Pure schedules ignore it; composites pass it on to their children.
        """
        for child in self.children():
            child.observe(metrics, t)

    def state_dict(self) -> dict[str, Any]:
        """The mutable state of metric-driven parts (empty for pure schedules)."""
        children = [child.state_dict() for child in self.children()]
        return {"children": children} if any(children) else {}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restores what :meth:`state_dict` returned."""
        for child, child_state in zip(self.children(), state.get("children", ())):
            child.load_state_dict(child_state)

    def shift(self, dt: float) -> BaseSchedule:
        """The schedule delayed by ``dt``: its value at ``t`` is ``self(t - dt)``.

        Examples:
            >>> s = FunctionSchedule(lambda t: t, unit="step").shift(2)
            >>> s(5.0)
            3.0
        """
        return TimeMapped(self, dt, 1.0)

    def stretch(self, k: float) -> BaseSchedule:
        """The schedule slowed by ``k``: its value at ``t`` is ``self(t / k)``.

        Examples:
            >>> s = FunctionSchedule(lambda t: t, unit="step").stretch(4)
            >>> s(2.0)
            0.5
        """
        if not (
            isinstance(k, numbers.Real) and not isinstance(k, bool) and math.isfinite(k) and k > 0
        ):
            raise ScheduleError(f"stretch: k must be a finite number > 0, got {k!r}.")
        return TimeMapped(self, 0.0, float(k))

    def _combine(self, other: object, op: Callable[[Any, Any], Any], symbol: str) -> BaseSchedule:
        if isinstance(other, BaseSchedule):
            if other.unit != self.unit:
                raise ScheduleError(
                    f"Cannot combine a schedule in unit {self.unit!r} with one in unit "
                    f"{other.unit!r} by {symbol!r}; build both in the same unit."
                )
            return Combined(self, other, op, symbol)
        if isinstance(other, (int, float)) and not isinstance(other, bool):
            if not math.isfinite(other):
                raise ScheduleError(f"Cannot combine a schedule with {other!r} by {symbol!r}.")
            return Combined(self, Constant(float(other), self.unit), op, symbol)
        return NotImplemented

    def __add__(self, other: object) -> BaseSchedule:
        return self._combine(other, operator.add, "+")

    def __radd__(self, other: object) -> BaseSchedule:
        return self._combine(other, operator.add, "+")

    def __mul__(self, other: object) -> BaseSchedule:
        return self._combine(other, operator.mul, "*")

    def __rmul__(self, other: object) -> BaseSchedule:
        return self._combine(other, operator.mul, "*")

    def __sub__(self, other: object) -> BaseSchedule:
        return self._combine(other, operator.sub, "-")

    def __rsub__(self, other: object) -> BaseSchedule:
        if isinstance(other, (int, float)) and not isinstance(other, bool):
            return -self + other  # c - s, exactly: negation is exact and + commutes
        return NotImplemented

    def __neg__(self) -> BaseSchedule:
        return self * -1.0


class Constant(BaseSchedule):
    """The same value at every time.

    Examples:
        >>> Constant(0.1)(123.0)
        0.1
    """

    def __init__(self, value: float, unit: str = "step") -> None:
        super().__init__(unit)
        self.value = float(value)

    def scalar(self, t: float) -> float:
        return self.value

    def array(self, t: np.ndarray) -> np.ndarray:
        return np.full(t.shape, self.value)

    def __repr__(self) -> str:
        return f"Constant({self.value!r}, unit={self.unit!r})"


class FunctionSchedule(BaseSchedule):
    """A schedule from a plain function ``f(t) -> float``; time in ``unit`` (``"step"``).

    Examples:
        >>> FunctionSchedule(lambda t: 2 * t)(3.0)
        6.0
    """

    def __init__(self, fn: Callable[[float], float], unit: str = "step") -> None:
        if not callable(fn):
            raise ScheduleError(f"FunctionSchedule: fn must be callable, got {fn!r}.")
        super().__init__(unit)
        self.fn = fn

    def scalar(self, t: float) -> float:
        return float(self.fn(t))

    def __repr__(self) -> str:
        return f"FunctionSchedule({getattr(self.fn, '__name__', self.fn)!r}, unit={self.unit!r})"


class TimeMapped(BaseSchedule):
    """``inner((t - dt) / k)``: what :meth:`~BaseSchedule.shift` and ``stretch`` build."""

    def __init__(self, inner: BaseSchedule, dt: float, k: float) -> None:
        if not (isinstance(dt, numbers.Real) and not isinstance(dt, bool) and math.isfinite(dt)):
            raise ScheduleError(f"shift: dt must be a finite number, got {dt!r}.")
        super().__init__(inner.unit)
        self.inner: BaseSchedule = inner
        self.dt: float = float(dt)
        self.k: float = float(k)

    def children(self) -> tuple[BaseSchedule, ...]:
        return (self.inner,)

    def observe(self, metrics: Mapping[str, float], t: float) -> None:
        self.inner.observe(metrics, (t - self.dt) / self.k)

    def scalar(self, t: float) -> float:
        return self.inner.scalar((t - self.dt) / self.k)

    def array(self, t: np.ndarray) -> np.ndarray:
        return self.inner.array((t - self.dt) / self.k)

    def __repr__(self) -> str:
        shift = f".shift({self.dt!r})" if self.dt else ""
        stretch = f".stretch({self.k!r})" if self.k != 1.0 else ""
        return f"{self.inner!r}{stretch}{shift}"


class Combined(BaseSchedule):
    """Two schedules combined pointwise in value by ``op``."""

    def __init__(
        self, a: BaseSchedule, b: BaseSchedule, op: Callable[[Any, Any], Any], symbol: str
    ) -> None:
        super().__init__(a.unit)
        self.a, self.b, self.op, self.symbol = a, b, op, symbol

    def children(self) -> tuple[BaseSchedule, ...]:
        return (self.a, self.b)

    def scalar(self, t: float) -> float:
        return self.op(self.a.scalar(t), self.b.scalar(t))

    def array(self, t: np.ndarray) -> np.ndarray:
        return self.op(self.a.array(t), self.b.array(t))

    def __repr__(self) -> str:
        return f"({self.a!r} {self.symbol} {self.b!r})"


def as_schedule(value: object, owner: str = "Scheduler") -> BaseSchedule:
    """A schedule from a schedule, a plain callable ``f(t)`` (step unit) or a number.

    Examples:
        >>> as_schedule(0.1).unit, as_schedule(lambda t: t).unit
        ('step', 'step')
    """
    if isinstance(value, BaseSchedule):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return Constant(float(value))
    if callable(value):
        return FunctionSchedule(value)
    raise ScheduleError(
        f"{owner}: expected a schedule, a function of the step or a number, got "
        f"{type(value).__name__}: {value!r}."
    )
