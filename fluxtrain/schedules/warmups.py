"""Shapes with a built-in warmup: the transformer inverse square root and warmup-stable-decay.

Both start above zero on the first step (``t = 0``) unless asked otherwise, and hold their last
value after their end.

Examples:
    >>> from fluxtrain.schedules import warmup_stable_decay
    >>> s = warmup_stable_decay(1.0, warmup=3, stable=2, decay=4)
    >>> [s(t) for t in (0, 2, 3, 5, 7, 9, 20)]
    [0.25, 0.75, 1.0, 1.0, 0.5, 0.0, 0.0]
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TypeVar

import numpy as np

from ..exceptions import ScheduleError
from .base import BaseSchedule
from .decays import Shape, check_number


class _InverseSqrt(Shape):
    name = "inverse_sqrt"

    def __init__(self, start: float, warmup: float, unit: str) -> None:
        super().__init__(unit, start=start, warmup=warmup)
        self.start, self.warmup = start, warmup

    def scalar(self, t: float) -> float:
        n = max(t, 0.0) + 1.0
        return self.start * min(n / self.warmup, math.sqrt(self.warmup / n))

    def array(self, t: np.ndarray) -> np.ndarray:
        n = np.maximum(t, 0.0) + 1.0
        return self.start * np.minimum(n / self.warmup, np.sqrt(self.warmup / n))


def inverse_sqrt(start: float, warmup: float, unit: str = "step") -> BaseSchedule:
    """The transformer schedule: a linear warmup to ``start``, then decay as ``1 / sqrt(t)``.

    ``s(t) = start * min((t + 1) / warmup, sqrt(warmup / (t + 1)))``: it rises linearly to its
    peak ``start`` at ``t = warmup - 1`` and falls off as the inverse square root after. With
    ``start = d_model ** -0.5 * warmup ** -0.5`` this is the ``lrate`` of "Attention Is All You
    Need" at ``step_num = t + 1`` (its steps count from 1, so the first step is not 0); HF
    ``get_inverse_sqrt_schedule(opt, warmup)`` gives this value one step later (and 0 at its
    step 0).

    Examples:
        >>> from fluxtrain.schedules import inverse_sqrt
        >>> s = inverse_sqrt(1.0, warmup=4)
        >>> s(0), s(3), s(15)
        (0.25, 1.0, 0.5)
    """
    owner = "inverse_sqrt"
    return _InverseSqrt(
        check_number(owner, "start", start),
        check_number(owner, "warmup", warmup, 0, strict=True),
        unit,
    )


_DECAY_SHAPES = ("linear", "cosine", "1-sqrt")
_X = TypeVar("_X", float, np.ndarray)


class _WarmupStableDecay(Shape):
    name = "warmup_stable_decay"

    def __init__(self, unit: str, **arguments: float | str) -> None:
        super().__init__(unit, **arguments)
        self.peak, self.final = float(arguments["peak"]), float(arguments["final"])
        self.begin = float(arguments["warmup_start"])
        self.warmup, self.stable = float(arguments["warmup"]), float(arguments["stable"])
        self.decay, self.shape = float(arguments["decay"]), str(arguments["decay_shape"])
        self.decay_begin = self.warmup + self.stable
        self.end = self.decay_begin + self.decay

    def _left(self, x: _X, cos: Callable[[_X], _X], sqrt: Callable[[_X], _X]) -> _X:
        """``f(x)``, the part of ``peak - final`` left after ``x`` of the decay, with ``cos`` and
        ``sqrt`` from ``math`` for a float ``x`` or from numpy for an array."""
        if self.shape == "linear":
            return 1.0 - x
        if self.shape == "cosine":
            return 0.5 * (1.0 + cos(math.pi * x))
        return 1.0 - sqrt(x)

    def scalar(self, t: float) -> float:
        t = max(t, 0.0)
        if t < self.warmup:
            return self.begin + (self.peak - self.begin) * (t / self.warmup)
        if t < self.decay_begin:
            return self.peak
        if t >= self.end:
            return self.final
        left = self._left((t - self.decay_begin) / self.decay, math.cos, math.sqrt)
        return self.final + (self.peak - self.final) * left

    def array(self, t: np.ndarray) -> np.ndarray:
        t = np.maximum(t, 0.0)
        x = np.clip((t - self.decay_begin) / (self.decay or 1.0), 0.0, 1.0)
        left = self._left(x, np.cos, np.sqrt)
        up = self.begin + (self.peak - self.begin) * (t / (self.warmup or 1.0))
        down = self.final + (self.peak - self.final) * left
        phases = [t < self.warmup, t < self.decay_begin, t < self.end]
        return np.select(phases, [up, self.peak, down], self.final)


def warmup_stable_decay(
    peak: float,
    warmup: float,
    stable: float,
    decay: float,
    final: float = 0,
    *,
    warmup_start: float | None = None,
    decay_shape: str = "linear",
    unit: str = "step",
) -> BaseSchedule:
    """Warmup-stable-decay ("trapezoid"): up to ``peak``, hold, decay to ``final``, hold.

    The phases follow each other: ``[0, warmup)`` rises linearly from ``warmup_start`` to
    ``peak``, ``[warmup, warmup + stable)`` holds ``peak``, the next ``decay`` falls to ``final``
    with ``x`` the fraction of the decay done and ``s = final + (peak - final) * f(x)``, where
    ``f(x)`` is ``1 - x`` (``"linear"``), ``(1 + cos(pi x)) / 2`` (``"cosine"``) or
    ``1 - sqrt(x)`` (``"1-sqrt"``); ``final`` holds after. By default ``warmup_start`` is
    ``peak / (warmup + 1)``, which makes the warmup ``s(t) = peak * (t + 1) / (warmup + 1)`` (no
    zero on the first step). HF ``get_wsd_schedule`` warms up from ``min_lr_ratio * lr``: pass
    ``warmup_start=final`` (``warmup_start=0.0`` for its releases that warm up from 0).

    Examples:
        >>> from fluxtrain.schedules import warmup_stable_decay
        >>> s = warmup_stable_decay(1.0, 2, 1, 2, warmup_start=0.0, decay_shape="cosine")
        >>> [s(t) for t in range(6)]
        [0.0, 0.5, 1.0, 1.0, 0.5, 0.0]
    """
    owner = "warmup_stable_decay"
    if decay_shape not in _DECAY_SHAPES:
        raise ScheduleError(
            f"{owner}: decay_shape must be one of {', '.join(map(repr, _DECAY_SHAPES))}, got "
            f"{decay_shape!r}."
        )
    peak = check_number(owner, "peak", peak)
    warmup = check_number(owner, "warmup", warmup, 0)
    begin = peak / (warmup + 1.0) if warmup_start is None else warmup_start
    return _WarmupStableDecay(
        unit,
        peak=peak,
        warmup=warmup,
        stable=check_number(owner, "stable", stable, 0),
        decay=check_number(owner, "decay", decay, 0),
        final=check_number(owner, "final", final),
        warmup_start=check_number(owner, "warmup_start", begin),
        decay_shape=decay_shape,
    )
