"""Modifiers: a warmup before a schedule, a cooldown after a time, and pieces joined in time.

They take the unit of the schedules they wrap, and their lengths are in that unit. They pass
``observe`` on to the piece active at the time observed, in that piece's own time, so a
metric-driven schedule can follow a warmup; observations made before a piece starts never reach
it.

Examples:
    >>> from fluxtrain.schedules import cosine, warmup
    >>> s = warmup(cosine(1.0, 0.0, 10), start_value=0.1, length=3)
    >>> [round(s(t), 6) for t in (0, 1, 3, 8, 13, 20)]
    [0.1, 0.4, 1.0, 0.5, 0.0, 0.0]
"""

from __future__ import annotations

import bisect
import math
import numbers
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from ..easings import linear as linear_easing
from ..easings.curve import Easing
from ..exceptions import ScheduleError
from .base import BaseSchedule, Constant
from .decays import check_number
from .plateau import ReduceOnPlateau


def _easing(easing: object, owner: str) -> Easing:
    if easing is None:
        return linear_easing()
    if not isinstance(easing, Easing):
        raise ScheduleError(
            f"{owner}: easing must be an easing from fluxtrain.easings (with .scalar and .array), "
            f"or None for a straight line; got {easing!r}."
        )
    return easing


def _schedule(value: object, owner: str) -> BaseSchedule:
    if not isinstance(value, BaseSchedule):
        raise ScheduleError(f"{owner}: expected a schedule, got {type(value).__name__}: {value!r}.")
    return value


def _pieces(
    t: np.ndarray, index: np.ndarray, fns: Sequence[Callable[[np.ndarray], Any]]
) -> np.ndarray:
    """Evaluates ``fns[i]`` only where ``index == i``."""
    out = np.empty(t.shape)
    for i, fn in enumerate(fns):
        mask = index == i
        if mask.any():
            out[mask] = fn(t[mask])
    return out


class _Warmup(BaseSchedule):
    def __init__(self, inner: BaseSchedule, begin: float, length: float, easing: Easing) -> None:
        super().__init__(inner.unit)
        self.inner, self.begin, self.length, self.easing = inner, begin, length, easing
        self.target = inner.scalar(0.0)

    def children(self) -> tuple[BaseSchedule, ...]:
        return (self.inner,)

    def scalar(self, t: float) -> float:
        if t >= self.length:
            return self.inner.scalar(t - self.length)
        x = max(t, 0.0) / self.length
        return self.begin + (self.target - self.begin) * self.easing.scalar(x)

    def array(self, t: np.ndarray) -> np.ndarray:
        def ramp(t: np.ndarray) -> np.ndarray:
            x = np.maximum(t, 0.0) / self.length
            return self.begin + (self.target - self.begin) * self.easing.array(x)

        def after(t: np.ndarray) -> np.ndarray:
            return self.inner.array(t - self.length)

        return _pieces(t, (t >= self.length).astype(int), [ramp, after])

    def observe(self, metrics: Mapping[str, float], t: float) -> None:
        if t >= self.length:
            self.inner.observe(metrics, t - self.length)

    def __repr__(self) -> str:
        return f"warmup({self.inner!r}, {self.begin!r}, {self.length!r}, {self.easing!r})"


def warmup(
    schedule: BaseSchedule, start_value: float, length: float, easing: Easing | None = None
) -> BaseSchedule:
    """Prepends a warmup from ``start_value`` to ``schedule(0)`` and delays ``schedule`` by
    ``length``, as MXNet's ``LinearWarmUp``.

    ``s(t) = start_value + (schedule(0) - start_value) * e(t / length)`` for ``t < length``, and
    ``schedule(t - length)`` after, with ``e`` the easing (a straight line by default; any easing
    of :mod:`fluxtrain.easings`, e.g. ``sineio()``). ``schedule(0)`` is read once, here. The
    lengths of ``schedule`` count from the end of the warmup: its decay horizon does not include
    the warmup. The first step gets ``start_value``: pass a non-zero one unless a zero
    value on the first step is what you want.

    Examples:
        >>> from fluxtrain.schedules import constant, warmup
        >>> s = warmup(constant(1.0), start_value=0.25, length=3)
        >>> [s(t) for t in range(5)]
        [0.25, 0.5, 0.75, 1.0, 1.0]
    """
    owner = "warmup"
    inner = _schedule(schedule, owner)
    begin = check_number(owner, "start_value", start_value)
    length = check_number(owner, "length", length, 0, strict=True)
    return _Warmup(inner, begin, length, _easing(easing, owner))


class _Cooldown(BaseSchedule):
    def __init__(
        self, inner: BaseSchedule, final: float, start: float, length: float, easing: Easing
    ) -> None:
        super().__init__(inner.unit)
        self.inner, self.final, self.start, self.length = inner, final, start, length
        self.easing = easing

    def children(self) -> tuple[BaseSchedule, ...]:
        return (self.inner,)

    def scalar(self, t: float) -> float:
        if t <= self.start:
            return self.inner.scalar(t)
        begin = self.inner.scalar(self.start)
        x = min((t - self.start) / self.length, 1.0)
        return begin + (self.final - begin) * self.easing.scalar(x)

    def array(self, t: np.ndarray) -> np.ndarray:
        def ramp(t: np.ndarray) -> np.ndarray:
            begin = self.inner.scalar(self.start)
            x = np.minimum((t - self.start) / self.length, 1.0)
            return begin + (self.final - begin) * self.easing.array(x)

        return _pieces(t, (t > self.start).astype(int), [self.inner.array, ramp])

    def observe(self, metrics: Mapping[str, float], t: float) -> None:
        if t <= self.start:
            self.inner.observe(metrics, t)

    def __repr__(self) -> str:
        parts = f"{self.final!r}, {self.start!r}, {self.length!r}, {self.easing!r}"
        return f"cooldown({self.inner!r}, {parts})"


