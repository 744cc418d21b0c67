"""Reading a learning-rate range test: loss smoothing, the suggestion rules, the result.

The rules are pure functions of arrays, usable on any recorded ``(lrs, losses)`` curve;
:func:`suggest_lrs` applies them to a sweep as :func:`~fluxtrain.lr_find` does, and
:class:`LRFinderResult` holds the curve, the suggestions and their plot. Each rule takes the
learning rates and the (smoothed) losses of a sweep, both increasing in the learning rate, and
returns one learning rate:

- ``midpoint``: halfway, in log scale, between ``valley`` and the learning rate at the lowest
  loss: ``sqrt(valley * lrs[argmin(loss)])``, about three quarters of the way down the valley.
  :func:`~fluxtrain.lr_find`'s default (``result.best``): in one-cycle fits on three problems it
  was the most robust rule (docs/lr_finder.md).
- ``valley``: the longest decreasing run of the loss (the longest strictly decreasing
  subsequence, ending at index ``e`` with ``m`` points), at index ``e - m + m // 3 + m // 6``:
  about halfway down the valley (fastai's ``valley``, its default; cautious).
- ``steep``: where the loss falls fastest per decade, the ``lrs[k]`` minimizing
  ``(loss[k+1] - loss[k]) / (log lrs[k+1] - log lrs[k])`` (fastai's ``steep``).
- ``minimum``: one tenth of the learning rate at the lowest loss (fastai's ``minimum``).
- ``slide``: with ``g = numpy.gradient(loss)``, slide a window of ``15`` points down from the
  end of the curve while ``|g[right] - g[left]| > 0.005``; the learning rate at the left end
  of the last window that moved (fastai's ``slide``; the threshold is absolute, in loss units).

Examples:
    >>> import numpy as np
    >>> lrs = np.geomspace(1e-4, 1.0, 9)
    >>> losses = np.array([1.0, 0.99, 0.95, 0.8, 0.5, 0.3, 0.25, 0.6, 2.0])
    >>> minimum(lrs, losses)  # lowest loss at lrs[6] = 0.1
    0.01
    >>> round(steep(lrs, losses), 6)  # steepest fall from lrs[3] to lrs[4]
    0.003162
    >>> round(midpoint(lrs, losses), 6)  # between valley (lrs[2]) and the lowest loss (lrs[6])
    0.01
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from matplotlib.figure import Figure

Suggestion = Callable[[np.ndarray, np.ndarray], float]


def smooth(losses: np.ndarray, smoothing: float) -> np.ndarray:
    """Bias-corrected exponential moving average of ``losses``.

    ``avg[i] = smoothing * avg[i-1] + (1 - smoothing) * losses[i]`` from ``avg[-1] = 0``, and
    ``smoothed[i] = avg[i] / (1 - smoothing ** (i + 1))``, so the first value is the first loss
    (Adam's bias correction; fastai's ``AvgSmoothLoss``). ``smoothing = 0`` returns the losses.

    Args:
        losses: The raw losses, in sweep order.
        smoothing: The decay, ``0 <= smoothing < 1``.

    Returns:
        The smoothed losses, a float64 array of the same length.

    Examples:
        >>> smooth(np.array([1.0, 3.0]), 0.5)
        array([1.        , 2.33333333])
    """
    smoothed = np.empty(len(losses), dtype=np.float64)
    average = 0.0
    for i, loss in enumerate(np.asarray(losses, dtype=np.float64)):
        average = smoothing * average + (1.0 - smoothing) * float(loss)
        smoothed[i] = average / (1.0 - smoothing ** (i + 1))
    return smoothed


def default_smoothing(num_steps: int) -> float:
    """The smoothing :func:`~fluxtrain.lr_find` uses unless told: ``1 - 10 / num_steps``.

    On a loss that changes at a steady rate, the bias-corrected average of :func:`smooth` lags
    behind it by ``smoothing / (1 - smoothing)`` steps once the start is forgotten: here
    ``num_steps / 10 - 1``, a tenth of the sweep whatever its length. At the end of the default
    100 steps that is 9.0 steps; fastai's fixed 0.98 lags 33.7 there (49 in the limit), almost
    three decades of a sweep from 1e-7 to 10.

    Examples:
        >>> default_smoothing(100), default_smoothing(400)
        (0.9, 0.975)
    """
    return 1.0 - 10.0 / num_steps


def valley(lrs: np.ndarray, losses: np.ndarray) -> float:
    """About halfway down the longest decreasing run of the loss (see the module docstring).

    Examples:
        >>> valley(np.arange(1.0, 9.0), np.array([3.0, 2.5, 2.0, 1.5, 1.0, 0.5, 0.4, 3.0]))
        3.0
    """
    n = len(losses)
    runs = np.ones(n, dtype=np.int64)  # length of the longest decreasing subsequence ending at i
    for i in range(1, n):
        before = runs[:i][losses[:i] > losses[i]]
        if before.size:
            runs[i] = before.max() + 1
    end = int(np.argmax(runs))
    length = int(runs[end])
    index = max(end - length + length // 3 + length // 6, 0)
    return float(lrs[index])


def steep(lrs: np.ndarray, losses: np.ndarray) -> float:
    """Where the loss falls fastest against ``log(lr)`` (see the module docstring).

    Examples:
        >>> steep(np.array([1.0, 10.0, 100.0]), np.array([1.0, 0.9, 0.2]))
        10.0
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        slopes = np.diff(losses) / np.diff(np.log(lrs))
    slopes = np.where(np.isfinite(slopes), slopes, np.inf)
    return float(lrs[int(np.argmin(slopes))])


