"""StopOnNaNLoss: ends fitting when the training loss is NaN or infinite.

Examples:
    >>> import torch
    >>> from fluxtrain.testing import tiny_learner
    >>> learner = tiny_learner(StopOnNaNLoss(), loss_fn=lambda o, t: (o - t).sum() * float("nan"))
    >>> result = learner.fit(1)
    >>> result.stopped_by, result.reason
    ('StopOnNaNLoss', 'loss is nan at training step 0')
"""

from __future__ import annotations

import math
from typing import Any

import torch

from ..access import Read
from ..callback import Callback
from ..distributed import all_reduce_sum, is_distributed
from ..exceptions import CancelFitting, FluxTrainError
from ..phases import AbstractTrainingPhase, Phase
from .progress import LatestValue


class StopOnNaNLoss(Callback):
    """Raises ``CancelFitting`` when a training loss is not finite.

    With ``sync=True`` the loss is checked at ``BackwardBegin``, before ``backward()`` and
    ``optimizer.step()``, so the weights never see the bad loss. That check reads the loss on
    the host; on the CPU this costs nothing, on a GPU it stalls the pipeline every step. So by
    default (``sync=None``) a CPU loss is checked that way, and a GPU loss without blocking: a
    device-side flag is copied to the host in the background and fitting stops at the first
    step whose copy shows a bad loss, a few steps after it happened.

    Under ``torch.distributed`` every rank's loss is checked before the update and the result
    all-reduced, so all ranks stop at the same step (one small collective per step).

    Args:
        sync: ``True``: check before every update; ``False``: check without blocking;
            ``None``: ``True`` on the CPU, ``False`` on accelerators.
    """

    stateaccess = {"batch.loss": Read, "fitstate": Read}

    def __init__(self, sync: bool | None = None) -> None:
        if sync not in (None, True, False):
            raise FluxTrainError(f"StopOnNaNLoss: sync must be None, True or False, got {sync!r}.")
        self.sync = sync
        self._flag: torch.Tensor | None = None
        self._reader = LatestValue()
        self._distributed = False

    def on_backward_begin(self, phase: Phase, learner: Any) -> None:
        loss = learner.batch.loss
        if self._distributed:  # every rank must stop at the same step
            bad = all_reduce_sum([0.0 if math.isfinite(loss.item()) else 1.0], loss.device)
            if bad[0] and isinstance(phase, AbstractTrainingPhase):
                step = learner.fitstate.total_steps
                raise CancelFitting(f"loss is not finite on {bad[0]:g} rank(s) at step {step}")
            return
        if loss.is_cpu or self.sync:
            value = loss.item()
            if value - value == 0.0:  # finite: inf - inf and nan - nan are nan
                return
            if isinstance(phase, AbstractTrainingPhase):
                step = learner.fitstate.total_steps
                raise CancelFitting(f"loss is {value} at training step {step}")
            return
        finite = torch.isfinite(loss.detach())
        self._flag = finite if self._flag is None else self._flag.logical_and_(finite)
        if self._reader.read(self._flag.float()) == 0.0:
            raise CancelFitting(
                f"loss was not finite at or before training step {learner.fitstate.total_steps}"
            )

    def on_fit_begin(self, phase: Phase, learner: Any) -> None:
        self._distributed = is_distributed()
        self._flag = None
        self._reader = LatestValue()
