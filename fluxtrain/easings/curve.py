"""The machinery under every easing: a curve on [0, 1] behind the repeat options.

An easing maps the elapsed fraction ``x`` of a keyframe segment to the fraction ``r`` of the way
from the segment's start value to its end value. :class:`CurveEasing` builds one from a curve
written once for floats and numpy arrays, and applies the repeat options (:class:`RepeatOptions`)
before it; :mod:`fluxtrain.easings` is the catalogue built on it.

Examples:
    >>> quadratic = CurveEasing("quadratic", (), lambda u, xp: u * u)
    >>> quadratic(0.5), quadratic.array(np.array([0.0, 0.5, 2.0]))
    (0.25, array([0.  , 0.25, 1.  ]))
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from typing import Any, Protocol, TypedDict, runtime_checkable

import numpy as np

from ..exceptions import ScheduleError


@runtime_checkable
class Easing(Protocol):
    """What a :class:`~fluxtrain.schedules.keyframes.Schedule` needs of an easing."""

    def scalar(self, x: float) -> float:
        """The eased fraction at the segment fraction ``x`` in [0, 1]."""
        ...

    def array(self, x: np.ndarray) -> np.ndarray:
        """:meth:`scalar` elementwise over an array, vectorized."""
        ...


class RepeatOptions(TypedDict, total=False):
    """The keyword options of every easing: ``n``, ``yoyo``, ``prewait``, ``postwait``."""

    n: int
    yoyo: bool
    prewait: float
    postwait: float


class ScalarMath:
    """The few numpy functions a curve uses, for one Python float (the fast scalar path)."""

    sin = staticmethod(math.sin)

    @staticmethod
    def where(condition: bool, if_true: float, if_false: float) -> float:
        return if_true if condition else if_false


def check_number(
    value: object,
    name: str,
    owner: str,
    rule: str = "",
    ok: Callable[[float], bool] = math.isfinite,
) -> float:
    """``value`` as a float if it is a finite real number with ``ok(value)``, else an error."""
    if isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value):
        if ok(float(value)):
            return float(value)
    raise ScheduleError(f"{owner}: {name} must be a finite real number{rule}, got {value!r}.")


class CurveEasing:
    """An easing from a curve on [0, 1], evaluated after the repeat options.

    Args:
        name: The name ``repr`` shows (the factory's).
        params: The factory's positional arguments, shown by ``repr``.
        curve: ``curve(u, xp)``, written once for a float (``xp`` is :class:`ScalarMath`) and a
            numpy array (``xp`` is ``numpy``), so that both paths do the same float operations.
        n: Runs of the curve within the segment, an integer >= 1.
        yoyo: Whether every second run goes backwards.
        prewait: The fraction of each run held at its start, in [0, 1).
        postwait: The fraction of each run held at its end, in [0, 1); ``prewait + postwait < 1``.

    Examples:
        >>> quadratic = CurveEasing("quadratic", (), lambda u, xp: u * u)
        >>> quadratic(0.5), quadratic
        (0.25, quadratic())
    """

    def __init__(
        self,
        name: str,
        params: tuple[object, ...],
        curve: Callable[[Any, Any], Any],
        *,
        n: int = 1,
        yoyo: bool = False,
        prewait: float = 0.0,
        postwait: float = 0.0,
    ) -> None:
        if not (isinstance(n, numbers.Integral) and not isinstance(n, bool) and n >= 1):
            raise ScheduleError(
                f"{name}: n (the number of runs) must be an integer >= 1, got {n!r}."
            )
        if not isinstance(yoyo, bool):
            raise ScheduleError(f"{name}: yoyo must be True or False, got {yoyo!r}.")
        for option, value in (("prewait", prewait), ("postwait", postwait)):
            check_number(
                value, f"{option} (a fraction of the run)", name, " in [0, 1)", lambda v: 0 <= v < 1
            )
        if prewait + postwait >= 1.0:
            raise ScheduleError(
                f"{name}: prewait + postwait must be < 1 to leave time to move, got "
                f"prewait={prewait!r} and postwait={postwait!r}; shorten one of them."
            )
        self.name: str = name
        self.params: tuple[object, ...] = params
        self.curve: Callable[[Any, Any], Any] = curve
        self.n: int = int(n)
        self.yoyo: bool = yoyo
        self.prewait: float = float(prewait)
        self.postwait: float = float(postwait)
        self._plain: bool = self.n == 1 and self.prewait == 0.0 and self.postwait == 0.0
        self._active: float = (1.0 - self.postwait) - self.prewait
        self._end: float = 0.0 if yoyo and self.n % 2 == 0 else 1.0

    def scalar(self, x: float) -> float:
        """The eased fraction at ``x``."""
        value: float = self.curve(
            x if self._plain and 0.0 < x < 1.0 else self._fraction(x), ScalarMath
        )
        return value

    def array(self, x: np.ndarray) -> np.ndarray:
        """:meth:`scalar` over an array, with the same float operations."""
        return np.asarray(self.curve(self._fraction_array(np.asarray(x, dtype=float)), np))

    def __call__(self, x: Any) -> Any:
        return self.array(x) if isinstance(x, np.ndarray) else self.scalar(float(x))

    def _fraction(self, x: float) -> float:
        if x >= 1.0:
            return self._end
        if not x > 0.0:
            return x if x != x else 0.0  # NaN stays NaN
        multiple = x * self.n
        count = math.floor(multiple)
        rest = multiple - count
        u = (rest - self.prewait) / self._active
        u = 0.0 if u < 0.0 else 1.0 if u > 1.0 else u
        if self.yoyo:
            return u if count % 2 == 0 else 1.0 - u
        return 1.0 if rest == 0.0 else u

    def _fraction_array(self, x: np.ndarray) -> np.ndarray:
        if self._plain:
            return np.clip(x, 0.0, 1.0)
        multiple = x * self.n
        count = np.floor(multiple)
        rest = multiple - count
        u = np.clip((rest - self.prewait) / self._active, 0.0, 1.0)
        if self.yoyo:
            u = np.where(count % 2 == 0, u, 1.0 - u)
        else:
            u = np.where(rest == 0.0, 1.0, u)
        return np.where(x >= 1.0, self._end, np.where(x <= 0.0, 0.0, u))

    def __repr__(self) -> str:
        defaults = {"n": 1, "yoyo": False, "prewait": 0.0, "postwait": 0.0}
        options = [
            f"{k}={getattr(self, k)!r}" for k, v in defaults.items() if getattr(self, k) != v
        ]
        return f"{self.name}({', '.join([*map(repr, self.params), *options])})"