def minimum(lrs: np.ndarray, losses: np.ndarray) -> float:
    """One tenth of the learning rate at the lowest loss.

    Examples:
        >>> minimum(np.array([0.1, 1.0, 10.0]), np.array([2.0, 1.0, 3.0]))
        0.1
    """
    return float(lrs[int(np.argmin(losses))]) / 10.0


def slide(lrs: np.ndarray, losses: np.ndarray, window: int = 15, threshold: float = 0.005) -> float:
    """The interval slide rule (see the module docstring).

    Args:
        lrs: The learning rates.
        losses: The losses.
        window: Points between the right and left ends of the sliding interval (shortened to
            ``len(losses) - 1`` on a shorter curve).
        threshold: The slide stops where the gradients at both ends differ by at most this.

    Examples:
        >>> lrs = np.geomspace(1e-3, 1.0, 20)
        >>> round(slide(lrs, np.linspace(2.0, 1.0, 20)), 6)  # a straight line: lrs[19 - 15]
        0.004281
    """
    gradient = np.gradient(losses) if len(losses) > 1 else np.zeros(len(losses))
    right = len(losses) - 1
    left = right - min(window, right)
    found = lrs[left]
    while left >= 0 and abs(gradient[right] - gradient[left]) > threshold:
        found = lrs[left]
        right -= 1
        left -= 1
    return float(found)


def midpoint(lrs: np.ndarray, losses: np.ndarray) -> float:
    """Halfway, in log scale, between :func:`valley` and the learning rate at the lowest loss.

    ``sqrt(valley * lrs[argmin(losses)])``: ``valley`` alone is cautious (one-cycle fits at it
    ended well below the best accuracy), the lowest loss is the edge; between the two was the
    most robust reading in one-cycle fits (docs/lr_finder.md).

    Examples:
        >>> lrs, losses = np.array([0.01, 0.1, 1.0, 10.0]), np.array([1.0, 0.5, 0.2, 2.0])
        >>> valley(lrs, losses), round(midpoint(lrs, losses), 12)  # lowest loss at lrs[2]
        (0.01, 0.1)
    """
    return math.sqrt(valley(lrs, losses) * float(lrs[int(np.argmin(losses))]))


SUGGESTIONS: dict[str, Suggestion] = {
    "valley": valley,
    "steep": steep,
    "minimum": minimum,
    "slide": slide,
    "midpoint": midpoint,
}
"""The suggestion rules by name, as ``lr_find(suggest=...)`` accepts them."""


SKIP_END = 5
"""Finite points at the end of the sweep that suggestions leave out (the start of divergence)."""


def suggest_lrs(
    names: Sequence[str], lrs: np.ndarray, smoothed: np.ndarray, skip: int
) -> dict[str, float]:
    """The learning rates the rules ``names`` suggest from a sweep's smoothed losses.

    The rules see the finite points from index ``skip`` on, without the last ``SKIP_END``
    (the onset of divergence); on a shorter curve they see all finite points, with a
    ``RuntimeWarning``, and with fewer than two every suggestion is NaN.

    Examples:
        >>> lrs = np.geomspace(1e-3, 1e2, 11)
        >>> losses = np.array([0.1, 0.9, 0.8, 0.6, 0.4, 0.5, 0.7, 1.0, 2.0, 4.0, 8.0])
        >>> suggest_lrs(["minimum"], lrs, losses, skip=1)  # lowest of losses[1:6]: lrs[4] = 0.1
        {'minimum': 0.01}
    """
    finite = int(np.isfinite(smoothed).sum())
    window = slice(skip, finite - SKIP_END)
    if finite - SKIP_END - skip < 2:
        window = slice(0, finite)
        warnings.warn(
            f"lr_find: the sweep ended after {len(smoothed)} steps, too few to leave out the "
            f"first {skip} and last {SKIP_END} points; the suggestions use all {finite} finite "
            f"points. Start lower (start=...) or raise min_steps.",
            RuntimeWarning,
            stacklevel=3,
        )
    if window.stop - window.start < 2:
        return {name: float("nan") for name in names}
    return {name: SUGGESTIONS[name](lrs[window], smoothed[window]) for name in names}


@dataclass(frozen=True, eq=False, repr=False)
class LRFinderResult:
    """The curve of a range test and the learning rates suggested from it.

    Attributes:
        lrs: The learning rate of each step (of the largest param group; see ``group_ratios``).
        losses: The training loss of each step, taken before that step's update. A
            non-finite loss ends the sweep and is its last entry.
        smoothed_losses: ``losses`` smoothed (:func:`smooth`).
        suggestions: Suggested learning rates by rule name, in the order asked for.
        reason: Why the sweep ended, in words.
        group_ratios: Each param group's learning rate relative to the largest one; the
            sweep keeps these ratios.
    """

    lrs: np.ndarray
    losses: np.ndarray
    smoothed_losses: np.ndarray
    suggestions: dict[str, float]
    reason: str
    group_ratios: tuple[float, ...] = (1.0,)

    @property
    def best(self) -> float:
        """The first suggestion asked for (``midpoint`` by default)."""
        return next(iter(self.suggestions.values()))

    def plot(self, path: str | os.PathLike[str] | None = None) -> Figure:
        """The loss against the learning rate (log scale) with the suggestions marked.

        Args:
            path: Where to save the figure as PNG; not saved when ``None``.

        Returns:
            The matplotlib ``Figure`` (it shows itself in a notebook).

        Raises:
            ImportError: When matplotlib is not installed.
        """
        from .plot import plot_lr_find

        return plot_lr_find(self, path)

    def __repr__(self) -> str:
        shown = ", ".join(f"{name}={lr:.3g}" for name, lr in self.suggestions.items())
        return f"LRFinderResult(steps={len(self.lrs)}, {shown}, reason={self.reason!r})"