def cooldown(
    schedule: BaseSchedule,
    final_value: float,
    start: float,
    length: float,
    easing: Easing | None = None,
) -> BaseSchedule:
    """Follows ``schedule`` up to ``start``, then moves to ``final_value`` over ``length`` and
    holds it, as MXNet's ``LinearCoolDown``.

    ``s(t) = schedule(t)`` for ``t <= start``, then ``b + (final_value - b) * e(min((t - start) /
    length, 1))`` with ``b = schedule(start)`` and ``e`` the easing (a straight line by default).

    Examples:
        >>> from fluxtrain.schedules import constant, cooldown
        >>> s = cooldown(constant(1.0), final_value=0.0, start=2, length=4)
        >>> [s(t) for t in range(0, 9, 2)]
        [1.0, 1.0, 0.5, 0.0, 0.0]
    """
    owner = "cooldown"
    inner = _schedule(schedule, owner)
    final = check_number(owner, "final_value", final_value)
    begin = check_number(owner, "start", start, 0)
    length = check_number(owner, "length", length, 0, strict=True)
    return _Cooldown(inner, final, begin, length, _easing(easing, owner))


def _constant(value: object, unit: str) -> BaseSchedule:
    if isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value):
        return Constant(float(value), unit)
    raise ScheduleError(f"join: each piece must be a schedule or a number, got {value!r}.")


class _Join(BaseSchedule):
    def __init__(self, pieces: list[BaseSchedule], boundaries: list[float]) -> None:
        super().__init__(pieces[0].unit)
        self.pieces, self.boundaries = pieces, boundaries
        self.starts = [0.0, *boundaries]

    def children(self) -> tuple[BaseSchedule, ...]:
        return tuple(self.pieces)

    def _index(self, t: float) -> int:
        return bisect.bisect_right(self.boundaries, t)

    def scalar(self, t: float) -> float:
        i = self._index(t)
        return self.pieces[i].scalar(t - self.starts[i])

    def array(self, t: np.ndarray) -> np.ndarray:
        index = np.searchsorted(self.boundaries, t, side="right")
        fns = [lambda t, p=p, s=s: p.array(t - s) for p, s in zip(self.pieces, self.starts)]
        return _pieces(t, index, fns)

    def observe(self, metrics: Mapping[str, float], t: float) -> None:
        i = self._index(t)
        self.pieces[i].observe(metrics, t - self.starts[i])

    def __repr__(self) -> str:
        return f"join({self.pieces!r}, {self.boundaries!r})"


def join(schedules: Sequence[BaseSchedule | float], boundaries: Sequence[float]) -> BaseSchedule:
    """Schedules one after another, each seeing time from its own start, as optax
    ``join_schedules``.

    With ``b_0 = 0`` and ``b_i`` the boundaries: ``s(t) = schedules[i](t - b_i)`` for ``b_i <= t
    < b_{i+1}`` (a boundary itself belongs to the later piece). A number is a constant piece. A
    ``reduce_on_plateau(start=None)`` piece starts from the value its predecessor reaches at the
    boundary.

    Examples:
        >>> from fluxtrain.schedules import constant, join, linear
        >>> s = join([linear(0.0, 1.0, 2), constant(1.0), linear(1.0, 0.5, 2)], [2, 4])
        >>> [s(t) for t in range(7)]
        [0.0, 0.5, 1.0, 1.0, 1.0, 0.75, 0.5]
    """
    owner = "join"
    if isinstance(schedules, (str, bytes)) or not isinstance(schedules, Sequence) or not schedules:
        raise ScheduleError(f"{owner}: schedules must be a non-empty list, got {schedules!r}.")
    if isinstance(boundaries, (str, bytes)) or not isinstance(boundaries, Sequence):
        raise ScheduleError(f"{owner}: boundaries must be a list of times, got {boundaries!r}.")
    if len(boundaries) != len(schedules) - 1:
        raise ScheduleError(
            f"{owner}: {len(schedules)} schedules need {len(schedules) - 1} boundaries (one "
            f"between each pair), got {len(boundaries)}: {list(boundaries)!r}."
        )
    points = [check_number(owner, "each boundary", b, 0, strict=True) for b in boundaries]
    if any(b <= a for a, b in zip(points, points[1:])):
        raise ScheduleError(f"{owner}: boundaries must increase strictly, got {points!r}.")
    units = {s.unit for s in schedules if isinstance(s, BaseSchedule)} or {"step"}
    if len(units) > 1:
        raise ScheduleError(
            f"{owner}: all pieces must share one unit, got {sorted(units)}; build them in one unit."
        )
    unit = units.pop()
    pieces = [s if isinstance(s, BaseSchedule) else _constant(s, unit) for s in schedules]
    starts = [0.0, *points]
    for i, piece in enumerate(pieces[1:], start=1):
        if isinstance(piece, ReduceOnPlateau):
            piece.continue_from(pieces[i - 1].scalar(points[i - 1] - starts[i - 1]))
    return _Join(pieces, points)
