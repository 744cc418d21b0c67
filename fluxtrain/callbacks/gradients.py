"""Gradient clipping, with a norm that a schedule can drive.

At ``BackwardEnd`` the gradients of the update in progress are clipped: those of every
parameter of the model when every optimizer updates (the default step), else those of the
parameters of the optimizers in ``batch.updating`` (one optimizer of a two-optimizer step).

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

from ..access import Read
from ..callback import Callback
from ..exceptions import FluxTrainError, HyperParameterError
from ..hyperparameters import HyperParameter
from ..phases import AbstractTrainingPhase, Phase, parameters_of
from .accumulation import GradientAccumulation
from .precision import MixedPrecision


class GradientClipping(Callback):
    """Clips the gradients' total norm to ``max_norm`` at ``BackwardEnd``, before the update.

    Runs after :class:`MixedPrecision`, so it sees unscaled gradients. The norm before
    clipping stays on the device in :attr:`last_norm` (no host read).

    Args:
        max_norm: The largest total norm allowed; schedule it with :class:`GradientClipNorm`.
        norm_type: The p of the p-norm (``2.0``; ``math.inf`` for the max norm).
    """

    stateaccess = {"model": Read, "optimizer": Read, "batch.updating": Read}
    runafter = (MixedPrecision, GradientAccumulation)

    def __init__(self, max_norm: float, norm_type: float = 2.0) -> None:
        check_norm(max_norm, "GradientClipping: max_norm")
        self.max_norm = float(max_norm)
        self.norm_type = float(norm_type)
        self.last_norm: torch.Tensor | None = None
        self._parameters: list[torch.Tensor] = []

    def on_fit_begin(self, phase: Phase, learner: Any) -> None:
        self._parameters = [p for p in learner.model.parameters() if p.requires_grad]
        self._all = tuple(learner.optimizers)
        self._of = {name: parameters_of(learner, (name,)) for name in learner.optimizers}

    def on_backward_end(self, phase: Phase, learner: Any) -> None:
        if isinstance(phase, AbstractTrainingPhase):
            names = learner.batch.updating
            parameters = (
                self._parameters
                if names == self._all
                else [p for name in names for p in self._of[name]]
            )
            self.last_norm = torch.nn.utils.clip_grad_norm_(
                parameters, self.max_norm, self.norm_type, foreach=True
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
    domain = (math.ulp(0.0), math.inf)  # max_norm > 0, as GradientClipping checks

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
