"""Gradient clipping, with a norm that a schedule can drive.

Examples:
    >>> from fluxtrain.testing import tiny_learner
    >>> clip = GradientClipping(max_norm=0.5)
    >>> _ = tiny_learner(clip, n_batches=2).fit(1)
    >>> clip.last_norm is not None
    True
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch.nn.parallel import DistributedDataParallel

from ..access import Read, Write
from ..callback import Callback
from ..exceptions import CancelUpdate, FluxTrainError, HyperParameterError
from ..hyperparameters import HyperParameter
from ..phases import AbstractTrainingPhase, Phase
from .precision import MixedPrecision


class GradientClipping(Callback):  # runafter is set below, once GradientAccumulation exists
    """Clips the gradients' total norm to ``max_norm`` at ``BackwardEnd``, before the update.

    Runs after :class:`MixedPrecision`, so it sees unscaled gradients. The norm before
    clipping stays on the device in :attr:`last_norm` (no host read).

    Args:
        max_norm: The largest total norm allowed; schedule it with :class:`GradientClipNorm`.
        norm_type: The p of the p-norm (``2.0``; ``math.inf`` for the max norm).
    """

    stateaccess = {"model": Read}

    def __init__(self, max_norm: float, norm_type: float = 2.0) -> None:
        check_norm(max_norm, "GradientClipping: max_norm")
        self.max_norm = float(max_norm)
        self.norm_type = float(norm_type)
        self.last_norm: torch.Tensor | None = None
        self._parameters: list[torch.Tensor] = []

    def on_fit_begin(self, phase: Phase, learner: Any) -> None:
        self._parameters = [p for p in learner.model.parameters() if p.requires_grad]

    def on_backward_end(self, phase: Phase, learner: Any) -> None:
        if isinstance(phase, AbstractTrainingPhase):
            self.last_norm = torch.nn.utils.clip_grad_norm_(
                self._parameters, self.max_norm, self.norm_type, foreach=True
            )

    def state_dict(self) -> dict[str, Any]:
        return {"max_norm": self.max_norm}

    def load_state_dict(self, state: Any) -> None:
        self.max_norm = state["max_norm"]


def check_norm(value: object, what: str) -> None:
    if not (isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0):
        raise FluxTrainError(f"{what} must be a number > 0, got {value!r}.")
    if math.isnan(float(value)):
        raise FluxTrainError(f"{what} must be a number > 0, got nan.")


class GradientClipNorm(HyperParameter):
    """The ``max_norm`` of the learner's :class:`GradientClipping`, as a hyperparameter.

    Examples:
        >>> from fluxtrain.testing import tiny_learner
        >>> clip = GradientClipping(1.0)
        >>> learner = tiny_learner(clip)
        >>> GradientClipNorm().sethyperparameter(learner, 0.25)
        >>> clip.max_norm
        0.25
    """

    stateaccess = {"callbacks": Read}

    def check(self, learner: Any) -> None:
        if not any(isinstance(cb, GradientClipping) for cb in learner.callbacks):
            raise HyperParameterError(
                "GradientClipNorm is scheduled but the learner has no GradientClipping "
                "callback. Add GradientClipping(max_norm) to the learner's callbacks."
            )

    def sethyperparameter(self, learner: Any, value: float) -> None:
        for cb in learner.callbacks:
            if isinstance(cb, GradientClipping):
                cb.max_norm = value


class GradientAccumulation(Callback):
    """Accumulates gradients over ``n`` micro-batches per optimizer update.

    The loss is divided by ``n`` for ``backward()`` (metrics still see the batch's own loss),
    and the update is skipped (``CancelUpdate``) on all but every ``n``-th micro-batch and the
    last batch of an epoch whose length is known. Every micro-batch fires ``StepEnd``, so
    metrics count all of them; optimizer steps (``fitstate.step``, a ``Scheduler``'s time) count
    updates only. For data without ``len()``, micro-batches left over at an epoch's end
    accumulate into the next epoch's first update.

    Under ``torch.distributed`` the micro-batches that do not update run under the
    ``DistributedDataParallel`` wrapper's ``no_sync()`` (entered at ``StepBegin``, left at
    ``BackwardEnd``): their gradients accumulate locally, and only the last micro-batch of each
    group all-reduces the sum, once.

    Args:
        n: Micro-batches per update, ``>= 1``.

    Examples:
        >>> from fluxtrain.testing import tiny_learner
        >>> learner = tiny_learner(GradientAccumulation(4), n_batches=8, validation=False)
        >>> learner.fit(1).steps_completed
        2
    """

    stateaccess = {"batch.loss": Write, "fitstate": Write, "model": Read}

    def __init__(self, n: int) -> None:
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise FluxTrainError(f"GradientAccumulation: n must be an int >= 1, got {n!r}.")
        self.n = n
        self._micro = 0
        self._loss: Any = None
        self._no_sync: Any = None

    def resolveconflict(self, other: Callback) -> Any:
        from ..ordering import RunFirst

        return (
            RunFirst(self) if isinstance(other, MixedPrecision) else super().resolveconflict(other)
        )

    def on_fit_begin(self, phase: Phase, learner: Any) -> None:
        state = learner.fitstate
        if state.steps_per_epoch is not None:  # one update per n batches, and at epoch end
            state.updates_per_epoch = -(-state.steps_per_epoch // self.n)

    def on_step_begin(self, phase: Phase, learner: Any) -> None:
        self._sync()
        model = learner.model
        if isinstance(phase, AbstractTrainingPhase) and isinstance(model, DistributedDataParallel):
            state = learner.fitstate
            if self._micro + 1 < self.n and state.epoch_step != state.epoch_length:
                self._no_sync = model.no_sync()
                self._no_sync.__enter__()

    def on_backward_begin(self, phase: Phase, learner: Any) -> None:
        if isinstance(phase, AbstractTrainingPhase):
            self._loss = learner.batch.loss
            learner.batch.loss = self._loss / self.n

    def on_backward_end(self, phase: Phase, learner: Any) -> None:
        if not isinstance(phase, AbstractTrainingPhase):
            return
        self._sync()
        learner.batch.loss = self._loss
        self._micro += 1
        state = learner.fitstate
        if self._micro < self.n and state.epoch_step != state.epoch_length:
            raise CancelUpdate(f"accumulating micro-batch {self._micro} of {self.n}")
        self._micro = 0

    def on_epoch_end(self, phase: Phase, learner: Any) -> None:
        self._sync()

    def on_fit_end(self, phase: Phase, learner: Any) -> None:
        self._sync()

    def _sync(self) -> None:
        """Leaves ``no_sync()``, if a micro-batch entered it (also after a cancelled step)."""
        if self._no_sync is not None:
            self._no_sync.__exit__(None, None, None)
            self._no_sync = None

    def state_dict(self) -> dict[str, Any]:
        return {"micro": self._micro}

    def load_state_dict(self, state: Any) -> None:
        self._micro = state["micro"]


GradientClipping.runafter = (MixedPrecision, GradientAccumulation)
