"""SWA: stochastic weight averaging, the mean of snapshots of the weights, with BatchNorm
statistics recomputed for the average.

Examples:
    >>> from fluxtrain.testing import tiny_learner
    >>> swa = SWA(start=1)
    >>> _ = tiny_learner(swa).fit(3)
    >>> swa.updates  # snapshots after epochs 2 and 3
    2
"""

from __future__ import annotations

import itertools
from typing import Any

import torch
import torch.distributed as dist
from torch.nn.modules.batchnorm import _BatchNorm
from torch.optim.swa_utils import update_bn

from ..batches import forward, move, split
from ..checkpoints.rng import generator_states, rng_state, set_generator_states, set_rng_state
from ..distributed import is_distributed, unwrap, world_size
from ..exceptions import FluxTrainError
from ..phases import AbstractTrainingPhase, Phase
from ..state import length
from .averaging import WeightAveraging


def _count(value: object, what: str, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise FluxTrainError(f"SWA: {what} must be an int >= {low}, got {value!r}.")
    return value


class SWA(WeightAveraging):
    """Averages snapshots of the weights with equal weights (stochastic weight averaging).

    After the first ``start`` epochs (or optimizer steps, ``unit="step"``), counted over all
    ``fit`` calls, a snapshot of the weights is taken every ``every`` of them: at the end of
    training epochs ``start + every``, ``start + 2 * every``, ... (with ``unit="step"`` after
    those optimizer steps). :attr:`averaged_model` is the mean of the snapshots so far
    (``torch.optim.swa_utils.AveragedModel``). Pair it with a learning-rate schedule that stays
    high from ``start`` on, as SWA expects: a ``Scheduler`` does that.

    Buffers are copied from the model at each snapshot; where the model has BatchNorm layers
    their statistics for the averaged weights are recomputed (``torch.optim.swa_utils.update_bn``:
    one pass of the averaged model in training mode over the fit's training data, or its first
    ``bn_batches`` batches), whenever snapshots changed the average and it is used: before a
    validation with ``validate=True``, at the end of a fit that completed or was cancelled, and
    in :meth:`swapped`. The pass leaves the random states and the data's generators as they
    were. Under ``torch.distributed`` each rank passes over its shard and the statistics are
    averaged over the ranks (exact for equal shards, as a ``DistributedSampler`` makes them).

    Args:
        start: Epochs (steps) before the first snapshot is due, ``>= 0``.
        every: Epochs (steps) between snapshots, ``>= 1``.
        unit: ``"epoch"`` or ``"step"``.
        validate: Run the fit's validation epochs on the averaged weights once there is a
            snapshot (training goes on with the raw ones, restored bitwise after each).
        bn_batches: At most this many batches in the BatchNorm pass; needed for training data
            without ``len()`` (a stream may not end) when the model has BatchNorm layers.

    Raises:
        FluxTrainError: For a bad argument; at ``FitBegin`` for a model with BatchNorm layers,
            training data without ``len()`` and no ``bn_batches``.

    Examples:
        >>> from fluxtrain.testing import tiny_learner
        >>> swa = SWA(start=2, every=4, unit="step")
        >>> _ = tiny_learner(swa, n_batches=4).fit(3)  # steps 6 and 10
        >>> swa.updates
        2
    """

    def __init__(
        self,
        start: int,
        every: int = 1,
        unit: str = "epoch",
        validate: bool = False,
        bn_batches: int | None = None,
    ) -> None:
        self.start = _count(start, "start", 0)
        self.every = _count(every, "every", 1)
        if unit not in ("epoch", "step"):
            raise FluxTrainError(f"SWA: unit must be 'epoch' or 'step', got {unit!r}.")
        self.unit = unit
        self.bn_batches = None if bn_batches is None else _count(bn_batches, "bn_batches", 1)
        self._done = 0  # epochs or steps completed, over all fits
        self._bn_stale = False  # snapshots were taken since the BatchNorm statistics were computed
        super().__init__(validate, False, None)
        if unit == "step":  # a StepEnd hook only when there is work for it
            self.on_step_end = self._step_end  # type: ignore[method-assign]

    def on_fit_begin(self, phase: Phase, learner: Any) -> None:
        super().on_fit_begin(phase, learner)
        train = self._learner._fit_data.train
        if self.bn_batches is None and _has_bn(unwrap(learner.model)) and length(train) is None:
            raise FluxTrainError(
                "SWA: the model has BatchNorm layers, whose statistics SWA recomputes with a "
                "pass over the training data, but the training data has no len() (a stream "
                "may never end). Pass SWA(..., bn_batches=N) to use its first N batches."
            )

    def _step_end(self, phase: Phase, learner: Any) -> None:
        if learner.batch.updated and isinstance(phase, AbstractTrainingPhase):
            self._tick(learner)

    def on_epoch_end(self, phase: Phase, learner: Any) -> None:
        super().on_epoch_end(phase, learner)
        if self.unit == "epoch" and isinstance(phase, AbstractTrainingPhase):
            self._tick(learner)

    def _tick(self, learner: Any) -> None:
        self._done = n = self._done + 1
        if n > self.start and not (n - self.start) % self.every:
            model = unwrap(learner.model) if self._model is None else self._model
            self._update(model)
            self._bn_stale = _has_bn(model)

    def on_fit_end(self, phase: Phase, learner: Any) -> None:
        super().on_fit_end(phase, learner)
        if self._learner.fitstate.ending in ("completed", "cancelled"):
            self._before_use()

    def _before_use(self) -> None:
        """Recomputes the averaged model's BatchNorm statistics if snapshots changed it."""
        if not self._bn_stale or self.averaged_model is None:
            return
        module = self.averaged_model
        data = self._learner._fit_data.train
        if data is None:
            raise FluxTrainError(
                "SWA: the BatchNorm statistics of the average are recomputed on the training "
                "data, and the learner has none. Give it training data (Learner(...) or fit)."
            )
        device = next(module.parameters()).device
        random, generators = rng_state(), generator_states(data)
        batches = data if self.bn_batches is None else itertools.islice(data, self.bn_batches)
        inputs = _Inputs(module, device).train(module.training)
        try:
            update_bn(([batch] for batch in batches), inputs)
        finally:
            set_rng_state(random)
            set_generator_states(data, generators)
        if is_distributed():
            for bn in module.modules():
                statistics = (bn.running_mean, bn.running_var) if isinstance(bn, _BatchNorm) else ()
                for statistic in statistics:
                    if statistic is not None:  # None without track_running_stats
                        dist.all_reduce(statistic)
                        statistic.div_(world_size())
        self._bn_stale = False

    def state_dict(self) -> dict[str, Any]:
        """The average (tensors), the epochs or steps counted and whether the BatchNorm
        statistics are due to be recomputed."""
        return {**super().state_dict(), "count": self._done, "bn_stale": self._bn_stale}

    def load_state_dict(self, state: Any) -> None:
        super().load_state_dict(state)
        self._done, self._bn_stale = state["count"], state["bn_stale"]

    def __repr__(self) -> str:
        return (
            f"SWA(start={self.start}, every={self.every}, unit={self.unit!r}, "
            f"validate={self.validate})"
        )


def _has_bn(module: torch.nn.Module) -> bool:
    return any(isinstance(m, _BatchNorm) for m in module.modules())


class _Inputs(torch.nn.Module):
    """``model`` called on a batch's inputs by fluxtrain's conventions, for ``update_bn``."""

    def __init__(self, model: torch.nn.Module, device: torch.device) -> None:
        super().__init__()
        self.model = model
        self.device = device

    def forward(self, batch: Any) -> Any:
        inputs, _ = split(batch)
        return forward(self.model, move(inputs, self.device))
