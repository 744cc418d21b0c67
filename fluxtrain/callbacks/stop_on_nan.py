"""StopOnNaNLoss: ends fitting when the loss is not finite, before the weights are touched.

Examples:
    >>> import torch
    >>> from fluxtrain.testing import tiny_learner
    >>> learner = tiny_learner(StopOnNaNLoss(), loss_fn=lambda o, t: (o - t).sum() * float("nan"))
    >>> result = learner.fit(1)
    >>> result.stopped_by, result.reason
    ('StopOnNaNLoss', 'loss is nan at training step 0')
"""

from __future__ import annotations

from typing import Any

import torch

from ..access import Read
from ..callback import Callback
from ..exceptions import CancelFitting
from ..phases import AbstractTrainingPhase, Phase


class StopOnNaNLoss(Callback):
    """Raises ``CancelFitting`` at ``BackwardBegin`` when the training loss is NaN or infinite.

    The check runs before ``backward()`` and ``optimizer.step()``, so the weights never see the
    bad loss. A loss on the CPU is checked directly; one on an accelerator is checked with a
    host read of one flag, the price of that guarantee (disable the callback to avoid it).
    """

    stateaccess = {"batch.loss": Read, "fitstate": Read}

    def on_backward_begin(self, phase: Phase, learner: Any) -> None:
        loss = learner.batch.loss
        if loss.device.type == "cpu":
            value = loss.item()
            if value - value == 0.0:  # finite: inf - inf and nan - nan are nan
                return
        elif bool(torch.isfinite(loss)):
            return
        if isinstance(phase, AbstractTrainingPhase):
            raise CancelFitting(
                f"loss is {loss.item()} at training step {learner.fitstate.total_steps}"
            )
