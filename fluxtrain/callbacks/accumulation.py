"""Gradient accumulation: one optimizer update per ``n`` micro-batches.

Examples:
    >>> from fluxtrain.testing import tiny_learner
    >>> learner = tiny_learner(GradientAccumulation(4), n_batches=8, validation=False)
    >>> learner.fit(1).steps_completed
    2
"""

from __future__ import annotations

from typing import Any

from torch.nn.parallel import DistributedDataParallel

from ..access import Read, Write
from ..callback import Callback
from ..exceptions import CancelUpdate, FluxTrainError
from ..phases import AbstractTrainingPhase, Phase


class GradientAccumulation(Callback):
    """Accumulates gradients over ``n`` micro-batches per optimizer update.

    The gradient of the loss is divided by ``n`` in ``backward()`` (a hook on the loss: metrics
    and ``batch.loss`` keep the batch's own loss), and the update is skipped (``CancelUpdate``) on
    all but every ``n``-th micro-batch and the last batch of an epoch whose length is known. Every
    micro-batch fires ``StepEnd``, so metrics count all of them; optimizer steps
    (``fitstate.step``, a ``Scheduler``'s time) count updates only. For data without ``len()``,
    micro-batches left over at an epoch's end accumulate into the next epoch's first update.

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

    stateaccess = {"batch.loss": Read, "fitstate": Write, "model": Read}

    def __init__(self, n: int) -> None:
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise FluxTrainError(f"GradientAccumulation: n must be an int >= 1, got {n!r}.")
        self.n = n
        self._micro = 0
        self._update = True  # whether the step in progress updates
        self._counted = False  # whether its micro-batch is counted yet
        self._no_sync: Any = None

    def on_fit_begin(self, phase: Phase, learner: Any) -> None:
        state = learner.fitstate
        if state.steps_per_epoch is not None:  # one update per n batches, and at epoch end
            state.updates_per_epoch = -(-state.steps_per_epoch // self.n)

    def on_step_begin(self, phase: Phase, learner: Any) -> None:
        self._sync()
        if not isinstance(phase, AbstractTrainingPhase):
            return
        state = learner.fitstate
        self._update = self._micro + 1 >= self.n or state.epoch_step == state.epoch_length
        self._counted = False
        model = learner.model
        if not self._update and isinstance(model, DistributedDataParallel):
            self._no_sync = model.no_sync()
            self._no_sync.__enter__()

    def on_backward_begin(self, phase: Phase, learner: Any) -> None:
        if isinstance(phase, AbstractTrainingPhase):
            n = self.n
            learner.batch.loss.register_hook(lambda grad: grad / n)

    def on_backward_end(self, phase: Phase, learner: Any) -> None:
        if not isinstance(phase, AbstractTrainingPhase):
            return
        self._sync()
        if not self._counted:  # one micro-batch per step, however many updates it makes
            self._counted = True
            self._micro = 0 if self._update else self._micro + 1
        if not self._update:
            raise CancelUpdate(f"accumulating micro-batch {self._micro} of {self.n}")

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
