"""Leslie Smith's learning-rate range test: train while the learning rate grows, read the loss.

:func:`lr_find` trains for up to ``num_steps`` steps with the learning rate growing from
``start`` to ``end``, records the loss, stops once the smoothed loss has diverged, and suggests
learning rates from the curve (:mod:`fluxtrain.lr_finder.suggestions`). It leaves no trace: the
model, the optimizer, the callbacks, ``cbstate`` and the random number generators are exactly
as before, so a ``fit`` after ``lr_find`` gives the same result as one without it.

Examples:
    >>> from fluxtrain.lr_finder import lr_find
    >>> from fluxtrain.testing import tiny_learner
    >>> learner = tiny_learner()
    >>> result = lr_find(learner, seed=0)
    >>> len(result.lrs), result.reason
    (98, 'the smoothed loss exceeded 4 x its minimum at lr=6.89')
    >>> round(result.best, 4)  # the "midpoint" suggestion
    0.1831
    >>> learner.model.weight.item()  # untouched
    0.0
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ..callback import Callback
from ..callbacks.progress import ProgressPrinter
from ..exceptions import FluxTrainError
from .restore import Untouched
from .suggestions import SUGGESTIONS, LRFinderResult, default_smoothing, suggest_lrs
from .sweep import Cycle, LRSweep, runs_in_sweep

if TYPE_CHECKING:
    from ..learner import Learner

MIN_STEPS = 10
"""The fewest sweep steps :func:`lr_find` accepts."""


def lr_find(
    learner: Learner,
    start: float = 1e-7,
    end: float = 10.0,
    num_steps: int = 100,
    mode: str = "exp",
    smoothing: float | None = None,
    diverge: float | None = 4.0,
    suggest: str | Sequence[str] = ("midpoint", "valley", "steep", "minimum", "slide"),
    seed: int | None = None,
    min_steps: int | None = None,
    data: Iterable[Any] | None = None,
    keep: Callable[[Callback], bool] = runs_in_sweep,
) -> LRFinderResult:
    """Runs a learning-rate range test on ``learner`` and leaves it exactly as it was.

    Step ``i`` of ``n = num_steps`` trains one batch at ``lr_i = start * (end / start) **
    (i / (n - 1))`` (``mode="exp"``) or ``start + (end - start) * i / (n - 1)``
    (``"linear"``). The loss is smoothed as it comes, by a bias-corrected exponential moving
    average (:func:`~fluxtrain.lr_finder.suggestions.smooth`) whose memory is a tenth of the
    sweep by default (``smoothing = 1 - 10 / num_steps``: 0.9 for 100 steps). Once at least
    ``min_steps`` steps are done, the sweep stops when the smoothed loss exceeds ``diverge``
    times its minimum (for a negative minimum ``m``: ``m + (diverge - 1) * |m|``). A NaN or
    infinite loss ends it too.
    The training data is cycled when it has fewer than ``num_steps`` batches.

    The sweep is a one-epoch ``fit`` of the learner with its callbacks swapped for the ones
    ``keep`` selects (copies of them) plus the sweep itself, on scratch copies of ``cbstate``,
    ``batch`` and ``fitstate``. Each param group gets ``lr_i`` times its original share of the
    largest group's learning rate. Afterwards parameters, buffers, gradients and train/eval
    modes, the optimizer's state and param groups, the callbacks and their dispatch,
    ``cbstate``, the Python, NumPy, torch and CUDA random states and the generators of a
    ``DataLoader`` are put back exactly, also after an error.

    Suggestions use the smoothed losses from step ``num_steps // 10`` on, without the last
    five finite points, so that the first noisy points and the onset of divergence are left out.

    Args:
        learner: The learner to test.
        start: The first learning rate, ``> 0`` (``>= 0`` in linear mode).
        end: The last learning rate, ``> start``.
        num_steps: The most steps to run, ``>= 10``.
        mode: ``"exp"`` (evenly spaced on a log scale) or ``"linear"``.
        smoothing: The decay of the bias-corrected moving average, ``0 <= smoothing < 1``;
            ``None`` for ``1 - 10 / num_steps``
            (:func:`~fluxtrain.lr_finder.suggestions.default_smoothing`).
        diverge: Stop when the smoothed loss exceeds this multiple of its minimum (``> 1``);
            ``None`` never stops early.
        suggest: Suggestion rule names (``"midpoint"``, ``"valley"``, ``"steep"``,
            ``"minimum"``, ``"slide"``), or one name; the first is the result's ``best``.
        seed: Seeds Python's ``random``, NumPy and torch for the sweep (all restored after),
            so the curve does not depend on the random state at the call.
        min_steps: No early stop before this many steps; ``num_steps // 5`` by default.
        data: Batches for the sweep; the learner's training data by default.
        keep: Which of the learner's callbacks run in the sweep; :func:`runs_in_sweep` by
            default.

    Returns:
        An :class:`LRFinderResult` with the curve and the suggestions.

    Raises:
        FluxTrainError: For a bad argument, or training data the sweep would use up.

    Examples:
        >>> from fluxtrain.testing import tiny_learner
        >>> result = lr_find(tiny_learner(), suggest="minimum", seed=0)
        >>> list(result.suggestions), len(result.lrs) == len(result.losses)
        (['minimum'], True)
    """
    from ..learner import Learner

    if not isinstance(learner, Learner):
        raise FluxTrainError(f"lr_find: learner must be a Learner, got {type(learner).__name__}.")
    names = _check_arguments(start, end, num_steps, mode, smoothing, diverge, suggest, seed)
    min_steps = _check_min_steps(min_steps, num_steps)
    if smoothing is None:
        smoothing = default_smoothing(num_steps)
    train = _sweep_data(learner, data)
    if mode == "exp":
        lrs = start * (end / start) ** (np.arange(num_steps) / (num_steps - 1))
    else:
        lrs = start + (end - start) * np.arange(num_steps) / (num_steps - 1)
    lrs[-1] = end
    groups = [
        (name, i, float(group["lr"]))
        for name, optimizer in learner.optimizers.items()
        for i, group in enumerate(optimizer.param_groups)
    ]
    largest = max(lr for _, _, lr in groups)
    ratios = tuple(lr / largest if largest > 0 else 1.0 for _, _, lr in groups)
    targets = [(name, i) for name, i, _ in groups]
    sweep = LRSweep(lrs, ratios, smoothing, diverge, min_steps, targets=targets)
    cycle = Cycle(train, num_steps)
    untouched = Untouched(learner, train)
    try:
        sweep.bar = _progress_bar(learner, num_steps)
        learner._set_callbacks([*untouched.sweep_callbacks(keep), sweep])
        if seed is not None:
            untouched.seed(seed)
        outcome = learner.fit(1, cycle)
    finally:
        sweep.close()
        untouched.restore()
    if outcome.stopped_by is not None and outcome.stopped_by != sweep.name:
        sweep.reason = f"{outcome.stopped_by} stopped it: {outcome.reason}"
    elif cycle.ran_out:
        sweep.reason = f"the data ran out after {cycle.produced} steps"
    losses = np.array(sweep.losses, dtype=np.float64)
    smoothed = np.array(sweep.smoothed, dtype=np.float64)
    lrs = lrs[: len(losses)].copy()
    suggestions = suggest_lrs(names, lrs, smoothed, num_steps // 10)
    return LRFinderResult(lrs, losses, smoothed, suggestions, sweep.reason, ratios)


def _progress_bar(learner: Learner, num_steps: int) -> Any:
    """A bar over the sweep where the learner's ``ProgressPrinter`` draws, if it has one."""
    printers = [getattr(cb, "wrapped", cb) for cb in learner.callbacks]
    printer = next((cb for cb in printers if isinstance(cb, ProgressPrinter)), None)
    if printer is None:
        return None
    from ..callbacks.progress import bar_class

    return bar_class()(
        total=num_steps,
        desc="lr_find",
        file=printer.file,
        leave=printer.leave,
        dynamic_ncols=True,
        mininterval=printer.interval,
        unit="step",
    )


