"""Cyclic schedules: triangles, any one-cycle shape repeated with decays, SGDR, plain loops.

These are the only catalogue schedules that rise again after falling. A cycle starts at the
time its predecessor ends (``t`` equal to the boundary is the start of the new cycle), and time
before 0 gives the value at 0.

Examples:
    >>> from fluxtrain.schedules import triangular
    >>> s = triangular(0.0, 1.0, 4)
    >>> [s(t) for t in range(9)]
    [0.0, 0.5, 1.0, 0.5, 0.0, 0.5, 1.0, 0.5, 0.0]
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from ..exceptions import ScheduleError
from .base import BaseSchedule
from .decays import Shape, check_number, cosine


class _Triangular(Shape):
    name = "triangular"

    def __init__(self, low: float, high: float, length: float, rise: float, unit: str) -> None:
        super().__init__(
            unit, min_value=low, max_value=high, cycle_length=length, inc_fraction=rise
        )
        self.low, self.height, self.length = low, high - low, length
        self.up = rise * length
        self.down = (length - self.up) or 1.0  # unused when the cycle only rises

    def scalar(self, t: float) -> float:
        tau = max(t, 0.0) % self.length
        u = tau / self.up if tau <= self.up else (self.length - tau) / self.down
        return self.low + self.height * u

    def array(self, t: np.ndarray) -> np.ndarray:
        tau = np.mod(np.maximum(t, 0.0), self.length)
        u = np.where(tau <= self.up, tau / self.up, (self.length - tau) / self.down)
        return self.low + self.height * u


def triangular(
    min_value: float,
    max_value: float,
    cycle_length: float,
    inc_fraction: float = 0.5,
    unit: str = "step",
) -> BaseSchedule:
    """A triangle wave: up from ``min_value`` to ``max_value`` and back, every ``cycle_length``.

    With ``tau = t mod cycle_length``, ``up = inc_fraction * cycle_length`` and ``u = tau / up``
    while rising (``tau <= up``), else ``(cycle_length - tau) / (cycle_length - up)``:
    ``s(t) = min_value + (max_value - min_value) * u``. ``inc_fraction != 0.5`` gives the
    slanted triangle; ``max_value < min_value`` inverts it (momentum cycling). One cycle is
    MXNet's ``TriangularSchedule``; torch ``CyclicLR(opt, base, max, up, down)`` is
    ``triangular(base, max, up + down, up / (up + down))``.

    Examples:
        >>> from fluxtrain.schedules import triangular
        >>> s = triangular(1.0, 2.0, 10, inc_fraction=0.2)
        >>> s(0), s(2), s(6), s(10)
        (1.0, 2.0, 1.5, 1.0)
    """
    owner = "triangular"
    rise = check_number(owner, "inc_fraction", inc_fraction, 0, strict=True)
    if rise > 1.0:
        raise ScheduleError(
            f"{owner}: inc_fraction is the rising fraction of a cycle and must be in (0, 1], "
            f"got {inc_fraction!r}."
        )
    return _Triangular(
        check_number(owner, "min_value", min_value),
        check_number(owner, "max_value", max_value),
        check_number(owner, "cycle_length", cycle_length, 0, strict=True),
        rise,
        unit,
    )


def _reject_metric_driven(schedule: BaseSchedule, owner: str) -> None:
    if schedule.state_dict():
        raise ScheduleError(
            f"{owner}: cannot repeat a metric-driven schedule ({schedule!r}); its value depends on "
            "the metrics seen, not on the time. Repeat a pure shape, or use join."
        )


class _Cyclical(BaseSchedule):
    def __init__(
        self,
        make_cycle: Callable[[float], BaseSchedule],
        length: float,
        length_decay: float,
        magnitude_decay: float,
    ) -> None:
        first = self._make(make_cycle, length)
        super().__init__(first.unit)
        self.make_cycle, self.length = make_cycle, length
        self.length_decay, self.magnitude_decay = length_decay, magnitude_decay
        self.cycles: dict[float, BaseSchedule] = {length: first}

    @staticmethod
    def _make(make_cycle: Callable[[float], BaseSchedule], length: float) -> BaseSchedule:
        cycle = make_cycle(length)
        if not isinstance(cycle, BaseSchedule):
            raise ScheduleError(
                f"cyclical: make_cycle({length!r}) must return a schedule, got "
                f"{type(cycle).__name__}: {cycle!r}; e.g. lambda n: triangular(0.5, 2, n)."
            )
        _reject_metric_driven(cycle, "cyclical")
        return cycle

    def _cycle(self, length: float) -> BaseSchedule:
        if length not in self.cycles:
            cycle = self._make(self.make_cycle, length)
            if cycle.unit != self.unit:
                raise ScheduleError(
                    f"cyclical: make_cycle returned unit {cycle.unit!r} for length {length!r} but "
                    f"{self.unit!r} before; return schedules in one unit."
                )
            self.cycles[length] = cycle
        return self.cycles[length]

    def _locate(self, t: np.ndarray) -> np.ndarray:
        """The index of the cycle that each ``t`` (>= 0) falls in."""
        d = self.length_decay
        if d == 1.0:
            return np.floor(t / self.length)
        k = np.floor(np.log1p(t * (d - 1.0) / self.length) / math.log(d))
        k = np.where(self._starts(k) > t, k - 1.0, k)  # guard against rounding in the log
        return np.where(self._starts(k + 1.0) <= t, k + 1.0, k)

    def _starts(self, k: np.ndarray) -> np.ndarray:
        d = self.length_decay
        if d == 1.0:
            return k * self.length
        return self.length * (np.power(d, k) - 1.0) / (d - 1.0)

    def _start(self, k: float) -> float:
        d = self.length_decay
        return k * self.length if d == 1.0 else self.length * (d**k - 1.0) / (d - 1.0)

    def scalar(self, t: float) -> float:
        t, d = max(t, 0.0), self.length_decay
        if d == 1.0:
            k = float(math.floor(t / self.length))
        else:
            k = float(math.floor(math.log1p(t * (d - 1.0) / self.length) / math.log(d)))
            k = k - 1.0 if self._start(k) > t else k
            k = k + 1.0 if self._start(k + 1.0) <= t else k
        cycle = self._cycle(self.length * d**k)
        return cycle.scalar(t - self._start(k)) * self.magnitude_decay**k

    def array(self, t: np.ndarray) -> np.ndarray:
        t = np.maximum(t, 0.0)
        k = self._locate(t)
        offset = t - self._starts(k)
        out = np.empty(t.shape)
        for index in np.unique(k):
            mask = k == index
            cycle = self._cycle(float(self.length * self.length_decay**index))
            out[mask] = cycle.array(offset[mask]) * self.magnitude_decay**index
        return out

    def __repr__(self) -> str:
        return (
            f"cyclical({self.cycles[self.length]!r}, cycle_length={self.length!r}, length_decay="
            f"{self.length_decay!r}, magnitude_decay={self.magnitude_decay!r})"
        )


def cyclical(
    make_cycle: Callable[[float], BaseSchedule],
    cycle_length: float,
    length_decay: float = 1,
    magnitude_decay: float = 1,
) -> BaseSchedule:
    """Repeats a one-cycle shape, each cycle ``length_decay`` times longer and scaled by
    ``magnitude_decay``, as MXNet's ``CyclicalSchedule``.

    Cycle ``k`` (from 0) lasts ``L_k = cycle_length * length_decay ** k`` and starts at
    ``S_k = L_0 + ... + L_{k-1}``; within it ``s(t) = magnitude_decay ** k *
    make_cycle(L_k)(t - S_k)``. ``make_cycle(n)`` returns a schedule for one cycle of length
    ``n`` starting at time 0; the result takes its unit. The magnitude decay scales the whole
    value (a floor too): to shrink only the swing above a base use ``base + cyclical(...)``, as
    torch ``CyclicLR(mode="triangular2")`` does (see ``docs/coming_from.md``). MXNet rounds each
    new cycle length up to a whole number of iterations; here lengths are exact (the same for
    whole-number lengths and factors).

    Examples:
        >>> from fluxtrain.schedules import cyclical, triangular
        >>> s = cyclical(lambda n: triangular(0.0, 1.0, n), 2, length_decay=2, magnitude_decay=0.5)
        >>> [s(t) for t in range(6)]
        [0.0, 1.0, 0.0, 0.25, 0.5, 0.25]
    """
    owner = "cyclical"
    if not callable(make_cycle):
        raise ScheduleError(
            f"{owner}: make_cycle must be a function from a cycle length to a schedule, got "
            f"{make_cycle!r}; e.g. lambda n: triangular(0.5, 2, n)."
        )
    length = check_number(owner, "cycle_length", cycle_length, 0, strict=True)
    growth = check_number(owner, "length_decay", length_decay, 1)
    magnitude = check_number(owner, "magnitude_decay", magnitude_decay, 0, strict=True)
    return _Cyclical(make_cycle, length, growth, magnitude)


def sgdr(
    start: float,
    end: float,
    cycle_length: float,
    length_multiplier: float = 1,
    magnitude_decay: float = 1,
    unit: str = "step",
) -> BaseSchedule:
    """Cosine annealing with warm restarts: ``cyclical`` of ``cosine(start, end, n)``.

    In cycle ``k`` of length ``L_k = cycle_length * length_multiplier ** k``, at ``tau`` into it:
    ``s = magnitude_decay ** k * (end + (start - end) * (1 + cos(pi * tau / L_k)) / 2)``. torch
    ``CosineAnnealingWarmRestarts(opt, T_0, T_mult, eta_min)`` is ``sgdr(lr, eta_min, T_0,
    T_mult)``.

    Examples:
        >>> from fluxtrain.schedules import sgdr
        >>> s = sgdr(1.0, 0.0, 2, length_multiplier=2)
        >>> [s(t) for t in range(7)]
        [1.0, 0.5, 1.0, 0.8535533905932737, 0.5, 0.14644660940672627, 1.0]
    """
    check_number("sgdr", "start", start)
    check_number("sgdr", "end", end)
    return cyclical(
        lambda n: cosine(start, end, n, unit), cycle_length, length_multiplier, magnitude_decay
    )


class _Loop(BaseSchedule):
    def __init__(self, inner: BaseSchedule, period: float) -> None:
        super().__init__(inner.unit)
        self.inner, self.period = inner, period

    def children(self) -> tuple[BaseSchedule, ...]:
        return (self.inner,)

    def scalar(self, t: float) -> float:
        return self.inner.scalar(max(t, 0.0) % self.period)

    def array(self, t: np.ndarray) -> np.ndarray:
        return self.inner.array(np.mod(np.maximum(t, 0.0), self.period))

    def __repr__(self) -> str:
        return f"loop({self.inner!r}, {self.period!r})"


def loop(schedule: BaseSchedule, period: float) -> BaseSchedule:
    """Repeats the first ``period`` of ``schedule``: ``s(t) = schedule(t mod period)``.

    Examples:
        >>> from fluxtrain.schedules import linear, loop
        >>> s = loop(linear(0.0, 1.0, 4), 4)
        >>> [s(t) for t in range(6)]
        [0.0, 0.25, 0.5, 0.75, 0.0, 0.25]
    """
    if not isinstance(schedule, BaseSchedule):
        raise ScheduleError(f"loop: schedule must be a schedule, got {schedule!r}.")
    _reject_metric_driven(schedule, "loop")
    return _Loop(schedule, check_number("loop", "period", period, 0, strict=True))
