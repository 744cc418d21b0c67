"""Decay shapes of the schedule catalogue: closed forms in the time ``t``.

Every shape here is a pure :class:`~fluxtrain.schedules.base.BaseSchedule`: ``t`` counts completed
steps (``unit="step"``, the default, as in the libraries these shapes come from) or epochs, a
time before 0 gives the value at 0, and a shape with a length holds its last value after it.

Examples:
    >>> from fluxtrain.schedules import cosine
    >>> s = cosine(1.0, 0.0, 10)
    >>> s(0), s(5), s(10), s(100)
    (1.0, 0.5, 0.0, 0.0)
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from ..exceptions import ScheduleError
from .base import BaseSchedule, Constant


def check_number(
    owner: str, name: str, value: object, minimum: float | None = None, strict: bool = False
) -> float:
    """Returns ``value`` as a float if it is a finite real number (``>= minimum``, or ``>`` with
    ``strict``), else raises a ``ScheduleError`` that names the argument and what was received.

    Examples:
        >>> check_number("linear", "length", 10, minimum=0, strict=True)
        10.0
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ScheduleError(f"{owner}: {name} must be a finite number, got {value!r}.")
    number = float(value)
    if not math.isfinite(number):
        raise ScheduleError(f"{owner}: {name} must be a finite number, got {value!r}.")
    if minimum is not None and (number < minimum or (strict and number == minimum)):
        relation = ">" if strict else ">="
        raise ScheduleError(f"{owner}: {name} must be {relation} {minimum:g}, got {value!r}.")
    return number


class Shape(BaseSchedule):
    """A catalogue schedule; its ``repr`` is the call that builds it."""

    name = "shape"

    def __init__(self, unit: str, **arguments: object) -> None:
        super().__init__(unit)
        self.arguments = arguments

    def __repr__(self) -> str:
        shown = [f"{key}={value!r}" for key, value in self.arguments.items()]
        return f"{self.name}({', '.join([*shown, f'unit={self.unit!r}'])})"


def constant(value: float, unit: str = "step") -> BaseSchedule:
    """The same value at every time: ``s(t) = value``.

    Examples:
        >>> from fluxtrain.schedules import constant
        >>> constant(0.1)(1000)
        0.1
    """
    return Constant(check_number("constant", "value", value), unit)


class _Span(Shape):
    """A shape that goes from ``start`` to ``end`` over ``length``, then holds ``end``."""

    def __init__(self, start: float, end: float, length: float, unit: str) -> None:
        super().__init__(unit, start=start, end=end, length=length)
        self.start, self.end, self.length = start, end, length

    @classmethod
    def checked(cls, start: float, end: float, length: float, unit: str) -> BaseSchedule:
        """The shape, once ``start`` and ``end`` are finite and ``length > 0``; errors name the
        function that builds it (``cls.name``)."""
        return cls(
            check_number(cls.name, "start", start),
            check_number(cls.name, "end", end),
            check_number(cls.name, "length", length, 0, strict=True),
            unit,
        )


class _Linear(_Span):
    name = "linear"

    def scalar(self, t: float) -> float:
        x = min(max(t, 0.0), self.length) / self.length
        return self.start * (1.0 - x) + self.end * x

    def array(self, t: np.ndarray) -> np.ndarray:
        x = np.clip(t, 0.0, self.length) / self.length
        return self.start * (1.0 - x) + self.end * x


def linear(start: float, end: float, length: float, unit: str = "step") -> BaseSchedule:
    """A straight line from ``start`` to ``end`` over ``length``, then ``end``.

    ``s(t) = start + (end - start) * min(t, length) / length``. torch ``LinearLR(opt,
    start_factor, end_factor, total_iters)`` is ``linear(lr * start_factor, lr * end_factor,
    total_iters)``.

    Examples:
        >>> from fluxtrain.schedules import linear
        >>> s = linear(0.0, 1.0, 4)
        >>> s(1), s(4), s(9)
        (0.25, 1.0, 1.0)
    """
    return _Linear.checked(start, end, length, unit)


class _Exponential(Shape):
    name = "exponential"

    def __init__(
        self, start: float, gamma: float, period: float, staircase: bool, unit: str
    ) -> None:
        super().__init__(unit, start=start, gamma=gamma, period=period, staircase=staircase)
        self.start, self.gamma, self.period, self.staircase = start, gamma, period, staircase

    def scalar(self, t: float) -> float:
        k = max(t, 0.0) / self.period
        return self.start * self.gamma ** (math.floor(k) if self.staircase else k)

    def array(self, t: np.ndarray) -> np.ndarray:
        k = np.maximum(t, 0.0) / self.period
        return self.start * np.power(self.gamma, np.floor(k) if self.staircase else k)


