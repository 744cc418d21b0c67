"""MixedPrecision: autocast for the forward passes and losses, a GradScaler for float16.

Autocast is entered at ``StepBegin``, left at ``BackwardBegin`` (backward runs outside it, as
torch recommends) and entered again at ``BackwardEnd`` for the next forward of a step that
updates several optimizers; it is left at ``StepEnd``.

With ``dtype=torch.float16`` the gradient of the loss is scaled in ``backward()`` (a hook on
the loss, so ``batch.loss`` and the metrics keep the true loss) and the gradients of the
optimizers in ``batch.updating`` are unscaled at ``BackwardEnd``, before any other callback sees
them, so gradient clipping sees true gradients. One ``GradScaler`` serves every optimizer (as
torch's guide for several losses and optimizers does): each is unscaled once per step and the
scale is updated once, at ``StepEnd``. An update whose gradients hold inf or NaN is skipped
through ``CancelUpdate``: that optimizer does not step, its gradients are dropped, a step in
which no optimizer stepped is not counted (schedules do not advance), ``StepEnd`` still fires,
and the skip is counted in ``cbstate.mixed_precision["skipped_steps"]``. ``bfloat16`` needs no
scaler.

Examples:
    >>> import torch
    >>> from fluxtrain.testing import tiny_learner
    >>> learner = tiny_learner(MixedPrecision(torch.bfloat16), n_batches=2)
    >>> learner.fit(1).steps_completed
    2
"""

from __future__ import annotations

from typing import Any

import torch

from ..access import Read, Write
from ..callback import Callback
from ..exceptions import CancelUpdate, FluxTrainError
from ..phases import Phase
from .accumulation import GradientAccumulation


class MixedPrecision(Callback):
    """Runs forward and loss under ``torch.autocast``; scales the loss for float16.

    Args:
        dtype: ``torch.bfloat16`` or ``torch.float16``.
        scaler: For float16: ``True`` (a new ``torch.amp.GradScaler``), ``False`` (none), or
            a ``GradScaler`` to use. Ignored for bfloat16.
        device_type: ``"cuda"``, ``"cpu"``, ...; default: where the model's parameters are
            at ``FitBegin``.
    """

    stateaccess = {
        "batch.loss": Read,
        "batch.updating": Read,
        "optimizer": Read,
        "model": Read,
        "cbstate.mixed_precision": Write,
    }
    runafter = (GradientAccumulation,)  # an accumulating micro-batch is not unscaled

    def __init__(
        self,
        dtype: torch.dtype = torch.bfloat16,
        scaler: bool | torch.amp.GradScaler = True,
        device_type: str | None = None,
    ) -> None:
        if dtype not in (torch.bfloat16, torch.float16):
            raise FluxTrainError(
                f"MixedPrecision: dtype must be torch.bfloat16 or torch.float16, got {dtype!r}."
            )
        if not isinstance(scaler, (bool, torch.amp.GradScaler)):
            raise FluxTrainError(
                f"MixedPrecision: scaler must be True, False or a torch.amp.GradScaler, got "
                f"{scaler!r}."
            )
        self.dtype = dtype
        self.scaler_option = scaler
        self.device_type = device_type
        self.scaler: torch.amp.GradScaler | None = None
        self.skipped_steps = 0
        self._autocast: Any = None
        self._unscaled = False

    def init(self, learner: Any) -> None:
        if "mixed_precision" not in learner.cbstate:
            learner.cbstate.mixed_precision = {"skipped_steps": 0}

    def on_fit_begin(self, phase: Phase, learner: Any) -> None:
        if self.device_type is None:
            parameter = next(iter(learner.model.parameters()), None)
            self.device_type = parameter.device.type if parameter is not None else "cpu"
        if self.dtype is torch.float16 and self.scaler_option is not False and self.scaler is None:
            option = self.scaler_option
            self.scaler = (
                option
                if isinstance(option, torch.amp.GradScaler)
                else (torch.amp.GradScaler(self.device_type))
            )

    def on_step_begin(self, phase: Phase, learner: Any) -> None:
        self._enter()

    def on_backward_begin(self, phase: Phase, learner: Any) -> None:
        self._exit()
        scaler = self.scaler
        if scaler is not None:
            loss = learner.batch.loss
            loss.register_hook(lambda grad: scaler.scale(grad).to(grad.dtype))

    def on_backward_end(self, phase: Phase, learner: Any) -> None:
        self._enter()  # for a further forward in this step
        scaler = self.scaler
        if scaler is None:
            return
        optimizers = learner.optimizers
        found = 0.0
        for name in learner.batch.updating:
            optimizer = optimizers[name]
            scaler.unscale_(optimizer)
            states = scaler._per_optimizer_states[id(optimizer)]["found_inf_per_device"]
            found += sum(float(v) for v in states.values())
        self._unscaled = True
        if found:
            for name in learner.batch.updating:
                optimizers[name].zero_grad(set_to_none=True)
            self.skipped_steps += 1
            learner.cbstate.mixed_precision["skipped_steps"] = self.skipped_steps
            raise CancelUpdate(f"inf or NaN gradients at loss scale {scaler.get_scale():g}")

    def on_step_end(self, phase: Phase, learner: Any) -> None:
        self._exit()
        if self.scaler is not None and self._unscaled:
            self.scaler.update()
            self._unscaled = False

    def on_fit_end(self, phase: Phase, learner: Any) -> None:
        self._exit()

    def _enter(self) -> None:
        self._exit()
        self._autocast = torch.autocast(self.device_type or "cpu", dtype=self.dtype)
        self._autocast.__enter__()

    def _exit(self) -> None:
        if self._autocast is not None:
            self._autocast.__exit__(None, None, None)
            self._autocast = None

    def state_dict(self) -> dict[str, Any]:
        scaler = self.scaler.state_dict() if self.scaler is not None else None
        return {"skipped_steps": self.skipped_steps, "scaler": scaler}

    def load_state_dict(self, state: Any) -> None:
        self.skipped_steps = state["skipped_steps"]
        if state["scaler"] is not None:
            if self.scaler is None:
                self.scaler = torch.amp.GradScaler(self.device_type or "cpu")
            self.scaler.load_state_dict(state["scaler"])
