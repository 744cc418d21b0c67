"""The sweep of :func:`~fluxtrain.lr_finder.lr_find`: which callbacks run, the sweep, its data.

The sweep is a one-epoch ``fit`` of the learner itself, with :class:`LRSweep` setting each
step's learning rate and recording the loss, over :class:`Cycle` (the training data, repeated
up to ``num_steps`` batches). Of the learner's callbacks, only copies of those that change what
a training step computes run with it (:func:`runs_in_sweep`). Putting the learner back exactly
as it was afterwards is :class:`~fluxtrain.lr_finder.restore.Untouched`.

Examples:
    >>> from fluxtrain import Metrics, ToDevice
    >>> runs_in_sweep(ToDevice("cpu")), runs_in_sweep(Metrics())
    (True, False)
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np

from ..access import Read, Write, overlaps
from ..callback import Callback
from ..exceptions import CancelFitting, FluxTrainError
from ..hyperparameters import LearningRate
from ..ordering import Resolution, RunFirst
from ..phases import AbstractTrainingPhase, Phase


def runs_in_sweep(callback: Callback) -> bool:
    """Whether a learner's callback runs during :func:`lr_find`'s sweep (the default rule).

    A callback runs when it changes what a training step computes: it writes the batch, the
    model or ``loss_fn`` (``ToDevice``, augmentation, ``MixedPrecision``), or it declares the
    model and acts at ``BackwardEnd``, between backward and the update (gradient clipping).
    Schedulers never run (``Scheduler``, ``TorchScheduler`` and any callback writing
    ``"optimizer"``): they would fight the sweep, and weight averages (``EMA``, ``SWA``) would
    average its weights for nothing. Observers (metrics, recorders, printers,
    loggers, checkpointers, early stopping) are left out.

    Examples:
        >>> from fluxtrain import Metrics, ToDevice
        >>> runs_in_sweep(ToDevice("cpu")), runs_in_sweep(Metrics())
        (True, False)
    """
    skipped = ("Scheduler", "TorchScheduler", "WeightAveraging")
    if any(k.__name__ in skipped for k in type(callback).__mro__):
        return False
    accesses = callback.accesses()
    writes = [path for path, access in accesses.items() if access is Write]
    if any(overlaps(path, "optimizer") for path in writes):
        return False
    if any(path.split(".")[0] in ("model", "batch", "loss_fn") for path in writes):
        return True
    return "model" in accesses and "on_backward_end" in callback.implemented_hooks()


class LRSweep(Callback):
    """The sweep: sets each step's learning rate, records the loss, stops on divergence.

    Built by :func:`lr_find`; it runs in a training phase only and raises ``CancelFitting``
    at ``BackwardBegin`` to stop, so the step that diverged is not applied.
    """

    stateaccess = {"optimizer": Write, "batch.loss": Read}

    def __init__(
        self,
        lrs: np.ndarray,
        ratios: tuple[float, ...],
        smoothing: float,
        diverge: float | None,
        min_steps: int,
        bar: Any = None,
        targets: list[tuple[str, int]] | None = None,
    ) -> None:
        self.lrs = lrs
        targets = targets or [("optimizer", i) for i in range(len(ratios))]
        self.groups = [
            (name, LearningRate(group=i), ratio) for (name, i), ratio in zip(targets, ratios)
        ]
        self.smoothing = smoothing
        self.diverge = diverge
        self.min_steps = min_steps
        self.bar = bar
        self.losses: list[float] = []
        self.smoothed: list[float] = []
        self.reason = f"completed all {len(lrs)} steps"
        self._average = 0.0
        self._lowest = float("inf")

    def resolveconflict(self, other: Callback) -> Resolution:
        """Runs after any other writer of the optimizer, so the sweep's learning rate wins."""
        return RunFirst(other)

    def on_step_begin(self, phase: Phase, learner: Any) -> None:
        if isinstance(phase, AbstractTrainingPhase):
            lr = float(self.lrs[len(self.losses)])
            optimizers = learner.optimizers
            for name, hyperparameter, ratio in self.groups:
                hyperparameter.apply(optimizers[name], lr * ratio)

    def on_backward_begin(self, phase: Phase, learner: Any) -> None:
        if not isinstance(phase, AbstractTrainingPhase):
            return
        step = len(self.losses)
        lr = float(self.lrs[step])
        loss = float(learner.batch.loss.detach())
        self.losses.append(loss)
        if not np.isfinite(loss):
            self.smoothed.append(loss)
            self.reason = f"the loss was {loss} at lr={lr:.3g}"
            raise CancelFitting(self.reason)
        self._average = self.smoothing * self._average + (1.0 - self.smoothing) * loss
        smoothed = self._average / (1.0 - self.smoothing ** (step + 1))
        self.smoothed.append(smoothed)
        self._lowest = min(self._lowest, smoothed)
        if self.bar is not None:
            self.bar.set_postfix_str(f"lr={lr:.2e} loss={smoothed:.4g}", refresh=False)
            self.bar.update(1)
        if self.diverge is None or step + 1 < self.min_steps:
            return
        if smoothed > self._lowest + (self.diverge - 1.0) * abs(self._lowest):
            self.reason = (
                f"the smoothed loss exceeded {self.diverge:g} x its minimum at lr={lr:.3g}"
            )
            raise CancelFitting(self.reason)

    def close(self) -> None:
        """Closes the progress bar, if any."""
        if self.bar is not None:
            self.bar.close()
            self.bar = None


class Cycle:
    """``num_steps`` batches from ``data``, iterated again as often as needed.

    An iterator (which cannot be iterated again) ends the cycle when it runs out.

    Examples:
        >>> list(Cycle([1, 2], 5)), len(Cycle([1, 2], 5))
        ([1, 2, 1, 2, 1], 5)
        >>> cycle = Cycle(iter([1, 2]), 5)
        >>> list(cycle), cycle.ran_out
        ([1, 2], True)
    """

    def __init__(self, data: Iterable[Any], num_steps: int) -> None:
        self.data = data
        self.num_steps = num_steps
        self.produced = 0
        self.ran_out = False

    def __len__(self) -> int:
        return self.num_steps

    def __iter__(self) -> Iterator[Any]:
        while self.produced < self.num_steps:
            before = self.produced
            for batch in self.data:
                self.produced += 1
                yield batch
                if self.produced == self.num_steps:
                    return
            if self.produced == before:
                if before == 0:
                    raise FluxTrainError(
                        "lr_find: the training data yielded no batches. Give it batches of "
                        "(inputs, targets), or pass data=... to lr_find."
                    )
                self.ran_out = True
                return
