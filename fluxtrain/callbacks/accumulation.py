"""Gradient accumulation: one optimizer update per ``n`` micro-batches.

Examples:
    >>> from fluxtrain.testing import tiny_learner
    >>> learner = tiny_learner(GradientAccumulation(4), n_batches=8, validation=False)
    >>> learner.fit(1).steps_completed
    2
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from ..access import Read, Write
from ..batches import batch_size
from ..callback import Callback
from ..distributed import all_reduce_sum, is_distributed, no_gradient_sync, world_size
from ..exceptions import CancelUpdate, FluxTrainError
from ..phases import AbstractTrainingPhase, Phase

NORMALIZATIONS = ("mean", "samples", "tokens")


class GradientAccumulation(Callback):
    """Accumulates gradients over ``n`` micro-batches per optimizer update.

    The update is skipped (``CancelUpdate``) on all but every ``n``-th micro-batch and the last
    batch of an epoch whose length is known. Every micro-batch fires ``StepEnd``, so metrics
    count all of them; optimizer steps (``fitstate.step``, a ``Scheduler``'s time) count updates
    only. For data without ``len()``, micro-batches left over at an epoch's end accumulate into
    the next epoch's first update.

    The accumulated gradient is that of one big batch whose loss is the mean of the group's
    losses, weighted by ``normalize`` (metrics and ``batch.loss`` keep each batch's own loss):

    - ``"mean"``: every micro-batch weighs the same; each loss's gradient is divided by the
      number of micro-batches in its group: ``n``, or fewer in the short last group of an epoch.
      Exact when the loss is a mean and the micro-batches are of equal size.
    - ``"samples"``: each micro-batch weighs its samples (dimension 0 of its inputs): for a
      loss that is a mean over samples, the gradient equals that of the group as one batch,
      whatever the sizes of its micro-batches.
    - ``"tokens"``: each weighs ``tokens(batch)``, e.g. the labelled tokens of a sequence
      batch, for a loss that is a mean over tokens.

    With ``"samples"`` and ``"tokens"`` each loss's gradient is multiplied by its count and the
    summed gradients (of every parameter of the model) are divided by the group's total count
    before the update (before
    ``MixedPrecision`` unscales and ``GradientClipping`` clips them); under
    ``torch.distributed`` the total is summed over the ranks (one small all-reduce per update).

    Under ``torch.distributed`` the micro-batches that do not update run without gradient
    synchronization (:func:`~fluxtrain.distributed.no_gradient_sync`: the
    ``DistributedDataParallel`` wrapper's ``no_sync()``, or FSDP2's
    ``set_requires_gradient_sync(False)``; entered at ``StepBegin``, left at ``BackwardEnd``):
    their gradients accumulate locally, and only the last micro-batch of each group reduces the
    sum, once.

    Args:
        n: Micro-batches per update, ``>= 1``.
        normalize: ``"mean"``, ``"samples"`` or ``"tokens"``: how the micro-batches weigh.
        tokens: ``tokens(batch) -> int`` (:class:`~fluxtrain.state.Batch`), for
            ``normalize="tokens"``, e.g. ``lambda b: int((b.targets != -100).sum())``.

    Examples:
        >>> from fluxtrain.testing import tiny_learner
        >>> learner = tiny_learner(GradientAccumulation(4), n_batches=8, validation=False)
        >>> learner.fit(1).steps_completed
        2
    """

    stateaccess = {
        "batch.loss": Read,
        "batch.inputs": Read,
        "batch.targets": Read,
        "fitstate": Write,
        "model": Read,
    }
    groups_batches = True  # several batches per optimizer step

    def __init__(
        self, n: int, normalize: str = "mean", tokens: Callable[[Any], int] | None = None
    ) -> None:
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise FluxTrainError(f"GradientAccumulation: n must be an int >= 1, got {n!r}.")
        if normalize not in NORMALIZATIONS:
            raise FluxTrainError(
                f"GradientAccumulation: normalize must be one of {', '.join(NORMALIZATIONS)}, "
                f"got {normalize!r}."
            )
        if (normalize == "tokens") != (tokens is not None) or not (
            tokens is None or callable(tokens)
        ):
            raise FluxTrainError(
                f"GradientAccumulation: normalize='tokens' needs tokens=, a function "
                f"tokens(batch) -> int (and only it does); got normalize={normalize!r}, "
                f"tokens={tokens!r}."
            )
        self.n = n
        self.normalize = normalize
        self.tokens = tokens
        self._micro = 0
        self._group = n  # micro-batches in the group in progress ("mean")
        self._count = 0  # samples or tokens in the group so far ("samples", "tokens")
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
        if self._micro == 0:
            self._count = 0
            length = state.epoch_length
            left = length - state.epoch_step + 1 if length is not None else self.n
            self._group = max(1, min(self.n, left))
        self._update = self._micro + 1 >= self.n or state.epoch_step == state.epoch_length
        self._counted = False
        if not self._update and is_distributed():  # DDP's no_sync(), FSDP2's sync switch
            self._no_sync = no_gradient_sync(learner.model)
            self._no_sync.__enter__()

    def on_backward_begin(self, phase: Phase, learner: Any) -> None:
        if not isinstance(phase, AbstractTrainingPhase):
            return
        if self.normalize == "mean":
            group = self._group
            learner.batch.loss.register_hook(lambda grad: grad / group)
            return
        batch = learner.batch
        count = batch_size(batch.inputs) if self.tokens is None else int(self.tokens(batch))
        if not self._counted:
            self._count += count
        batch.loss.register_hook(lambda grad: grad * count)

    def on_backward_end(self, phase: Phase, learner: Any) -> None:
        if not isinstance(phase, AbstractTrainingPhase):
            return
        self._sync()
        if not self._counted:  # one micro-batch per step, however many updates it makes
            self._counted = True
            self._micro = 0 if self._update else self._micro + 1
        if not self._update:
            raise CancelUpdate(f"accumulating micro-batch {self._micro} of {self.n}")
        if self.normalize != "mean":
            self._divide(learner)

    def _divide(self, learner: Any) -> None:
        """Divides the summed gradients by the group's count (over all ranks)."""
        total, share = float(self._count), 1.0
        if is_distributed():  # DistributedDataParallel averages: undo its 1 / world_size
            total, share = all_reduce_sum([total], torch.device("cpu"))[0], float(world_size())
        if total <= 0:
            raise FluxTrainError(
                f"GradientAccumulation: the group counted {total:g} {self.normalize}; nothing "
                f"to normalize by. Check tokens(batch) (it must count > 0 in each group)."
            )
        grads = [p.grad for p in learner.model.parameters() if p.grad is not None]
        if grads:
            torch._foreach_mul_(grads, share / total)

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
        return {"micro": self._micro, "group": self._group, "count": self._count}

    def load_state_dict(self, state: Any) -> None:
        self._micro = state["micro"]
        self._group = state.get("group", self.n)
        self._count = state.get("count", 0)