def _sweep_data(learner: Learner, data: Iterable[Any] | None) -> Iterable[Any]:
    if data is not None:
        if not hasattr(data, "__iter__"):
            raise FluxTrainError(
                f"lr_find: data must be an iterable of (inputs, targets) batches, got "
                f"{type(data).__name__}."
            )
        return data
    train = learner.data.train
    if train is None:
        raise FluxTrainError(
            "lr_find: the learner has no training data. Pass data=... to lr_find, or give "
            "the Learner training data."
        )
    if isinstance(train, Iterator):
        raise FluxTrainError(
            f"lr_find: the learner's training data is an iterator ({type(train).__name__}), "
            f"which the sweep would use up before fit. Give the Learner a re-iterable (a "
            f"list, a DataLoader), or pass separate batches with data=...."
        )
    return train


def _check_arguments(
    start: float,
    end: float,
    num_steps: int,
    mode: str,
    smoothing: float | None,
    diverge: float | None,
    suggest: str | Sequence[str],
    seed: int | None,
) -> list[str]:
    if mode not in ("exp", "linear"):
        raise FluxTrainError(f"lr_find: mode must be 'exp' or 'linear', got {mode!r}.")
    for name, value in (("start", start), ("end", end)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not np.isfinite(value):
            raise FluxTrainError(f"lr_find: {name} must be a finite number, got {value!r}.")
    if mode == "exp" and start <= 0:
        raise FluxTrainError(
            f"lr_find: start must be > 0 in mode='exp' (the sweep is spaced on a log scale), "
            f"got start={start!r}. Use a small positive start such as 1e-7, or mode='linear'."
        )
    if start < 0:
        raise FluxTrainError(f"lr_find: start must be >= 0, got start={start!r}.")
    if start >= end:
        raise FluxTrainError(
            f"lr_find: start must be below end, got start={start!r}, end={end!r}. The learning "
            f"rate grows from start to end; swap them."
        )
    if isinstance(num_steps, bool) or not isinstance(num_steps, int) or num_steps < MIN_STEPS:
        raise FluxTrainError(
            f"lr_find: num_steps must be an int >= {MIN_STEPS}, got {num_steps!r}. A curve "
            f"needs some points to read; 100 is typical."
        )
    if smoothing is not None and (
        isinstance(smoothing, bool)
        or not isinstance(smoothing, (int, float))
        or not 0 <= smoothing < 1
    ):
        raise FluxTrainError(
            f"lr_find: smoothing must be a number with 0 <= smoothing < 1 or None, got "
            f"{smoothing!r} (0 for no smoothing; None, the default, for 1 - 10 / num_steps)."
        )
    if diverge is not None and (not isinstance(diverge, (int, float)) or not diverge > 1):
        raise FluxTrainError(
            f"lr_find: diverge must be a number > 1 (stop when the smoothed loss exceeds "
            f"diverge x its minimum) or None (never stop early), got {diverge!r}."
        )
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise FluxTrainError(f"lr_find: seed must be an int or None, got {seed!r}.")
    names = [suggest] if isinstance(suggest, str) else list(suggest)
    unknown = [name for name in names if name not in SUGGESTIONS]
    if unknown or not names or len(set(names)) != len(names):
        problem = f"unknown {', '.join(map(repr, unknown))}" if unknown else "none or repeated"
        raise FluxTrainError(
            f"lr_find: suggest must name one or more distinct rules of "
            f"{', '.join(map(repr, SUGGESTIONS))}, got {suggest!r} ({problem})."
        )
    return names


def _check_min_steps(min_steps: int | None, num_steps: int) -> int:
    if min_steps is None:
        return num_steps // 5
    if isinstance(min_steps, bool) or not isinstance(min_steps, int) or not 1 <= min_steps:
        raise FluxTrainError(f"lr_find: min_steps must be an int >= 1, got {min_steps!r}.")
    if min_steps > num_steps:
        raise FluxTrainError(
            f"lr_find: min_steps ({min_steps}) must not exceed num_steps ({num_steps})."
        )
    return min_steps