def exponential(
    start: float, gamma: float, period: float = 1, staircase: bool = False, unit: str = "step"
) -> BaseSchedule:
    """Multiplies by ``gamma`` every ``period``: ``s(t) = start * gamma ** (t / period)``.

    With ``staircase=True`` the exponent is ``floor(t / period)``. torch ``ExponentialLR(opt,
    gamma)`` is ``exponential(lr, gamma)``; Keras ``ExponentialDecay(lr, decay_steps, rate,
    staircase)`` is ``exponential(lr, rate, decay_steps, staircase)``.

    Examples:
        >>> from fluxtrain.schedules import exponential
        >>> exponential(1.0, 0.5)(2), exponential(1.0, 0.5, period=2, staircase=True)(3)
        (0.25, 0.5)
    """
    owner = "exponential"
    if not isinstance(staircase, bool):
        raise ScheduleError(f"{owner}: staircase must be True or False, got {staircase!r}.")
    return _Exponential(
        check_number(owner, "start", start),
        check_number(owner, "gamma", gamma, 0, strict=True),
        check_number(owner, "period", period, 0, strict=True),
        staircase,
        unit,
    )


class _Poly(Shape):
    name = "poly"

    def __init__(self, start: float, length: float, power: float, final: float, unit: str) -> None:
        super().__init__(unit, start=start, length=length, power=power, final=final)
        self.start, self.length, self.power, self.final = start, length, power, final

    def scalar(self, t: float) -> float:
        w = (1.0 - min(max(t, 0.0), self.length) / self.length) ** self.power
        return self.start * w + self.final * (1.0 - w)

    def array(self, t: np.ndarray) -> np.ndarray:
        w = np.power(1.0 - np.clip(t, 0.0, self.length) / self.length, self.power)
        return self.start * w + self.final * (1.0 - w)


def poly(
    start: float, length: float, power: float = 1, final: float = 0, unit: str = "step"
) -> BaseSchedule:
    """Polynomial decay: ``s(t) = final + (start - final) * (1 - t / length) ** power`` for
    ``t <= length``, and ``final`` after.

    torch ``PolynomialLR(opt, total_iters, power)`` is ``poly(lr, total_iters, power)``; MXNet
    ``PolyScheduler(max_update, lr, pwr, final_lr)`` gives ``poly(lr, max_update, pwr,
    final_lr)(n)`` at update ``n``, so the value it applies on the update after ``t`` completed
    ones is ``poly(...).shift(-1)(t)``.

    Examples:
        >>> from fluxtrain.schedules import poly
        >>> s = poly(1.0, 10, power=2, final=0.1)
        >>> s(0), s(5), s(10), s(20)
        (1.0, 0.325, 0.1, 0.1)
    """
    owner = "poly"
    return _Poly(
        check_number(owner, "start", start),
        check_number(owner, "length", length, 0, strict=True),
        check_number(owner, "power", power, 0, strict=True),
        check_number(owner, "final", final),
        unit,
    )


class _Cosine(_Span):
    name = "cosine"

    def scalar(self, t: float) -> float:
        w = 0.5 * (1.0 + math.cos(math.pi * (min(max(t, 0.0), self.length) / self.length)))
        return self.start * w + self.end * (1.0 - w)

    def array(self, t: np.ndarray) -> np.ndarray:
        w = 0.5 * (1.0 + np.cos(np.pi * (np.clip(t, 0.0, self.length) / self.length)))
        return self.start * w + self.end * (1.0 - w)


def cosine(start: float, end: float, length: float, unit: str = "step") -> BaseSchedule:
    """Half a cosine from ``start`` to ``end`` over ``length``, then ``end``.

    ``s(t) = end + (start - end) * (1 + cos(pi * min(t, length) / length)) / 2``. torch
    ``CosineAnnealingLR(opt, T_max, eta_min)`` within its first period is ``cosine(lr, eta_min,
    T_max)`` (torch rises again after ``T_max``; this holds); optax ``cosine_decay_schedule(lr,
    steps, alpha)`` is ``cosine(lr, lr * alpha, steps)``.

    Examples:
        >>> from fluxtrain.schedules import cosine
        >>> cosine(1.0, 0.0, 4)(2)
        0.5
    """
    return _Cosine.checked(start, end, length, unit)


def range_test(start: float, end: float, length: float, unit: str = "step") -> BaseSchedule:
    """An exponential sweep for a learning-rate range test, then ``end``.

    ``s(t) = start * (end / start) ** (min(t, length) / length)`` (fastai's ``lr_find`` sweep,
    with ``start``, ``end`` > 0).

    Examples:
        >>> from fluxtrain.schedules import range_test
        >>> s = range_test(1e-4, 1.0, 4)
        >>> round(s(2), 12), s(4)
        (0.01, 1.0)
    """
    owner = "range_test"
    start = check_number(owner, "start", start, 0, strict=True)
    end = check_number(owner, "end", end, 0, strict=True)
    length = check_number(owner, "length", length, 0, strict=True)
    return _RangeTest(start, end, length, unit)


class _RangeTest(_Span):
    name = "range_test"

    def __init__(self, start: float, end: float, length: float, unit: str) -> None:
        super().__init__(start, end, length, unit)
        self.ratio = end / start

    def scalar(self, t: float) -> float:
        return self.start * self.ratio ** (min(max(t, 0.0), self.length) / self.length)

    def array(self, t: np.ndarray) -> np.ndarray:
        return self.start * np.power(self.ratio, np.clip(t, 0.0, self.length) / self.length)
