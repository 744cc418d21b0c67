"""EMA: an exponential moving average of the weights, with a decay a schedule can drive.

Examples:
    >>> from fluxtrain.testing import tiny_learner
    >>> ema = EMA(decay=0.5)
    >>> learner = tiny_learner(ema, n_batches=2)
    >>> _ = learner.fit(1)
    >>> ema.updates  # one per optimizer step
    2
    >>> round(ema.averaged_model.weight.item(), 4), round(learner.model.weight.item(), 4)
    (0.1017, 0.1169)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from ..access import Read
from ..distributed import unwrap
from ..exceptions import FluxTrainError, HyperParameterError
from ..hyperparameters import HyperParameter
from ..phases import AbstractTrainingPhase, Phase
from .averaging import WeightAveraging


def check_decay(value: object, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
        raise FluxTrainError(
            f"{what} must be a number in [0, 1), got {value!r}. Typical values are 0.99 to "
            f"0.9999: the average spans about 1 / (1 - decay) steps."
        )
    return float(value)


class EMA(WeightAveraging):
    """Keeps an exponential moving average of the weights, updated after every optimizer step.

    With ``w_n`` the model's weights after the ``n``-th optimizer step (counted over all
    ``fit`` calls; a ``GradientAccumulation`` micro-batch that does not step is no step) and
    ``d_n`` the decay of that step, the average is

    ``a_1 = w_1``, ``a_n = d_n * a_(n-1) + (1 - d_n) * w_n``

    (``torch.lerp``, as ``torch.optim.swa_utils.get_ema_multi_avg_fn``): it starts from the
    weights after the first step, not from the initial ones, with no bias correction and no
    built-in warmup. ``d_n`` is the value a :class:`~fluxtrain.Scheduler` gives
    :class:`EMADecay` at that step (its ``t`` is ``n - 1``), else ``decay``; a warmup of the
    decay is a schedule, e.g. ``Scheduler({EMADecay: lambda t: min(0.999, (1 + t) / (10 + t))})``.

    Buffers (BatchNorm's running statistics): with ``buffers="average"`` floating-point ones are
    averaged like the weights and integer ones (``num_batches_tracked``) copied from the model;
    with ``"copy"`` every buffer is copied from the model at each update.

    The average is :attr:`averaged_model` (a copy of the user's module); use it directly, or
    through the learner with :meth:`swapped`. It is saved and resumed with the learner's state.

    Args:
        decay: The decay when no ``Scheduler`` sets :class:`EMADecay`, in ``[0, 1)``.
        validate: Run the fit's validation epochs on the averaged weights (training goes on
            with the raw ones, restored bitwise after each validation).
        buffers: ``"average"`` or ``"copy"``, see above.

    Raises:
        FluxTrainError: For a decay outside ``[0, 1)`` or another bad argument.

    Examples:
        >>> from fluxtrain import Scheduler
        >>> from fluxtrain.testing import tiny_learner
        >>> ema = EMA(validate=True)
        >>> learner = tiny_learner(ema, Scheduler({EMADecay: lambda t: min(0.999, t / 10)}))
        >>> _ = learner.fit(1)
        >>> list(learner.cbstate.hyperparams["EMADecay"].values)
        [0.0, 0.1, 0.2, 0.3]
        >>> ema.current_decay
        0.3
    """

    def __init__(self, decay: float = 0.999, validate: bool = False, buffers: str = "average"):
        if buffers not in ("average", "copy"):
            raise FluxTrainError(f"EMA: buffers must be 'average' or 'copy', got {buffers!r}.")
        self.decay = check_decay(decay, "EMA: decay")
        self.buffers = buffers
        self._scheduled: float | None = None  # set by EMADecay for the step in progress
        super().__init__(validate, buffers == "average", self._average)

    @property
    def current_decay(self) -> float:
        """The decay of the step in progress (or of the last one): the scheduled
        :class:`EMADecay` in a fit whose ``Scheduler`` sets it, else :attr:`decay`."""
        scheduled = self._scheduled
        return self.decay if scheduled is None else scheduled

    def _average(self, averaged: list[torch.Tensor], current: list[torch.Tensor], _: Any) -> None:
        if averaged[0].is_floating_point() or averaged[0].is_complex():
            torch._foreach_lerp_(averaged, current, 1.0 - self.current_decay)
        else:
            torch._foreach_copy_(averaged, current)

    def on_fit_begin(self, phase: Phase, learner: Any) -> None:
        super().on_fit_begin(phase, learner)
        self._scheduled = None

    def on_step_end(self, phase: Phase, learner: Any) -> None:
        if learner.batch.updated and isinstance(phase, AbstractTrainingPhase):
            model = self._model
            self._update(unwrap(learner.model) if model is None else model)

    def __repr__(self) -> str:
        return f"EMA(decay={self.decay}, validate={self.validate}, buffers={self.buffers!r})"


class EMADecay(HyperParameter):
    """The decay of the learner's :class:`EMA` callbacks, as a hyperparameter, in ``[0, 1)``.

    Where a :class:`~fluxtrain.Scheduler` sets it, each update of the average uses the value
    of its step; elsewhere ``EMA(decay=...)`` holds.

    Examples:
        >>> from fluxtrain.testing import tiny_learner
        >>> ema = EMA()
        >>> EMADecay().sethyperparameter(tiny_learner(ema), 0.95)
        >>> ema.current_decay
        0.95
    """

    stateaccess = {"callbacks": Read}
    domain = (0.0, 1.0)

    def check(self, learner: Any) -> None:
        if not any(isinstance(cb, EMA) for cb in learner.callbacks):
            raise HyperParameterError(
                "EMADecay is scheduled but the learner has no EMA callback. Add "
                "EMA(decay=...) to the learner's callbacks."
            )

    def sethyperparameter(self, learner: Any, value: float) -> None:
        self.setter(learner)(value)

    def setter(self, learner: Any) -> Callable[[float], None]:
        emas = [cb for cb in learner.callbacks if isinstance(cb, EMA)]

        def set_decay(value: float) -> None:
            for ema in emas:
                ema._scheduled = value

        return set_decay
