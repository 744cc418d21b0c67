"""Keyframe schedules: values at keyframe times, joined by easings or one spline.

:class:`Schedule` is the Animations.jl ``Animation`` of fluxtrain: the value is given at a few
times and eased between them (see :mod:`fluxtrain.easings`); before the first keyframe and
after the last it holds the nearest keyframe's value. Like every schedule it is a pure function
of time in its ``unit`` (see :mod:`fluxtrain.schedules.base`).

Examples:
    >>> from fluxtrain.easings import linear, sineio
    >>> warm_then_decay = Schedule([0, 1, 10], [0.0, 0.1, 0.001], [linear(), sineio()])
    >>> warm_then_decay(0.5), warm_then_decay(1.0), warm_then_decay(12.0)
    (0.05, 0.1, 0.001)
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Sequence
from itertools import pairwise

import numpy as np

from ..easings import linear
from ..easings.curve import Easing, check_number
from ..exceptions import ScheduleError
from .base import BaseSchedule

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
