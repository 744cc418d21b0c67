"""Easings: how a keyframe segment moves from its start value to its end value.

An easing maps the elapsed fraction ``x`` of a segment (0 at its start keyframe, 1 at its end
keyframe) to the fraction ``r`` of the way from the start value to the end value, with the
semantics of Animations.jl: ``r(0) = 0`` and ``r(1) = 1`` for a single pass.

Every easing takes four keyword options (:class:`~fluxtrain.easings.curve.RepeatOptions`), applied
to ``x`` before the curve: the curve runs ``n`` times within the segment; with ``yoyo`` every
second run goes backwards (so an even ``n`` ends at 0); ``prewait`` and ``postwait`` hold each
run at its start and end for those fractions of the run. With ``m = x * n``, ``k = floor(m)``,
``rest = m - k``, the curve sees ``u = clamp((rest - prewait) / (1 - postwait - prewait), 0,
1)``, or ``1 - u`` for odd ``k`` with ``yoyo``; without ``yoyo`` the end of a run
(``rest == 0``) is ``u = 1``. ``x`` is clamped to [0, 1].

Examples:
    >>> sineio()(0.25)
    0.14644660940672627
    >>> linear(n=2, yoyo=True)(np.array([0.0, 0.25, 0.5, 0.75, 1.0]))
    array([0. , 0.5, 1. , 0.5, 0. ])
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from ..exceptions import ScheduleError
from .curve import CurveEasing, Easing, RepeatOptions, ScalarMath, check_number

if TYPE_CHECKING:
    from typing_extensions import Unpack

HALF_PI = 0.5 * math.pi


def linear(**repeat: Unpack[RepeatOptions]) -> CurveEasing:
    """Constant speed: ``r = x``.

    Examples:
        >>> linear()(0.25)
        0.25
    """
    return CurveEasing("linear", (), lambda u, xp: u, **repeat)


def sineio(**repeat: Unpack[RepeatOptions]) -> CurveEasing:
    """Sine in and out, slow at both ends: ``r = (1 - cos(pi * x)) / 2``.

    Examples:
        >>> sineio()(0.5)
        0.5
    """
    return CurveEasing(
        "sineio", (), lambda u, xp: xp.sin(math.pi * u - HALF_PI) * 0.5 + 0.5, **repeat
    )


def polyin(p: float, **repeat: Unpack[RepeatOptions]) -> CurveEasing:
    """Polynomial in, a slow start for ``p > 1``: ``r = x ** p`` (``p > 0``).

    Examples:
        >>> polyin(2)(0.5)
        0.25
    """
    p = check_number(p, "p", "polyin", " > 0", lambda p: p > 0)
    return CurveEasing("polyin", (p,), lambda u, xp: u**p, **repeat)


def polyout(p: float, **repeat: Unpack[RepeatOptions]) -> CurveEasing:
    """Polynomial out, a slow end for ``p > 1``: ``r = 1 - (1 - x) ** p`` (``p > 0``).

    Examples:
        >>> polyout(2)(0.5)
        0.75
    """
    p = check_number(p, "p", "polyout", " > 0", lambda p: p > 0)
    return CurveEasing("polyout", (p,), lambda u, xp: 1.0 - (1.0 - u) ** p, **repeat)


def polyio(p: float, **repeat: Unpack[RepeatOptions]) -> CurveEasing:
    """Polynomial in and out: ``r = (2x)**p / 2`` for ``x <= 1/2``, else ``1 - (2 - 2x)**p / 2``.

    Examples:
        >>> polyio(2)(0.25), polyio(2)(0.5), polyio(2)(0.75)
        (0.125, 0.5, 0.875)
    """
    p = check_number(p, "p", "polyio", " > 0", lambda p: p > 0)
    return CurveEasing(
        "polyio",
        (p,),
        lambda u, xp: xp.where(u <= 0.5, 0.5 * (2.0 * u) ** p, 1.0 - 0.5 * (2.0 - 2.0 * u) ** p),
        **repeat,
    )


def expin(e: float, **repeat: Unpack[RepeatOptions]) -> CurveEasing:
    """Exponential in: ``r = (e ** x - 1) / (e - 1)`` (``e > 0``, ``e != 1``).

    Examples:
        >>> expin(3)(0.5)
        0.3660254037844386
    """
    e = check_number(e, "e", "expin", " > 0 and != 1", lambda e: e > 0 and e != 1)
    return CurveEasing("expin", (e,), lambda u, xp: (e**u - 1.0) / (e - 1.0), **repeat)


def expout(e: float, **repeat: Unpack[RepeatOptions]) -> CurveEasing:
    """Exponential out: ``r = 1 - (e ** (1 - x) - 1) / (e - 1)`` (``e > 0``, ``e != 1``).

    Examples:
        >>> expout(3)(0.5)
        0.6339745962155614
    """
    e = check_number(e, "e", "expout", " > 0 and != 1", lambda e: e > 0 and e != 1)
    return CurveEasing(
        "expout", (e,), lambda u, xp: 1.0 - (e ** (1.0 - u) - 1.0) / (e - 1.0), **repeat
    )


def expio(e: float, **repeat: Unpack[RepeatOptions]) -> CurveEasing:
    """Exponential in and out: ``expin(e)`` on the first half, ``expout(e)`` on the second.

    ``r = (e ** (2x) - 1) / (e - 1) / 2`` for ``x <= 1/2``, else
    ``1 - (e ** (2 - 2x) - 1) / (e - 1) / 2`` (``e > 0``, ``e != 1``).

    Examples:
        >>> expio(3)(0.5), expio(3)(0.25) + expio(3)(0.75)
        (0.5, 1.0)
    """
    e = check_number(e, "e", "expio", " > 0 and != 1", lambda e: e > 0 and e != 1)

    def curve(u: Any, xp: Any) -> Any:
        first_half = 0.5 * (e ** (2.0 * u) - 1.0) / (e - 1.0)
        return xp.where(u <= 0.5, first_half, 1.0 - 0.5 * (e ** (2.0 - 2.0 * u) - 1.0) / (e - 1.0))

    return CurveEasing("expio", (e,), curve, **repeat)


def saccadic(p: float, **repeat: Unpack[RepeatOptions]) -> CurveEasing:
    """A sine ease on a warped clock: ``r = (1 + cos(pi * (1 - x) ** p)) / 2`` (``p > 0``).

    ``p = 1`` is :func:`sineio`; a larger ``p`` moves the steep part earlier, after a short
    slow start, and leaves a long, slow settle towards 1.

    Examples:
        >>> saccadic(1)(0.5)
        0.5
    """
    p = check_number(p, "p", "saccadic", " > 0", lambda p: p > 0)
    return CurveEasing(
        "saccadic",
        (p,),
        lambda u, xp: 1.0 - (xp.sin((1.0 - u) ** p * math.pi - HALF_PI) * 0.5 + 0.5),
        **repeat,
    )


def noease(**repeat: Unpack[RepeatOptions]) -> CurveEasing:
    """No interpolation, the start value until the end: ``r = 0`` for ``x < 1``, ``r(1) = 1``.

    Examples:
        >>> noease()(0.99), noease()(1.0)
        (0.0, 1.0)
    """
    return CurveEasing("noease", (), lambda u, xp: xp.where(u == 1.0, 1.0, 0.0), **repeat)


def stepease(s: float, **repeat: Unpack[RepeatOptions]) -> CurveEasing:
    """One jump at the fraction ``s`` in (0, 1]: ``r = 0`` for ``x < s``, ``r = 1`` from ``s`` on.

    ``stepease(1)`` is :func:`noease`; for several steps, add keyframes or use ``n``.

    Examples:
        >>> stepease(0.25)(0.2), stepease(0.25)(0.25)
        (0.0, 1.0)
    """
    s = check_number(
        s, "s (where the step happens)", "stepease", " in (0, 1]", lambda s: 0 < s <= 1
    )
    return CurveEasing("stepease", (s,), lambda u, xp: xp.where(u < s, 0.0, 1.0), **repeat)


def funcease(f: Callable[[float], float], **repeat: Unpack[RepeatOptions]) -> CurveEasing:
    """An easing from a function with ``f(0) == 0`` and ``f(1) == 1`` (checked exactly).

    ``f`` is called on one float at a time, on the array path too.

    Examples:
        >>> funcease(lambda x: x**3)(0.5)
        0.125
    """
    if not callable(f):
        raise ScheduleError(f"funcease: f must be a function of one float, got {f!r}.")
    start, end = f(0.0), f(1.0)
    if not (start == 0 and end == 1):
        raise ScheduleError(
            f"funcease: f must have f(0) == 0 and f(1) == 1, got f(0) = {start!r} and "
            f"f(1) = {end!r}; rescale it to (f(x) - f(0)) / (f(1) - f(0))."
        )

    def curve(u: Any, xp: Any) -> Any:
        if xp is ScalarMath:
            return float(f(u))
        return np.array([float(f(value)) for value in u.ravel().tolist()]).reshape(u.shape)

    return CurveEasing("funcease", (f,), curve, **repeat)


def _evaluate(easing: Easing, u: Any, xp: Any) -> Any:
    return easing.scalar(u) if xp is ScalarMath else easing.array(u)


def _check_easing(value: object, name: str, owner: str) -> Easing:
    if not isinstance(value, Easing):
        raise ScheduleError(
            f"{owner}: {name} must be an easing such as linear() or sineio(), got "
            f"{type(value).__name__}: {value!r}."
        )
    return value


def mixed(a: Easing, b: Easing, mix: float = 0.5, **repeat: Unpack[RepeatOptions]) -> CurveEasing:
    """A weighted mean of two easings: ``r = a(x) * mix + b(x) * (1 - mix)``, ``mix`` in [0, 1].

    Examples:
        >>> mixed(linear(), polyin(2), 0.25)(0.5)
        0.3125
    """
    a, b = _check_easing(a, "a", "mixed"), _check_easing(b, "b", "mixed")
    mix = check_number(mix, "mix (the weight of a)", "mixed", " in [0, 1]", lambda m: 0 <= m <= 1)

    def curve(u: Any, xp: Any) -> Any:
        return _evaluate(a, u, xp) * mix + _evaluate(b, u, xp) * (1.0 - mix)

    return CurveEasing("mixed", (a, b, mix), curve, **repeat)


def multiplied(a: Easing, b: Easing, **repeat: Unpack[RepeatOptions]) -> CurveEasing:
    """The product of two easings: ``r = a(x) * b(x)``.

    Examples:
        >>> multiplied(linear(), polyin(2))(0.5)
        0.125
    """
    a, b = _check_easing(a, "a", "multiplied"), _check_easing(b, "b", "multiplied")

    def curve(u: Any, xp: Any) -> Any:
        return _evaluate(a, u, xp) * _evaluate(b, u, xp)

    return CurveEasing("multiplied", (a, b), curve, **repeat)
