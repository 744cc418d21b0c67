"""EarlyStopping: ends fitting when a metric has stopped improving.

Examples:
    >>> from fluxtrain import Metrics
    >>> from fluxtrain.testing import tiny_learner
    >>> learner = tiny_learner(Metrics(), EarlyStopping(patience=2), lr=0.0)  # a constant loss
    >>> result = learner.fit(10)
    >>> result.stopped_by, result.epochs_completed
    ('EarlyStopping', 3)
    >>> result.reason
    'valid/Loss did not improve by more than 0 for 2 epochs (best 11.59 at epoch 1)'
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from ..access import Read
from ..callback import Callback
from ..distributed import unwrap
from ..exceptions import CancelFitting, FluxTrainError
from ..phases import AbstractTrainingPhase, AbstractValidationPhase, Phase
from ..state import check_recorded, epoch_values
from .metrics import Metrics


class EarlyStopping(Callback):
    """Raises ``CancelFitting`` when ``monitor`` has not improved for ``patience`` epochs.

    At the end of each full epoch (after validation when the fit has validation data, else
    after training), and after each validation of ``fit(validate_every=k)`` (then
    ``patience`` counts validations), it reads the latest value of
    ``cbstate.metrics_epoch[monitor]``. A value
    improves when it beats the best so far by more than ``min_delta`` (lower for
    ``mode="min"``, higher for ``"max"``; NaN never improves). After ``patience`` epochs in a
    row without improvement the fit ends, and its :class:`~fluxtrain.FitResult` says why. The
    counts start over with every new ``fit`` call and carry on through a resumed one
    (:meth:`state_dict`).

    Args:
        monitor: Key of ``cbstate.metrics_epoch``, e.g. ``"valid/Loss"``, ``"valid/Accuracy"``.
        mode: ``"min"`` or ``"max"``: whether lower or higher values are better.
        patience: Epochs without improvement to wait, ``>= 1``.
        min_delta: Smallest change that counts as an improvement, ``>= 0``.
        restore_best: When it stops the fit, first copy the weights of the best epoch back
            into the model (it keeps a copy of them, on the model's device, each time the
            value improves).

    Raises:
        FluxTrainError: For bad arguments; at ``FitBegin`` when there is no ``Metrics``
            callback; at the first epoch end when ``monitor`` is not a recorded metric.

    Examples:
        >>> stopper = EarlyStopping("valid/Accuracy", mode="max", patience=2)
        >>> stopper.state_dict()
        {'best': None, 'best_epoch': None, 'wait': 0, 'weights': None}
    """

    stateaccess = {"cbstate.metrics_epoch": Read, "fitstate": Read, "model": Read}
    runafter = (Metrics,)

    def __init__(
        self,
        monitor: str = "valid/Loss",
        mode: str = "min",
        patience: int = 3,
        min_delta: float = 0.0,
        restore_best: bool = False,
    ) -> None:
        if not isinstance(monitor, str) or not monitor:
            raise FluxTrainError(
                f"EarlyStopping: monitor must be a metric name such as 'valid/Loss', got "
                f"{monitor!r}."
            )
        if mode not in ("min", "max"):
            raise FluxTrainError(
                f"EarlyStopping: mode must be 'min' (lower is better) or 'max', got {mode!r}."
            )
        if isinstance(patience, bool) or not isinstance(patience, int) or patience < 1:
            raise FluxTrainError(f"EarlyStopping: patience must be an int >= 1, got {patience!r}.")
        if not isinstance(min_delta, (int, float)) or not min_delta >= 0:
            raise FluxTrainError(f"EarlyStopping: min_delta must be >= 0, got {min_delta!r}.")
        self.monitor, self.mode, self.patience, self.min_delta = monitor, mode, patience, min_delta
        if not isinstance(restore_best, bool):
            raise FluxTrainError(
                f"EarlyStopping: restore_best must be True or False, got {restore_best!r}."
            )
        self.restore_best = restore_best
        self.best: float | None = None
        self.best_epoch: int | None = None
        self.wait = 0
        self._weights: dict[str, Any] | None = None

    def on_fit_begin(self, phase: Phase, learner: Any) -> None:
        check_recorded(learner.cbstate, self.monitor, "EarlyStopping")
        if not learner.fitstate.resumed:
            self.best, self.best_epoch, self.wait, self._weights = None, None, 0, None

    def on_epoch_end(self, phase: Phase, learner: Any) -> None:
        last = AbstractValidationPhase if learner.fitstate.has_validation else AbstractTrainingPhase
        if not isinstance(phase, last):
            return
        values = epoch_values(learner.cbstate.metrics_epoch, self.monitor, "EarlyStopping")
        value, epoch = float(values[-1]), len(values)
        if self._improves(value):
            self.best, self.best_epoch, self.wait = value, epoch, 0
            if self.restore_best:
                model = unwrap(learner.model)
                self._weights = {k: v.detach().clone() for k, v in model.state_dict().items()}
            return
        self.wait += 1
        if self.wait >= self.patience:
            unit = "epoch" if learner.fitstate.validate_every is None else "validation"
            best = "none" if self.best is None else f"{self.best:.4g} at {unit} {self.best_epoch}"
            restored = ""
            if self._weights is not None:
                unwrap(learner.model).load_state_dict(self._weights)
                restored = "; its weights restored"
            raise CancelFitting(
                f"{self.monitor} did not improve by more than {self.min_delta:g} for "
                f"{self.wait} {unit}{'s' if self.wait > 1 else ''} (best {best}{restored})"
            )

    def _improves(self, value: float) -> bool:
        if math.isnan(value):
            return False
        if self.best is None:
            return True
        if self.mode == "min":
            return value < self.best - self.min_delta
        return value > self.best + self.min_delta

    def state_dict(self) -> dict[str, Any]:
        return {
            "best": self.best,
            "best_epoch": self.best_epoch,
            "wait": self.wait,
            "weights": self._weights,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.best, self.best_epoch, self.wait = state["best"], state["best_epoch"], state["wait"]
        self._weights = state.get("weights")

    def __repr__(self) -> str:
        return (
            f"EarlyStopping({self.monitor!r}, mode={self.mode!r}, patience={self.patience}, "
            f"min_delta={self.min_delta})"
        )
