"""Schedules: pure functions of time with a unit, composable as values.

A schedule is called with a time in its own ``unit`` (``"step"``, ``"epoch"``, ``"fraction"``
or ``"sample"``) and returns the value at that time. It knows nothing of learners or optimizers;
:class:`~fluxtrain.Scheduler` and :class:`~fluxtrain.TorchScheduler` only apply it.

Every schedule is callable on a float (returns a float) and on a numpy array (returns an array).

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
from bisect import bisect_right
from collections.abc import Callable, Mapping, Sequence
from itertools import pairwise
from typing import Any, overload

import numpy as np

from .easings import Easing, check_number, linear
from .exceptions import ScheduleError

UNITS = ("step", "epoch", "fraction", "sample")


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


SPLINES = ("cubic", "pchip", "akima")
_LINEAR = linear()


class Schedule(BaseSchedule):
    """Keyframes ``(ts[i], values[i])`` joined by easings, as an Animations.jl ``Animation``.

    Between keyframes ``i`` and ``i + 1``, with ``x = (t - ts[i]) / (ts[i + 1] - ts[i])`` and
    ``r = easing_i(x)`` (see :mod:`fluxtrain.easings`)::

        value(t) = values[i] + (values[i + 1] - values[i]) * r

    Before the first keyframe the value is ``values[0]``, from the last one on ``values[-1]``,
    and exactly at a keyframe its own value, bitwise. With a spline name as ``easing``, one scipy
    spline runs through all keyframes, clamped the same way outside them: ``"cubic"``
    (``CubicSpline``, not-a-knot ends), ``"pchip"`` (``PchipInterpolator``, no overshoot) or
    ``"akima"`` (``Akima1DInterpolator``).

    A schedule needs two keyframes or more; for a single value use :class:`Constant`. An easing
    that ends at 0 (``yoyo`` with an even ``n``) comes back to ``values[i]`` just before
    ``ts[i + 1]``; that keyframe still takes its own value.

    Args:
        ts: The keyframe times in ``unit``, strictly increasing.
        values: The keyframe values, one per time.
        easing: One easing for every segment, a sequence of ``len(ts) - 1`` easings (one per
            segment), or ``"cubic"``, ``"pchip"`` or ``"akima"``; linear() when not given.
        unit: The unit of ``ts``: ``"epoch"``, ``"step"``, ``"fraction"`` or ``"sample"``.

    Examples:
        >>> from fluxtrain.easings import sineio
        >>> s = Schedule([0, 3, 10], [0.01, 0.1, 0.001], sineio())
        >>> s(-1.0), s(3.0), s(20.0)
        (0.01, 0.1, 0.001)
        >>> s(np.array([0.0, 1.5, 3.0, 6.5]))
        array([0.01  , 0.055 , 0.1   , 0.0505])
        >>> Schedule([0, 1, 2], [0.0, 1.0, 0.0], "pchip")(0.5)
        0.75
    """

    def __init__(
        self,
        ts: Sequence[float] | np.ndarray,
        values: Sequence[float] | np.ndarray,
        easing: Easing | Sequence[Easing] | str | None = None,
        unit: str = "epoch",
    ) -> None:
        super().__init__(unit)
        self.ts: tuple[float, ...] = _numbers(ts, "ts")
        self.values: tuple[float, ...] = _numbers(values, "values")
        if len(self.ts) != len(self.values):
            raise ScheduleError(
                f"Schedule: ts and values must have the same length (one value per keyframe), "
                f"got {len(self.ts)} times and {len(self.values)} values."
            )
        if len(self.ts) < 2:
            raise ScheduleError(
                f"Schedule: needs at least 2 keyframes, got {len(self.ts)}; for one value at "
                f"all times use Constant(value, unit={unit!r})."
            )
        for i, (before, after) in enumerate(pairwise(self.ts)):
            if not after > before:
                raise ScheduleError(
                    f"Schedule: ts must be strictly increasing, got ts[{i}] = {before!r} and "
                    f"ts[{i + 1}] = {after!r}; sort the keyframes and drop duplicate times."
                )
        easing = _LINEAR if easing is None else easing
        self.easing = easing
        self._last = len(self.ts) - 1
        self._widths = [after - before for before, after in pairwise(self.ts)]
        self._deltas = [after - before for before, after in pairwise(self.values)]
        self._easings: list[Easing] = []
        self._coefficients: list[tuple[float, ...]] | None = None
        if isinstance(easing, str):
            self._coefficients = _spline_coefficients(easing, self.ts, self.values)
        else:
            self._easings = _segment_easings(easing, self._last)
        self._scalar_easings = [segment_easing.scalar for segment_easing in self._easings]

    def scalar(self, t: float) -> float:
        ts, values, last = self.ts, self.values, self._last
        if t <= ts[0]:
            return values[0]
        if t >= ts[last]:
            return values[last]
        if t != t:  # NaN
            return math.nan
        i = bisect_right(ts, t, 1, last) - 1
        start = ts[i]
        if t == start:
            return values[i]
        if self._coefficients is not None:  # scipy's PPoly sum, in its order
            c0, c1, c2, c3 = self._coefficients[i]
            s = t - start
            z = s * s
            return c3 + c2 * s + c1 * z + c0 * (z * s)
        r = self._scalar_easings[i]((t - start) / self._widths[i])
        if r == 0.0:
            return values[i]
        if r == 1.0:
            return values[i + 1]
        return self._deltas[i] * r + values[i]

    def array(self, t: np.ndarray) -> np.ndarray:
        flat = np.asarray(t, dtype=float).ravel()
        ts, values = np.array(self.ts), np.array(self.values)
        inner = np.clip(flat, ts[0], ts[-1])
        i = np.clip(np.searchsorted(ts, inner, side="right") - 1, 0, self._last - 1)
        start = ts[i]
        if self._coefficients is not None:
            c = np.array(self._coefficients)[i]
            s = inner - start
            z = s * s
            result = c[:, 3] + c[:, 2] * s + c[:, 1] * z + c[:, 0] * (z * s)
        else:
            r = self._eased_array((inner - start) / np.array(self._widths)[i], i)
            eased = np.array(self._deltas)[i] * r + values[i]
            result = np.where(r == 0.0, values[i], np.where(r == 1.0, values[i + 1], eased))
        result = np.where(inner == start, values[i], result)
        result = np.where(flat <= ts[0], values[0], np.where(flat >= ts[-1], values[-1], result))
        return np.where(np.isnan(flat), np.nan, result).reshape(np.shape(t))

    def _eased_array(self, x: np.ndarray, segment: np.ndarray) -> np.ndarray:
        if all(easing is self._easings[0] for easing in self._easings):
            return self._easings[0].array(x)
        r = np.empty_like(x)
        for i, easing in enumerate(self._easings):
            here = segment == i
            if here.any():
                r[here] = easing.array(x[here])
        return r

    def __repr__(self) -> str:
        easing = self.easing
        if isinstance(easing, Sequence) and not isinstance(easing, str):
            easing = list(easing)
        return f"Schedule({list(self.ts)!r}, {list(self.values)!r}, {easing!r}, unit={self.unit!r})"


def _numbers(values: object, name: str) -> tuple[float, ...]:
    if isinstance(values, (str, bytes)) or not isinstance(values, (Sequence, np.ndarray)):
        raise ScheduleError(
            f"Schedule: {name} must be a sequence of numbers, got {type(values).__name__}: "
            f"{values!r}."
        )
    return tuple(check_number(v, f"{name}[{i}]", "Schedule") for i, v in enumerate(values))


def _segment_easings(easing: object, count: int) -> list[Easing]:
    if _is_easing(easing):
        return [easing] * count  # type: ignore[list-item]
    if not isinstance(easing, Sequence):
        raise ScheduleError(
            f"Schedule: easing must be an easing such as sineio(), a sequence of one easing per "
            f"segment, or one of {', '.join(map(repr, SPLINES))}; got {type(easing).__name__}: "
            f"{easing!r}."
        )
    if len(easing) != count:
        raise ScheduleError(
            f"Schedule: got {len(easing)} easings for {count + 1} keyframes; give one easing per "
            f"segment (len(ts) - 1 = {count}) or a single easing for all of them."
        )
    for i, segment_easing in enumerate(easing):
        if not _is_easing(segment_easing):
            raise ScheduleError(
                f"Schedule: easing[{i}] must be an easing such as linear() or sineio(), got "
                f"{type(segment_easing).__name__}: {segment_easing!r}."
            )
    return list(easing)


def _is_easing(value: object) -> bool:
    return isinstance(value, Easing) and not isinstance(value, BaseSchedule)


def _spline_coefficients(
    kind: str, ts: tuple[float, ...], values: tuple[float, ...]
) -> list[tuple[float, ...]]:
    from scipy import interpolate

    splines = {
        "cubic": interpolate.CubicSpline,
        "pchip": interpolate.PchipInterpolator,
        "akima": interpolate.Akima1DInterpolator,
    }
    if kind not in splines:
        raise ScheduleError(
            f"Schedule: the spline easings are {', '.join(map(repr, SPLINES))}, got {kind!r}; "
            f"for an easing function pass an easing object such as sineio()."
        )
    spline = splines[kind](np.array(ts), np.array(values))
    return [tuple(column) for column in spline.c.T.tolist()]
